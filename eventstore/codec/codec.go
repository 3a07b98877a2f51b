// Package codec maps stable event type names to Go structs and back, and
// upcasts stored events written under an older schema version. A Registry
// is built once at start-up and passed to whoever needs it; there is no
// package-level registry.
package codec

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/careflow/careflow/eventstore"
)

// ErrUnknownType: no Go type is registered for the name (or vice versa).
var ErrUnknownType = errors.New("codec: unknown event type")

// Upcaster turns the JSON of schema version v into that of version v+1.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

type entry struct {
	name      string
	version   int // current schema version
	typ       reflect.Type
	upcasters map[int]Upcaster // from version -> to version+1
	subject   string           // JSON name of the phi subject field
	sealed    []sealedField    // the fields sealed under the subject's key
}

// Registry knows the event types of one application.
type Registry struct {
	byName map[string]*entry
	byType map[reflect.Type]*entry
	sealer eventstore.Sealer // nil: PHI fields are stored in clear (tests)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[string]*entry{}, byType: map[reflect.Type]*entry{}}
}

// Register binds the struct type T to name at schema version 1.
func Register[T any](r *Registry, name string) error {
	return RegisterVersion[T](r, name, 1)
}

// RegisterVersion binds T to name; version is the schema version T encodes.
// Older stored versions need an upcaster for each step up to version.
func RegisterVersion[T any](r *Registry, name string, version int) error {
	typ := reflect.TypeFor[T]()
	if typ.Kind() != reflect.Struct {
		return fmt.Errorf("codec: %s: %s is not a struct type", name, typ)
	}
	return r.add(name, version, typ)
}

func (r *Registry) add(name string, version int, typ reflect.Type) error {
	if name == "" || version < 1 {
		return fmt.Errorf("codec: type %s needs a name and a version >= 1", typ)
	}
	if _, dup := r.byName[name]; dup {
		return fmt.Errorf("codec: %q registered twice", name)
	}
	if e, dup := r.byType[typ]; dup {
		return fmt.Errorf("codec: %s already registered as %q", typ, e.name)
	}
	subject, sealed, err := phiFields(typ)
	if err != nil {
		return err
	}
	e := &entry{name: name, version: version, typ: typ, upcasters: map[int]Upcaster{}, subject: subject, sealed: sealed}
	r.byName[name] = e
	r.byType[typ] = e
	return nil
}

// AddUpcaster registers the step from schema version from to from+1.
func (r *Registry) AddUpcaster(name string, from int, up Upcaster) error {
	e, ok := r.byName[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownType, name)
	}
	if from < 1 || from >= e.version {
		return fmt.Errorf("codec: %q upcaster from version %d: current version is %d", name, from, e.version)
	}
	e.upcasters[from] = up
	return nil
}

// KnowsType reports whether name is registered and version is one it can
// read (an older version only with upcasters for every step).
func (r *Registry) KnowsType(name string, version int) bool {
	e, ok := r.byName[name]
	if !ok || version < 1 || version > e.version {
		return false
	}
	for v := version; v < e.version; v++ {
		if e.upcasters[v] == nil {
			return false
		}
	}
	return true
}

// Encode returns the type name, schema version and JSON of an event value.
// v may be a struct or a pointer to one.
func (r *Registry) Encode(v any) (name string, version int, data json.RawMessage, err error) {
	typ := reflect.TypeOf(v)
	if typ != nil && typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	e, ok := r.byType[typ]
	if !ok {
		return "", 0, nil, fmt.Errorf("%w: Go type %v", ErrUnknownType, typ)
	}
	data, err = json.Marshal(v)
	if err != nil {
		return "", 0, nil, fmt.Errorf("codec: encode %s: %w", e.name, err)
	}
	if data, err = r.seal(e, data); err != nil {
		return "", 0, nil, err
	}
	return e.name, e.version, data, nil
}

// Name returns the registered type name of an event value.
func (r *Registry) Name(v any) (string, error) {
	typ := reflect.TypeOf(v)
	if typ != nil && typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	e, ok := r.byType[typ]
	if !ok {
		return "", fmt.Errorf("%w: Go type %v", ErrUnknownType, typ)
	}
	return e.name, nil
}

// Decode upcasts data from version to the current schema and returns the
// event as a value of its registered struct type (not a pointer).
func (r *Registry) Decode(name string, version int, data json.RawMessage) (any, error) {
	e, ok := r.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, name)
	}
	if version < 1 || version > e.version {
		return nil, fmt.Errorf("codec: %q schema version %d is not readable (current %d)", name, version, e.version)
	}
	data, err := r.open(e, data)
	if err != nil {
		return nil, err
	}
	for v := version; v < e.version; v++ {
		up := e.upcasters[v]
		if up == nil {
			return nil, fmt.Errorf("codec: %q has no upcaster from version %d", name, v)
		}
		if data, err = up(data); err != nil {
			return nil, fmt.Errorf("codec: upcast %q from version %d: %w", name, v, err)
		}
	}
	ptr := reflect.New(e.typ)
	if err := jsonv2.Unmarshal(data, ptr.Interface(), decodeOptions); err != nil {
		return nil, fmt.Errorf("codec: decode %q: %w", name, err)
	}
	return ptr.Elem().Interface(), nil
}

// decodeOptions make encoding/json/v2 (ADR 0016) read a body as
// encoding/json did: names matched without regard to case (but not to
// '-' or '_'), the last of repeated names kept, a null leaving the value
// before it, times in RFC 3339 as loosely as time.Time's own UnmarshalJSON
// read them, invalid UTF-8 let through. v2 decodes a body in 40 to 50% of
// v1's time (BenchmarkDecodeEvent in commands); decoding is a rebuild's
// largest share of work besides writing the read models.
var decodeOptions = jsonv2.JoinOptions(jsonv2.MatchCaseInsensitiveNames(true),
	jsonv1.MatchCaseSensitiveDelimiter(true), jsonv1.MergeWithLegacySemantics(true),
	jsonv1.ParseTimeWithLooseRFC3339(true), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// Names lists the registered type names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// RegisterValue binds the struct type of sample to name at schema version
// 1. It lets a package that must not import codec (the domain) list its
// events as values for a wiring layer to register.
func (r *Registry) RegisterValue(name string, sample any) error {
	typ := reflect.TypeOf(sample)
	if typ != nil && typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ == nil || typ.Kind() != reflect.Struct {
		return fmt.Errorf("codec: %s: %v is not a struct type", name, typ)
	}
	return r.add(name, 1, typ)
}

// TypeOf returns the Go struct type registered under name.
func (r *Registry) TypeOf(name string) (reflect.Type, bool) {
	e, ok := r.byName[name]
	if !ok {
		return nil, false
	}
	return e.typ, true
}
