package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"

	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
)

// FieldChange is one field of a rebuilt state that differs between two
// versions. Path is the field's JSON path ("assignments[0].status"); From
// or To is absent when the field did not exist on that side.
type FieldChange struct {
	Path string          `json:"path"`
	From json.RawMessage `json:"from,omitempty"`
	To   json.RawMessage `json:"to,omitempty"`
}

// StreamDiff is what changed in a stream between two versions.
type StreamDiff struct {
	Stream      string `json:"stream"`
	FromVersion int64  `json:"fromVersion"`
	ToVersion   int64  `json:"toVersion"`
	// Events are the versions after FromVersion up to ToVersion.
	Events []Entry `json:"events"`
	// Model names the state rebuilt on both sides ("session", "client").
	// It is empty for stream types time travel has no state of; Changes is
	// then empty and Events tell what happened.
	Model   string        `json:"model,omitempty"`
	Changes []FieldChange `json:"changes"`
}

// Models of StreamDiff.
const (
	ModelSession = "session"
	ModelClient  = "client"
)

// Diff lists the events of stream after fromVersion up to toVersion and
// the fields of the rebuilt state that differ between the two versions
// (version 0 is the state before the stream existed).
func (tt *TimeTravel) Diff(ctx context.Context, stream eventstore.StreamID, fromVersion, toVersion int64) (StreamDiff, error) {
	if err := stream.Validate(); err != nil {
		return StreamDiff{}, fmt.Errorf("%w: %w", ErrInvalidQuery, err)
	}
	if fromVersion < 0 || toVersion < fromVersion {
		return StreamDiff{}, fmt.Errorf("%w: versions %d..%d are not an ascending range", ErrInvalidQuery, fromVersion, toVersion)
	}
	events, err := tt.store.ReadStream(ctx, stream, 1)
	if err != nil {
		return StreamDiff{}, fmt.Errorf("audit: read %s: %w", stream, err)
	}
	if toVersion > int64(len(events)) {
		return StreamDiff{}, fmt.Errorf("%w: %s is at version %d, not %d", ErrInvalidQuery, stream, len(events), toVersion)
	}
	out := StreamDiff{
		Stream: stream.String(), FromVersion: fromVersion, ToVersion: toVersion,
		Events: []Entry{}, Changes: []FieldChange{},
	}
	for _, e := range events[fromVersion:toVersion] {
		out.Events = append(out.Events, EntryOf(e))
	}
	var stateAt func(version int64) (any, error)
	switch stream.Type {
	case care.StreamType:
		out.Model = ModelSession
		stateAt = func(version int64) (any, error) {
			s, err := tt.replaySession(events[:version])
			return SessionStateOf(s.View()), err
		}
	case clientStreamType:
		out.Model = ModelClient
		stateAt = func(version int64) (any, error) {
			c, err := tt.replayClient(events[:version])
			return ClientStateOf(c), err
		}
	default:
		return out, nil
	}
	before, err := stateAt(fromVersion)
	if err != nil {
		return StreamDiff{}, err
	}
	after, err := stateAt(toVersion)
	if err != nil {
		return StreamDiff{}, err
	}
	if out.Changes, err = diffJSON(before, after); err != nil {
		return StreamDiff{}, err
	}
	return out, nil
}

// missing marks a field absent on one side of a diff.
type missing struct{}

// diffJSON compares the JSON forms of two values field by field: objects by
// key (in key order), arrays by index, everything else by value.
func diffJSON(from, to any) ([]FieldChange, error) {
	a, err := jsonTree(from)
	if err != nil {
		return nil, err
	}
	b, err := jsonTree(to)
	if err != nil {
		return nil, err
	}
	out := []FieldChange{}
	if err := walkDiff("", a, b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func jsonTree(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit: encode state: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers compare as written, without float rounding
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("audit: decode state: %w", err)
	}
	return tree, nil
}

func walkDiff(path string, a, b any, out *[]FieldChange) error {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			keys := make([]string, 0, len(av)+len(bv))
			for k := range av {
				keys = append(keys, k)
			}
			for k := range bv {
				if _, dup := av[k]; !dup {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				if err := walkDiff(joinKey(path, k), valueOr(av, k), valueOr(bv, k), out); err != nil {
					return err
				}
			}
			return nil
		}
	case []any:
		if bv, ok := b.([]any); ok {
			for i := range max(len(av), len(bv)) {
				var x, y any = missing{}, missing{}
				if i < len(av) {
					x = av[i]
				}
				if i < len(bv) {
					y = bv[i]
				}
				if err := walkDiff(path+"["+strconv.Itoa(i)+"]", x, y, out); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	change := FieldChange{Path: path}
	var err error
	if change.From, err = rawOf(a); err != nil {
		return err
	}
	if change.To, err = rawOf(b); err != nil {
		return err
	}
	*out = append(*out, change)
	return nil
}

func valueOr(m map[string]any, k string) any {
	if v, ok := m[k]; ok {
		return v
	}
	return missing{}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func rawOf(v any) (json.RawMessage, error) {
	if _, absent := v.(missing); absent {
		return nil, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit: encode a changed field: %w", err)
	}
	return data, nil
}
