package chain

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
)

func TestCanonicalJSONIgnoresSpellingButNotMeaning(t *testing.T) {
	same := []struct{ name, a, b string }{
		{"key order", `{"b":1,"a":2}`, `{"a":2,"b":1}`},
		{"whitespace", "{ \"a\" : [ 1 , 2 ] ,\n\t\"b\":{}}", `{"a":[1,2],"b":{}}`},
		{"nested key order", `{"x":{"z":true,"y":null}}`, `{"x":{"y":null,"z":true}}`},
		{"trailing zeros", `{"a":1.50}`, `{"a":1.5}`},
		{"exponent", `{"a":1e2}`, `{"a":100}`},
		{"upper-case exponent with sign", `{"a":15E+1}`, `{"a":150}`},
		{"negative exponent", `{"a":1E-2}`, `{"a":0.01}`},
		{"negative zero", `{"a":-0.0}`, `{"a":0}`},
		{"string escapes", `{"a":"\u0041\/\u00e9"}`, `{"a":"A/é"}`},
		{"surrogate pair", `{"a":"\ud83d\ude42"}`, `{"a":"🙂"}`},
		{"repeated key: the last counts", `{"a":1,"a":2}`, `{"a":2}`},
	}
	for _, tc := range same {
		t.Run(tc.name, func(t *testing.T) {
			a, err := CanonicalJSON([]byte(tc.a))
			require.NoError(t, err)
			b, err := CanonicalJSON([]byte(tc.b))
			require.NoError(t, err)
			assert.Equal(t, string(b), string(a))
		})
	}

	different := []struct{ name, a, b string }{
		{"value", `{"score":7}`, `{"score":8}`},
		{"number vs string", `{"a":1}`, `{"a":"1"}`},
		{"decimal place", `{"a":1.5}`, `{"a":15}`},
		{"sign", `{"a":2}`, `{"a":-2}`},
		{"key", `{"a":1}`, `{"b":1}`},
		{"array order", `{"a":[1,2]}`, `{"a":[2,1]}`},
		{"null vs false", `{"a":null}`, `{"a":false}`},
		{"string content", `{"a":"Zoë"}`, `{"a":"Zoe"}`},
	}
	for _, tc := range different {
		t.Run(tc.name, func(t *testing.T) {
			a, err := CanonicalJSON([]byte(tc.a))
			require.NoError(t, err)
			b, err := CanonicalJSON([]byte(tc.b))
			require.NoError(t, err)
			assert.NotEqual(t, string(a), string(b))
		})
	}
}

func TestCanonicalJSONForm(t *testing.T) {
	got, err := CanonicalJSON([]byte(`{"z": [1.0, 2.50, 1e30, -3e-4, 12000], "a": "say \"hi\"\n\u0001<&>", "m": {"b": true, "a": null}}`))
	require.NoError(t, err)
	assert.Equal(t, `{"a":"say \"hi\"\u000a\u0001<&>","m":{"a":null,"b":true},"z":[1,25e-1,1e30,-3e-4,12000]}`, string(got))
}

func TestCanonicalJSONRefusesLossyInput(t *testing.T) {
	for name, data := range map[string]string{
		"not JSON":                  `{"a":`,
		"trailing garbage":          `{"a":1} x`,
		"invalid UTF-8":             "{\"a\":\"\xff\"}",
		"lone high surrogate":       `{"a":"\ud800"}`,
		"lone low surrogate":        `{"a":"\udc00"}`,
		"high then non-surrogate":   `{"a":"\ud800\u0041"}`,
		"high surrogate at the end": `{"a":"x\ud83d"}`,
		"exponent out of range":     `{"a":1e99999999999}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := CanonicalJSON([]byte(data))
			assert.Error(t, err)
		})
	}
	t.Run("an escaped backslash before u is not an escape", func(t *testing.T) {
		got, err := CanonicalJSON([]byte(`{"a":"\\ud800"}`))
		require.NoError(t, err)
		assert.Equal(t, `{"a":"\\ud800"}`, string(got))
	})
}

func sampleEvent() eventstore.RecordedEvent {
	return eventstore.RecordedEvent{
		ID:            uuid.MustParse("0190c3d2-0000-7000-8000-000000000001"),
		Stream:        eventstore.NewStreamID("session", "s-1"),
		Version:       3,
		Position:      42,
		Type:          "session.scheduled",
		SchemaVersion: 2,
		Data:          json.RawMessage(`{"clientId":"c-1","score":7}`),
		Metadata: eventstore.Metadata{
			ActorID: "u-1", ActorRole: "provider", CommandID: "cmd-1", CorrelationID: "cor-1",
			CausationID: "cau-1", ClinicID: "clinic-1",
			OccurredAt: time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC),
		},
		RecordedAt: time.Date(2026, 11, 22, 10, 0, 1, 987654321, time.UTC),
	}
}

// Adding a field to the envelope or its metadata must come with a new
// canonical version that covers it; this test fails first to say so.
func TestCanonicalCoversEveryEnvelopeField(t *testing.T) {
	assert.Equal(t, 9, reflect.TypeFor[eventstore.RecordedEvent]().NumField(),
		"RecordedEvent changed: cover the new field in Canonical and bump canonicalVersion")
	assert.Equal(t, 7, reflect.TypeFor[eventstore.Metadata]().NumField(),
		"Metadata changed: cover the new field in Canonical and bump canonicalVersion")
}

func TestCanonicalChangesWithEveryField(t *testing.T) {
	base := Canonical(sampleEvent())
	mutations := map[string]func(e *eventstore.RecordedEvent){
		"id":             func(e *eventstore.RecordedEvent) { e.ID[15] ^= 1 },
		"stream type":    func(e *eventstore.RecordedEvent) { e.Stream.Type = "client" },
		"stream id":      func(e *eventstore.RecordedEvent) { e.Stream.ID = "s-2" },
		"version":        func(e *eventstore.RecordedEvent) { e.Version++ },
		"position":       func(e *eventstore.RecordedEvent) { e.Position++ },
		"type":           func(e *eventstore.RecordedEvent) { e.Type = "session.cancelled" },
		"schema version": func(e *eventstore.RecordedEvent) { e.SchemaVersion++ },
		"data":           func(e *eventstore.RecordedEvent) { e.Data = json.RawMessage(`{"clientId":"c-1","score":8}`) },
		"actor id":       func(e *eventstore.RecordedEvent) { e.Metadata.ActorID = "u-2" },
		"actor role":     func(e *eventstore.RecordedEvent) { e.Metadata.ActorRole = "client" },
		"command id":     func(e *eventstore.RecordedEvent) { e.Metadata.CommandID = "cmd-2" },
		"correlation id": func(e *eventstore.RecordedEvent) { e.Metadata.CorrelationID = "cor-2" },
		"causation id":   func(e *eventstore.RecordedEvent) { e.Metadata.CausationID = "cau-2" },
		"clinic id":      func(e *eventstore.RecordedEvent) { e.Metadata.ClinicID = "clinic-2" },
		"occurred at":    func(e *eventstore.RecordedEvent) { e.Metadata.OccurredAt = e.Metadata.OccurredAt.Add(time.Microsecond) },
		"no occurred at": func(e *eventstore.RecordedEvent) { e.Metadata.OccurredAt = time.Time{} },
		"recorded at":    func(e *eventstore.RecordedEvent) { e.RecordedAt = e.RecordedAt.Add(time.Microsecond) },
		// Length prefixes keep fields apart: moving a byte from one
		// field to the next is a different event.
		"field boundary": func(e *eventstore.RecordedEvent) { e.Metadata.ActorID, e.Metadata.ActorRole = "u-1p", "rovider" },
	}
	seen := map[string]string{"base": string(base)}
	for name, mutate := range mutations {
		e := sampleEvent()
		mutate(&e)
		got := Canonical(e)
		assert.NotEqual(t, base, got, name)
		for other, form := range seen {
			assert.NotEqual(t, form, string(got), "%s and %s give the same form", name, other)
		}
		seen[name] = string(got)
	}
}

func TestCanonicalIsBackendIndependent(t *testing.T) {
	// What PostgreSQL gives back for what SQLite keeps verbatim: jsonb
	// spelling of the data, times cut to microseconds, another zone.
	sqliteForm := sampleEvent()
	sqliteForm.Data = json.RawMessage("{\"score\": 7.0,\n \"clientId\": \"c\\u002d1\"}")
	pgForm := sampleEvent()
	pgForm.Data = json.RawMessage(`{"score": 7.0, "clientId": "c-1"}`)
	pgForm.Metadata.OccurredAt = pgForm.Metadata.OccurredAt.Truncate(time.Microsecond).In(time.FixedZone("CET", 3600))
	pgForm.RecordedAt = pgForm.RecordedAt.Truncate(time.Microsecond)
	assert.Equal(t, Canonical(sqliteForm), Canonical(pgForm))
}

func TestCanonicalKeepsUncanonicalisableDataExactly(t *testing.T) {
	a, b := sampleEvent(), sampleEvent()
	a.Data = json.RawMessage(`{"a":"\ud800"}`)
	b.Data = json.RawMessage(`{"a":"\ud801"}`)
	assert.NotEqual(t, Canonical(a), Canonical(b), "lossy JSON is hashed raw, so it cannot collide")
	assert.True(t, bytes.Contains(Canonical(a), []byte(`\ud800`)))

	broken := sampleEvent()
	broken.Data = json.RawMessage(`{"clientId":"c-1","score":7`)
	assert.NotEqual(t, Canonical(sampleEvent()), Canonical(broken))
}

func TestNextChainsFromThePreviousHash(t *testing.T) {
	e := sampleEvent()
	first := Next(Genesis, e)
	assert.Equal(t, e.Position, first.Position)
	assert.Equal(t, e.ID, first.EventID)
	assert.NotEqual(t, Genesis, first.Hash)
	again := Next(Genesis, e)
	assert.Equal(t, first, again, "chaining is deterministic")
	other := Next(first.Hash, e)
	assert.Equal(t, first.Digest, other.Digest, "the digest covers the event alone")
	assert.NotEqual(t, first.Hash, other.Hash, "the hash covers the previous link too")
}

func TestHashText(t *testing.T) {
	h := Next(Genesis, sampleEvent()).Hash
	text, err := h.MarshalText()
	require.NoError(t, err)
	assert.Len(t, text, 64)
	var back Hash
	require.NoError(t, back.UnmarshalText(text))
	assert.Equal(t, h, back)
	assert.Error(t, back.UnmarshalText([]byte("abc")))
	assert.Error(t, back.UnmarshalText(bytes.Repeat([]byte("zz"), 32)))
}
