package domain

import (
	"errors"
	"fmt"
)

// Kind groups errors by how a caller should react; the API maps each kind
// to one HTTP status in one place.
type Kind int

const (
	KindValidation   Kind = iota + 1 // the input is wrong: 400/422
	KindNotFound                     // no such thing (or not visible to the actor): 404
	KindForbidden                    // the actor may not do this: 403
	KindConflict                     // the thing's state does not allow it now: 409
	KindUnauthorized                 // no or bad credentials: 401
)

// Error is a domain error with a stable slug (the API's problem type) and
// a human message. Field names the offending input field, if one.
type Error struct {
	Kind    Kind
	Slug    string
	Message string
	Field   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Slug, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Slug, e.Message)
}

// Is makes errors.Is(err, &Error{Slug: s}) match by slug.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Slug == e.Slug
}

// Validation is an input error about one field.
func Validation(slug, field, format string, args ...any) *Error {
	return &Error{Kind: KindValidation, Slug: slug, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound is a missing (or invisible) thing.
func NotFound(slug, format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Slug: slug, Message: fmt.Sprintf(format, args...)}
}

// Forbidden is a refusal of the actor.
func Forbidden(slug, format string, args ...any) *Error {
	return &Error{Kind: KindForbidden, Slug: slug, Message: fmt.Sprintf(format, args...)}
}

// Conflict is a refusal because of the current state.
func Conflict(slug, format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Slug: slug, Message: fmt.Sprintf(format, args...)}
}

// ValidationErrors collects several field errors so a caller hears about
// every problem at once.
type ValidationErrors []*Error

func (v ValidationErrors) Error() string {
	if len(v) == 1 {
		return v[0].Error()
	}
	return fmt.Sprintf("%d invalid fields: %s ...", len(v), v[0].Error())
}

// Unwrap lets errors.Is and errors.As look at each field error.
func (v ValidationErrors) Unwrap() []error {
	out := make([]error, len(v))
	for i, e := range v {
		out[i] = e
	}
	return out
}

// Err returns nil for no errors, else v.
func (v ValidationErrors) Err() error {
	if len(v) == 0 {
		return nil
	}
	return v
}

// KindOf returns the kind of err (0 when it is not a domain error).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var v ValidationErrors
	if errors.As(err, &v) {
		return KindValidation
	}
	return 0
}
