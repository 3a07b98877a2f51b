package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/careflow/careflow/eventstore"
)

// Fields of an event struct that hold PHI are tagged `phi:"sealed"`; the
// field naming whose data key seals them (a client id) is tagged
// `phi:"subject"`. With a Sealer, Encode moves the sealed fields into one
// encrypted envelope under the subject's key and leaves every other field,
// ids and times, in clear for audits and for the store's own checks:
//
//	{"sessionId":"…","clientId":"c-1",…,"_phi":{"s":"c-1","f":["text"],"c":"<base64>"}}
//
// Decode opens the envelope and merges the fields back. Once the subject's
// key is destroyed they read as eventstore.Redacted (strings) or as zero
// values (anything else), so every old event still replays.

// phiKey is the JSON member holding the envelope. It starts with an
// underscore so it can't collide with an event field.
const phiKey = "_phi"

type phiEnvelope struct {
	Subject string   `json:"s"`
	Fields  []string `json:"f"`
	Cipher  []byte   `json:"c"` // base64 in JSON
}

type sealedField struct {
	name   string // JSON member name
	isText bool   // redacts to eventstore.Redacted rather than to a zero value
}

// phiFields reads the phi tags of typ: the JSON name of the subject field
// and the sealed fields.
func phiFields(typ reflect.Type) (subject string, sealed []sealedField, err error) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag, ok := f.Tag.Lookup("phi")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			return "", nil, fmt.Errorf("codec: %s.%s: a phi field needs a JSON name", typ, f.Name)
		}
		switch tag {
		case "subject":
			if f.Type.Kind() != reflect.String || subject != "" {
				return "", nil, fmt.Errorf("codec: %s: one string field may be the phi subject", typ)
			}
			subject = name
		case "sealed":
			sealed = append(sealed, sealedField{name: name, isText: f.Type.Kind() == reflect.String})
		default:
			return "", nil, fmt.Errorf("codec: %s.%s: phi tag %q is neither subject nor sealed", typ, f.Name, tag)
		}
	}
	if len(sealed) > 0 && subject == "" {
		return "", nil, fmt.Errorf("codec: %s has sealed phi fields but no phi subject", typ)
	}
	return subject, sealed, nil
}

// WithSealer returns a registry that seals the PHI fields of the events it
// encodes with s and opens them when it decodes. It shares the receiver's
// types: register every type before calling it.
func (r *Registry) WithSealer(s eventstore.Sealer) *Registry {
	cp := *r
	cp.sealer = s
	return &cp
}

// sealAAD binds a sealed envelope to its event type and subject, so that
// it can't be pasted into another kind of event or another client's.
func sealAAD(name, subject string) []byte { return []byte("event:" + name + "\x00" + subject) }

// seal moves e's sealed fields of data into the envelope. An event whose
// subject is empty (say, a staff account) or whose sealed fields are all
// absent is left as it is.
func (r *Registry) seal(e *entry, data json.RawMessage) (json.RawMessage, error) {
	if r.sealer == nil || len(e.sealed) == 0 {
		return data, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, fmt.Errorf("codec: seal %s: %w", e.name, err)
	}
	var subject string
	if raw, ok := members[e.subject]; ok {
		if err := json.Unmarshal(raw, &subject); err != nil {
			return nil, fmt.Errorf("codec: seal %s: subject: %w", e.name, err)
		}
	}
	if subject == "" {
		return data, nil
	}
	secret := make(map[string]json.RawMessage, len(e.sealed))
	env := phiEnvelope{Subject: subject}
	for _, f := range e.sealed {
		if raw, ok := members[f.name]; ok {
			secret[f.name] = raw
			env.Fields = append(env.Fields, f.name)
			delete(members, f.name)
		}
	}
	if len(secret) == 0 {
		return data, nil
	}
	plain, err := json.Marshal(secret)
	if err != nil {
		return nil, fmt.Errorf("codec: seal %s: %w", e.name, err)
	}
	if env.Cipher, err = r.sealer.Seal(subject, plain, sealAAD(e.name, subject)); err != nil {
		return nil, fmt.Errorf("codec: seal %s: %w", e.name, err)
	}
	if members[phiKey], err = json.Marshal(env); err != nil {
		return nil, err
	}
	return json.Marshal(members)
}

// open merges a sealed envelope in data back into its fields. Without one
// data is returned as it is.
func (r *Registry) open(e *entry, data json.RawMessage) (json.RawMessage, error) {
	if !bytes.Contains(data, []byte(`"`+phiKey+`"`)) {
		return data, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, fmt.Errorf("codec: decode %q: %w", e.name, err)
	}
	raw, ok := members[phiKey]
	if !ok {
		return data, nil
	}
	delete(members, phiKey)
	var env phiEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("codec: decode %q: sealed fields: %w", e.name, err)
	}
	if r.sealer == nil {
		return nil, fmt.Errorf("codec: decode %q: the event holds sealed PHI and this registry has no sealer", e.name)
	}
	plain, err := r.sealer.Open(env.Subject, env.Cipher, sealAAD(e.name, env.Subject))
	switch {
	case errors.Is(err, eventstore.ErrKeyDestroyed):
		redact(e, members, env.Fields)
	case err != nil:
		return nil, fmt.Errorf("codec: open %q: %w", e.name, err)
	default:
		var secret map[string]json.RawMessage
		if err := json.Unmarshal(plain, &secret); err != nil {
			return nil, fmt.Errorf("codec: open %q: %w", e.name, err)
		}
		for k, v := range secret {
			members[k] = v
		}
	}
	return json.Marshal(members)
}

// redact stands in for fields whose key is gone: text reads as Redacted,
// anything else stays absent (its zero value).
var redactedJSON = json.RawMessage(`"` + eventstore.Redacted + `"`)

func redact(e *entry, members map[string]json.RawMessage, fields []string) {
	for _, name := range fields {
		for _, f := range e.sealed {
			if f.name == name && f.isText {
				members[name] = redactedJSON
			}
		}
	}
}
