package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/eventstore"
)

// Error is an HTTP-level failure: helpers and handlers return one (or any
// other error) and WriteError turns it into a problem. Cause is logged,
// never shown.
type Error struct {
	Status int
	Slug   string
	Detail string
	Code   string
	Errors []FieldError
	// Header holds extra response headers (WWW-Authenticate, Retry-After).
	Header http.Header
	Cause  error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Slug, e.Detail, e.Cause)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Slug, e.Detail)
}

func (e *Error) Unwrap() error { return e.Cause }

// Validation status: a well-formed request whose content the domain
// refuses is 422 Unprocessable Content; a request that cannot be read at
// all (bad JSON, unknown field, bad header or query parameter) is 400.
// ADR 0006 explains the split.
const StatusValidation = http.StatusUnprocessableEntity

// badRequest is a 400 about the request's form.
func badRequest(slug, detail string, fields ...FieldError) *Error {
	return &Error{Status: http.StatusBadRequest, Slug: slug, Detail: detail, Errors: fields}
}

// PreconditionFailed: the If-Match version is not the current version.
func PreconditionFailed(expected, current int64) *Error {
	return &Error{Status: http.StatusPreconditionFailed, Slug: SlugPrecondition,
		Detail: fmt.Sprintf("If-Match names version %d but the resource is at version %d; reload and retry", expected, current)}
}

// Unauthorized is a 401 with the Bearer challenge. tokenError, when set,
// is the RFC 6750 error code ("invalid_token").
func Unauthorized(detail, tokenError string) *Error {
	challenge := `Bearer realm="careflow"`
	if tokenError != "" {
		challenge += `, error="` + tokenError + `"`
	}
	return &Error{Status: http.StatusUnauthorized, Slug: SlugUnauthorized, Detail: detail,
		Header: http.Header{"Www-Authenticate": {challenge}}}
}

// RateLimited is a 429 telling the caller when to retry.
func RateLimited(retryAfter time.Duration) *Error {
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &Error{Status: http.StatusTooManyRequests, Slug: SlugRateLimited,
		Detail: fmt.Sprintf("too many attempts; retry in %d seconds", secs),
		Header: http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}}
}

// problemOf maps any error to the problem the caller sees. This is the one
// place error kinds become HTTP statuses.
func problemOf(err error) *Error {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr
	}
	var stale *commands.StaleVersionError
	if errors.As(err, &stale) {
		p := PreconditionFailed(stale.Expected, stale.Actual)
		p.Cause = err
		return p
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Slug: SlugBodyTooLarge,
			Detail: fmt.Sprintf("the request body must be at most %d bytes", tooLarge.Limit), Cause: err}
	}
	var verrs domain.ValidationErrors
	if errors.As(err, &verrs) {
		p := &Error{Status: StatusValidation, Slug: SlugValidation, Detail: validationDetail(len(verrs)), Cause: err}
		for _, e := range verrs {
			p.Errors = append(p.Errors, FieldError{Field: e.Field, Message: e.Message, Slug: e.Slug})
		}
		return p
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return domainProblem(de, err)
	}
	switch {
	case errors.Is(err, eventstore.ErrKeyDestroyed):
		// A command that would record PHI for a forgotten client.
		return &Error{Status: http.StatusGone, Slug: SlugClientForgotten,
			Detail: "the client was forgotten (erased); nothing new can be recorded for them", Cause: err}
	case errors.Is(err, eventstore.ErrConcurrency):
		return &Error{Status: http.StatusConflict, Slug: SlugConcurrency,
			Detail: "the resource was changed by another request at the same time; reload and retry", Cause: err}
	case errors.Is(err, eventstore.ErrClosed), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &Error{Status: http.StatusServiceUnavailable, Slug: SlugUnavailable,
			Detail: "the service could not complete the request in time; retry later",
			Header: http.Header{"Retry-After": {"1"}}, Cause: err}
	}
	return &Error{Status: http.StatusInternalServerError, Slug: SlugInternal,
		Detail: "an internal error occurred; quote the request id when reporting it", Cause: err}
}

func validationDetail(n int) string {
	if n == 1 {
		return "one field is invalid"
	}
	return fmt.Sprintf("%d fields are invalid", n)
}

func domainProblem(de *domain.Error, err error) *Error {
	p := &Error{Detail: de.Message, Code: de.Slug, Cause: err}
	switch de.Kind {
	case domain.KindValidation:
		p.Status, p.Slug = StatusValidation, SlugValidation
		p.Errors = []FieldError{{Field: de.Field, Message: de.Message, Slug: de.Slug}}
	case domain.KindNotFound:
		p.Status, p.Slug = http.StatusNotFound, SlugNotFound
	case domain.KindForbidden:
		p.Status, p.Slug = http.StatusForbidden, SlugForbidden
	case domain.KindConflict:
		p.Status, p.Slug = http.StatusConflict, SlugConflict
	case domain.KindUnauthorized:
		u := Unauthorized(de.Message, "")
		u.Code, u.Cause = de.Slug, err
		return u
	default:
		return &Error{Status: http.StatusInternalServerError, Slug: SlugInternal,
			Detail: "an internal error occurred; quote the request id when reporting it", Cause: err}
	}
	return p
}

// WriteError answers with the problem for err and logs it: server faults at
// error level with the cause, client faults at debug level. Nothing of an
// internal error's cause reaches the response.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemOf(err)
	reqID := RequestID(r.Context())
	log := loggerFrom(r.Context())
	if p.Status >= 500 {
		level := slog.LevelError
		if p.Status != http.StatusInternalServerError {
			level = slog.LevelWarn // unavailable: the cause is outside the handler
		}
		log.LogAttrs(r.Context(), level, "request failed",
			slog.String("request_id", reqID), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", p.Status), slog.String("err", errText(err)))
	} else {
		log.LogAttrs(r.Context(), slog.LevelDebug, "request refused",
			slog.String("request_id", reqID), slog.Int("status", p.Status), slog.String("type", p.Slug), slog.String("code", p.Code))
	}
	for k, vs := range p.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	sendProblem(w, Problem{
		Type: ProblemTypeBase + p.Slug, Title: titleOf(p.Slug, p.Status), Status: p.Status,
		Detail: p.Detail, Code: p.Code, RequestID: reqID, Errors: p.Errors,
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
