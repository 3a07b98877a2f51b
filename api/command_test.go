package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/eventstore"
)

func withHeader(name string, values ...string) *http.Request {
	r := httptest.NewRequest("POST", "/", nil)
	for _, v := range values {
		r.Header.Add(name, v)
	}
	return r
}

func TestParseIfMatch(t *testing.T) {
	for in, want := range map[string]IfMatch{
		`3`:      {Set: true, Version: 3},
		`"3"`:    {Set: true, Version: 3},
		` "42" `: {Set: true, Version: 42},
		`*`:      {Set: true, Any: true},
	} {
		got, err := ParseIfMatch(withHeader("If-Match", in))
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	none, err := ParseIfMatch(httptest.NewRequest("POST", "/", nil))
	require.NoError(t, err)
	assert.Equal(t, IfMatch{}, none)

	for _, bad := range []string{`W/"3"`, `"3", "4"`, `0`, `-1`, `+3`, `abc`, `""`, `"3`, `3.0`, `99999999999999999999`} {
		_, err := ParseIfMatch(withHeader("If-Match", bad))
		p := problemOf(err)
		assert.Equal(t, http.StatusBadRequest, p.Status, bad)
		assert.Equal(t, "If-Match", p.Errors[0].Field, bad)
	}
	_, err = ParseIfMatch(withHeader("If-Match", "3", "4"))
	assert.Error(t, err, "two headers")
}

func TestIfMatchCheck(t *testing.T) {
	assert.NoError(t, IfMatch{}.Check(7), "no precondition")
	assert.NoError(t, IfMatch{Set: true, Version: 7}.Check(7))
	assert.NoError(t, IfMatch{Set: true, Any: true}.Check(1))

	err := IfMatch{Set: true, Version: 6}.Check(7)
	p := problemOf(err)
	assert.Equal(t, http.StatusPreconditionFailed, p.Status)
	assert.Equal(t, SlugPrecondition, p.Slug)
	assert.Contains(t, p.Detail, "version 7")
	assert.Error(t, IfMatch{Set: true, Any: true}.Check(0), "* needs the resource to exist")
}

func TestParseIdempotencyKey(t *testing.T) {
	k, err := ParseIdempotencyKey(httptest.NewRequest("POST", "/", nil))
	require.NoError(t, err)
	assert.Empty(t, k)

	for _, good := range []string{"a", "7c9e6679-7425-40de-944b-e07fc1f90ae7", strings.Repeat("k", 200), "with space inside"} {
		k, err := ParseIdempotencyKey(withHeader(HeaderIdempotencyKey, good))
		require.NoError(t, err, good)
		assert.Equal(t, good, k)
	}
	for _, bad := range []string{strings.Repeat("k", 201), "tab\there", "caf\u00e9", "nul\x00"} {
		_, err := ParseIdempotencyKey(withHeader(HeaderIdempotencyKey, bad))
		p := problemOf(err)
		assert.Equal(t, http.StatusBadRequest, p.Status, "%q", bad)
		assert.Equal(t, "invalid-idempotency-key", p.Errors[0].Slug)
	}
	_, err = ParseIdempotencyKey(withHeader(HeaderIdempotencyKey, "a", "b"))
	assert.Error(t, err, "two keys")
	_, err = ParseIdempotencyKey(withHeader(HeaderIdempotencyKey, ""))
	assert.Error(t, err, "an empty key")
}

func metaFor(t *testing.T, p Principal, method, path, key string) commands.Meta {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if key != "" {
		r.Header.Set(HeaderIdempotencyKey, key)
	}
	ctx := withPrincipal(context.WithValue(r.Context(), ctxRequestID, "req-9"), p)
	m, err := CommandMeta(r.WithContext(ctx))
	require.NoError(t, err)
	return m
}

func TestCommandMetaTakesTheActorKeyAndRequestID(t *testing.T) {
	_, err := CommandMeta(withHeader(HeaderIdempotencyKey, "key-1"))
	assert.Equal(t, http.StatusUnauthorized, problemOf(err).Status, "no principal")

	p1 := Principal{UserID: "u1", ActorID: "p1", Role: domain.RoleProvider}
	m := metaFor(t, p1, "POST", "/v1/sessions/s1/messages", "key-1")
	assert.Equal(t, domain.Actor{ID: "p1", Role: domain.RoleProvider}, m.Actor)
	assert.Equal(t, "req-9", m.CorrelationID)
	assert.NotEmpty(t, m.CommandID)
	assert.NotEqual(t, "key-1", m.CommandID)

	assert.Equal(t, m.CommandID, metaFor(t, p1, "POST", "/v1/sessions/s1/messages", "key-1").CommandID, "a retry is recognised")
	p2 := Principal{UserID: "u2", ActorID: "p2", Role: domain.RoleProvider}
	assert.NotEqual(t, m.CommandID, metaFor(t, p2, "POST", "/v1/sessions/s1/messages", "key-1").CommandID,
		"another user's identical key is not a retry of this command")
	assert.NotEqual(t, m.CommandID, metaFor(t, p1, "POST", "/v1/sessions/s2/messages", "key-1").CommandID,
		"the same key on another resource is another command")
	assert.Empty(t, metaFor(t, p1, "POST", "/v1/sessions/s1/messages", "").CommandID, "no key: the command makes a fresh id")
}

func TestWriteCommandResult(t *testing.T) {
	res := commands.Result{Stream: eventstore.NewStreamID("session", "s1"), Version: 4, Position: 1234}
	rec := httptest.NewRecorder()
	WriteCommandResult(rec, http.StatusCreated, map[string]string{"sessionId": "s1"}, res)
	assert.Equal(t, http.StatusCreated, rec.Code)
	assert.Equal(t, `"4"`, rec.Header().Get("ETag"))
	assert.Equal(t, "1234", rec.Header().Get(HeaderPosition))
	assert.Empty(t, rec.Header().Get(HeaderReplayed))
	assert.JSONEq(t, `{"ids":{"sessionId":"s1"},"version":4,"position":1234,"duplicate":false}`, rec.Body.String())

	res.Duplicate = true
	rec = httptest.NewRecorder()
	WriteCommandResult(rec, http.StatusCreated, nil, res)
	assert.Equal(t, http.StatusOK, rec.Code, "a replayed create is not a new creation")
	assert.Equal(t, "true", rec.Header().Get(HeaderReplayed))
	var body CommandResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.NotNil(t, body.IDs)
	assert.True(t, body.Duplicate)
}

func TestETagRoundTripsThroughIfMatch(t *testing.T) {
	m, err := ParseIfMatch(withHeader("If-Match", ETag(12)))
	require.NoError(t, err)
	assert.NoError(t, m.Check(12))
}

func TestParsePage(t *testing.T) {
	page := func(query string) (Page, error) { return ParsePage(httptest.NewRequest("GET", "/x?"+query, nil)) }
	p, err := page("")
	require.NoError(t, err)
	assert.Equal(t, Page{Limit: 50}, p)

	p, err = page("limit=10&cursor=" + EncodeCursor("pos:99"))
	require.NoError(t, err)
	assert.Equal(t, Page{Limit: 10, After: "pos:99"}, p)

	p, err = page("limit=5000")
	require.NoError(t, err)
	assert.Equal(t, 200, p.Limit, "capped")

	for _, bad := range []string{"limit=0", "limit=-1", "limit=ten", "limit=", "limit=1&limit=2", "cursor=", "cursor=!!!",
		"cursor=" + "bm90LW91cnM", "cursor=" + EncodeCursor(""), "cursor=" + strings.Repeat("A", 600)} {
		_, err := page(bad)
		pr := problemOf(err)
		assert.Equal(t, http.StatusBadRequest, pr.Status, bad)
		assert.Len(t, pr.Errors, 1, bad)
	}
}

func TestCursorsAreOpaque(t *testing.T) {
	c := EncodeCursor("session/42")
	assert.NotContains(t, c, "session")
	assert.NotContains(t, c, "/")
}
