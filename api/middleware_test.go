package api

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestIDIsEchoedOrMade(t *testing.T) {
	var seen string
	h := withRequestID(func() string { return "fresh" }, slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = RequestID(r.Context())
	}))
	for in, want := range map[string]string{
		"abc-123.x:y":            "abc-123.x:y",
		"":                       "fresh",
		"has space":              "fresh",
		"line\nbreak":            "fresh",
		strings.Repeat("a", 129): "fresh",
		strings.Repeat("b", 128): strings.Repeat("b", 128),
		`{"forged":"log"}`:       "fresh",
	} {
		req := httptest.NewRequest("GET", "/", nil)
		if in != "" {
			req.Header[HeaderRequestID] = []string{in}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, want, rec.Header().Get(HeaderRequestID), "%q", in)
		assert.Equal(t, want, seen)
	}
}

func TestServerGivesEveryResponseARequestID(t *testing.T) {
	f := newFixture(t)
	rec := f.do("GET", "/healthz", nil, HeaderRequestID, "trace-42")
	assert.Equal(t, "trace-42", rec.Header().Get(HeaderRequestID))
	rec = f.do("GET", "/nowhere", nil)
	p := requireProblem(t, rec, 404, SlugNotFound)
	assert.NotEmpty(t, rec.Header().Get(HeaderRequestID))
	assert.Equal(t, rec.Header().Get(HeaderRequestID), p.RequestID)
}

func panicking(v any) http.Handler {
	return http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(v) })
}

func TestRecovererTurnsAPanicIntoA500Problem(t *testing.T) {
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	h := withRequestID(func() string { return "req-p" }, log, withRecoverer(panicking("secret-internal-state")))
	rec := httptest.NewRecorder()
	require.NotPanics(t, func() { h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil)) })

	p := requireProblem(t, rec, 500, SlugInternal)
	assert.Equal(t, "req-p", p.RequestID)
	assert.NotContains(t, rec.Body.String(), "secret-internal-state")
	assert.Contains(t, logs.String(), "secret-internal-state", "the panic is logged")
	assert.Contains(t, logs.String(), "stack")
}

func TestRecovererAbortsAResponseAlreadyStarted(t *testing.T) {
	h := withRecoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"items":[`))
		panic("half way")
	}))
	rec := httptest.NewRecorder()
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() { h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil)) })
}

func TestRecovererLetsErrAbortHandlerThrough(t *testing.T) {
	h := withRecoverer(panicking(http.ErrAbortHandler))
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) })
}

func TestAccessLogHasStatusButNoQueryString(t *testing.T) {
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	h := withRequestID(func() string { return "r" }, log, withAccessLog(time.Now, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/x?name=Jane+Doe", nil))
	assert.Contains(t, logs.String(), `"status":418`)
	assert.Contains(t, logs.String(), `"path":"/v1/x"`)
	assert.NotContains(t, logs.String(), "Jane")
}

func TestAccessLogNamesTheRoute(t *testing.T) {
	f := newFixture(t)
	f.do("POST", "/v1/accounts/somebody/disable", map[string]string{})
	assert.Contains(t, f.logs.String(), `"route":"POST /v1/accounts/{username}/disable"`)
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	rec := f.do("GET", "/healthz", nil)
	assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	assert.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
}
