package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type sample struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Notes string `json:"notes"`
}

// decodeHandler decodes into a sample and answers 200 with it, or the
// problem DecodeJSON returned.
func decodeHandler() http.Handler {
	return withRequestID(func() string { return "r" }, slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s sample
		if err := DecodeJSON(w, r, &s); err != nil {
			WriteError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, s)
	}))
}

func post(t *testing.T, body []byte, contentType string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	decodeHandler().ServeHTTP(rec, req)
	return rec
}

// bodyOfSize is a valid sample whose JSON is exactly n bytes.
func bodyOfSize(t *testing.T, n int) []byte {
	t.Helper()
	prefix, suffix := `{"name":"x","notes":"`, `"}`
	pad := n - len(prefix) - len(suffix)
	require.Positive(t, pad)
	return []byte(prefix + strings.Repeat("a", pad) + suffix)
}

func TestDecodeAcceptsABodyOfExactlyTheLimit(t *testing.T) {
	rec := post(t, bodyOfSize(t, MaxBodyBytes), "application/json")
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

func TestDecodeRefusesOneByteOverTheLimit(t *testing.T) {
	rec := post(t, bodyOfSize(t, MaxBodyBytes+1), "application/json")
	p := requireProblem(t, rec, http.StatusRequestEntityTooLarge, SlugBodyTooLarge)
	assert.Contains(t, p.Detail, "1048576")
}

func TestDecodeRefusesAnOversizedBodyAfterAValidValue(t *testing.T) {
	body := append([]byte(`{"name":"x"}`), bytes.Repeat([]byte(" "), MaxBodyBytes)...)
	requireProblem(t, post(t, body, "application/json"), http.StatusRequestEntityTooLarge, SlugBodyTooLarge)
}

func TestDecodeRefusesUnknownFieldsNamingThem(t *testing.T) {
	p := requireProblem(t, post(t, []byte(`{"name":"x","isAdmin":true}`), "application/json"), http.StatusBadRequest, SlugInvalidJSON)
	assert.Contains(t, p.Detail, `"isAdmin"`)
	assert.Equal(t, []FieldError{{Field: "isAdmin", Message: "unknown field", Slug: "unknown-field"}}, p.Errors)
}

func TestDecodeRefusesMalformedBodies(t *testing.T) {
	for name, body := range map[string]string{
		"empty":         "",
		"whitespace":    "   \n",
		"syntax":        `{"name":}`,
		"truncated":     `{"name":"x"`,
		"trailing":      `{"name":"x"} {"name":"y"}`,
		"trailing junk": `{"name":"x"}garbage`,
		"array":         `[1,2]`,
		"null then obj": `null {}`,
	} {
		t.Run(name, func(t *testing.T) {
			rec := post(t, []byte(body), "application/json")
			requireProblem(t, rec, http.StatusBadRequest, SlugInvalidJSON)
			if body != "" {
				assert.NotContains(t, rec.Body.String(), "garbage", "the body is not echoed")
			}
		})
	}
}

func TestDecodeNamesAFieldOfTheWrongType(t *testing.T) {
	p := requireProblem(t, post(t, []byte(`{"count":"three"}`), "application/json"), http.StatusBadRequest, SlugInvalidJSON)
	assert.Equal(t, []FieldError{{Field: "count", Message: "must be a JSON number", Slug: "wrong-type"}}, p.Errors)
}

func TestDecodeChecksTheContentType(t *testing.T) {
	assert.Equal(t, http.StatusOK, post(t, []byte(`{"name":"x"}`), "application/json; charset=utf-8").Code)
	assert.Equal(t, http.StatusOK, post(t, []byte(`{"name":"x"}`), "application/merge-patch+json").Code)
	assert.Equal(t, http.StatusOK, post(t, []byte(`{"name":"x"}`), "").Code, "no content type is read as JSON")
	requireProblem(t, post(t, []byte(`{"name":"x"}`), "text/plain"), http.StatusUnsupportedMediaType, SlugUnsupportedMedia)
	requireProblem(t, post(t, []byte(`name=x`), "application/x-www-form-urlencoded"), http.StatusUnsupportedMediaType, SlugUnsupportedMedia)
}

func TestDecodeFillsTheValue(t *testing.T) {
	rec := post(t, []byte(` {"name":"Sam","count":3} `), "application/json")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"name":"Sam","count":3,"notes":""}`, rec.Body.String())
}
