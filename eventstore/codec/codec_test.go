package codec_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/careflow/careflow/eventstore/codec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type scheduledV1 struct {
	Title string `json:"title"`
}

type scheduled struct {
	Title string `json:"title"`
	Days  int    `json:"days"`
}

func TestRoundTrip(t *testing.T) {
	r := codec.NewRegistry()
	require.NoError(t, codec.Register[scheduledV1](r, "session.scheduled"))

	name, v, data, err := r.Encode(&scheduledV1{Title: "week 1"})
	require.NoError(t, err)
	assert.Equal(t, "session.scheduled", name)
	assert.Equal(t, 1, v)

	got, err := r.Decode(name, v, data)
	require.NoError(t, err)
	assert.Equal(t, scheduledV1{Title: "week 1"}, got)
	assert.True(t, r.KnowsType("session.scheduled", 1))
	assert.False(t, r.KnowsType("session.scheduled", 2))
	assert.False(t, r.KnowsType("session.unknown", 1))
}

func TestUpcastsOlderVersions(t *testing.T) {
	r := codec.NewRegistry()
	require.NoError(t, codec.RegisterVersion[scheduled](r, "session.scheduled", 2))
	assert.False(t, r.KnowsType("session.scheduled", 1), "v1 is unreadable until an upcaster exists")

	require.NoError(t, r.AddUpcaster("session.scheduled", 1, func(data json.RawMessage) (json.RawMessage, error) {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, err
		}
		m["days"] = 7
		return json.Marshal(m)
	}))
	assert.True(t, r.KnowsType("session.scheduled", 1))

	got, err := r.Decode("session.scheduled", 1, json.RawMessage(`{"title":"old"}`))
	require.NoError(t, err)
	assert.Equal(t, scheduled{Title: "old", Days: 7}, got)
}

func TestRefusesBadRegistrations(t *testing.T) {
	r := codec.NewRegistry()
	require.NoError(t, codec.Register[scheduled](r, "a"))
	assert.Error(t, codec.Register[scheduledV1](r, "a"), "name twice")
	assert.Error(t, codec.Register[scheduled](r, "b"), "type twice")
	assert.Error(t, codec.Register[int](r, "c"), "not a struct")
	assert.Error(t, r.AddUpcaster("a", 1, nil), "no older version to upcast from")

	_, _, _, err := r.Encode(struct{}{})
	assert.ErrorIs(t, err, codec.ErrUnknownType)
	_, err = r.Decode("nope", 1, []byte(`{}`))
	assert.ErrorIs(t, err, codec.ErrUnknownType)
	_, err = r.Decode("a", 1, []byte(`not json`))
	assert.Error(t, err)
}

type activated struct {
	SessionID string    `json:"sessionId"`
	Count     int       `json:"count"`
	At        time.Time `json:"at"`
}

// Decode reads bodies with encoding/json/v2 (ADR 0016); it must decode
// what encoding/json decoded, as encoding/json did.
func TestDecodesAsEncodingJSONDid(t *testing.T) {
	r := codec.NewRegistry()
	require.NoError(t, codec.Register[activated](r, "session.activated"))
	bodies := []string{
		`{"sessionId":"s1","count":2,"at":"2026-03-02T09:00:00Z"}`,
		`{"SESSIONID":"s1","Count":2}`,
		`{"session_id":"s1","session-id":"s2"}`,
		`{"sessionId":"s1","sessionId":"s2"}`,
		`{"sessionId":"s1","sessionId":null,"count":3,"count":null}`,
		`{"sessionId":"s\u00e9","unknown":{"deep":[1,2]}}`,
		`{"at":"2026-03-02T09:00:00,5Z"}`,
		`{"at":"2026-03-02T9:00:00Z"}`,
		"{\"sessionId\":\"bad \xff utf-8\"}",
	}
	for _, body := range bodies {
		var want activated
		require.NoError(t, json.Unmarshal([]byte(body), &want), body)
		got, err := r.Decode("session.activated", 1, json.RawMessage(body))
		require.NoError(t, err, body)
		assert.Equal(t, want, got, body)
	}
}
