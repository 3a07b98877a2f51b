package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/eventstore"
)

// writeErrorRec runs WriteError inside the request-id middleware, as a
// handler would.
func writeErrorRec(t *testing.T, err error, logs *logBuffer) *httptest.ResponseRecorder {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := withRequestID(func() string { return "req-1" }, log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, err)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	return rec
}

func TestErrorsMapToProblems(t *testing.T) {
	concurrency := &eventstore.ConcurrencyError{Stream: eventstore.NewStreamID("session", "s1"), Expected: 2, Actual: 3}
	cases := []struct {
		name   string
		err    error
		status int
		slug   string
		code   string
	}{
		{"not found", domain.NotFound("clinic-not-found", "no clinic %q", "c9"), 404, SlugNotFound, "clinic-not-found"},
		{"forbidden", domain.Forbidden("not-on-care-team", "not on the team"), 403, SlugForbidden, "not-on-care-team"},
		{"conflict", domain.Conflict("session-closed", "the session is closed"), 409, SlugConflict, "session-closed"},
		{"unauthorized", &domain.Error{Kind: domain.KindUnauthorized, Slug: "invalid-credentials", Message: "wrong"}, 401, SlugUnauthorized, "invalid-credentials"},
		{"wrapped domain", fmt.Errorf("schedule: %w", domain.NotFound("client-not-found", "no client")), 404, SlugNotFound, "client-not-found"},
		{"concurrency", fmt.Errorf("append: %w", concurrency), 409, SlugConcurrency, ""},
		{"precondition", PreconditionFailed(2, 3), 412, SlugPrecondition, ""},
		{"stale version", fmt.Errorf("disable: %w", &commands.StaleVersionError{Expected: 2, Actual: 3}), 412, SlugPrecondition, ""},
		{"too large", &http.MaxBytesError{Limit: MaxBodyBytes}, 413, SlugBodyTooLarge, ""},
		{"store closed", eventstore.ErrClosed, 503, SlugUnavailable, ""},
		{"rate limited", RateLimited(1500 * time.Millisecond), 429, SlugRateLimited, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := writeErrorRec(t, c.err, &logBuffer{})
			p := requireProblem(t, rec, c.status, c.slug)
			assert.Equal(t, c.code, p.Code)
			assert.Equal(t, "req-1", p.RequestID)
			assert.NotEmpty(t, p.Title)
			assert.NotEmpty(t, p.Detail)
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		})
	}
}

func TestUnauthorizedCarriesTheBearerChallenge(t *testing.T) {
	rec := writeErrorRec(t, &domain.Error{Kind: domain.KindUnauthorized, Slug: "x", Message: "no"}, &logBuffer{})
	assert.Equal(t, `Bearer realm="careflow"`, rec.Header().Get("WWW-Authenticate"))
}

func TestRateLimitedSaysWhenToRetry(t *testing.T) {
	rec := writeErrorRec(t, RateLimited(1500*time.Millisecond), &logBuffer{})
	assert.Equal(t, "2", rec.Header().Get("Retry-After"), "rounded up to whole seconds")
}

func TestValidationErrorsListEveryField(t *testing.T) {
	err := domain.ValidationErrors{
		domain.Validation("invalid-name", "displayName", "name is required"),
		domain.Validation("invalid-due", "due", "due must be in the future"),
	}
	p := requireProblem(t, writeErrorRec(t, fmt.Errorf("register: %w", err), &logBuffer{}), StatusValidation, SlugValidation)
	assert.Equal(t, []FieldError{
		{Field: "displayName", Message: "name is required", Slug: "invalid-name"},
		{Field: "due", Message: "due must be in the future", Slug: "invalid-due"},
	}, p.Errors)
	assert.Equal(t, "2 fields are invalid", p.Detail)
}

func TestOneFieldValidationErrorIsListedToo(t *testing.T) {
	p := requireProblem(t, writeErrorRec(t, domain.Validation("invalid-reason", "reason", "too long"), &logBuffer{}), StatusValidation, SlugValidation)
	assert.Equal(t, "invalid-reason", p.Code)
	assert.Equal(t, []FieldError{{Field: "reason", Message: "too long", Slug: "invalid-reason"}}, p.Errors)
}

func TestInternalErrorsLeakNothingButAreLoggedWithTheRequestID(t *testing.T) {
	logs := &logBuffer{}
	secret := errors.New("dial tcp 10.0.0.7:5432: password authentication failed for user careflow")
	rec := writeErrorRec(t, fmt.Errorf("load session: %w", secret), logs)

	p := requireProblem(t, rec, 500, SlugInternal)
	assert.NotContains(t, rec.Body.String(), "10.0.0.7")
	assert.NotContains(t, rec.Body.String(), "load session")
	assert.Empty(t, p.Errors)
	assert.Equal(t, "req-1", p.RequestID)
	assert.Contains(t, logs.String(), "password authentication failed")
	assert.Contains(t, logs.String(), `"request_id":"req-1"`)
}

func TestUnknownDomainKindIsInternal(t *testing.T) {
	rec := writeErrorRec(t, &domain.Error{Kind: domain.Kind(99), Slug: "odd", Message: "secret detail"}, &logBuffer{})
	requireProblem(t, rec, 500, SlugInternal)
	assert.NotContains(t, rec.Body.String(), "secret detail")
}

func TestContextErrorsAreUnavailable(t *testing.T) {
	rec := writeErrorRec(t, fmt.Errorf("read: %w", context.DeadlineExceeded), &logBuffer{})
	requireProblem(t, rec, 503, SlugUnavailable)
}
