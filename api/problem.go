// Package api is careflow's HTTP interface: routes, authentication, and
// errors as RFC 9457 problem details.
package api

import (
	"encoding/json"
	"net/http"
)

// ProblemTypeBase prefixes every problem type slug, so a type is a stable
// URI that documentation can explain.
const ProblemTypeBase = "https://careflow.dev/problems/"

// Problem is an RFC 9457 problem details body. Code and Errors are
// extension members: Code is the domain's finer slug (such as
// "clinic-not-found") under the coarser type, Errors lists field errors.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Code      string       `json:"code,omitempty"`
	RequestID string       `json:"requestId,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
}

// FieldError is one invalid input field.
type FieldError struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	Slug    string `json:"slug"`
}

// Problem type slugs. Each is a stable part of the API: clients may switch
// on them, so they never change once released.
const (
	SlugValidation       = "validation-failed"
	SlugInvalidJSON      = "invalid-json"
	SlugInvalidRequest   = "invalid-request"
	SlugUnsupportedMedia = "unsupported-media-type"
	SlugBodyTooLarge     = "body-too-large"
	SlugNotFound         = "not-found"
	SlugMethodNotAllowed = "method-not-allowed"
	SlugForbidden        = "forbidden"
	SlugConflict         = "conflict"
	SlugConcurrency      = "concurrency-conflict"
	SlugPrecondition     = "precondition-failed"
	SlugUnauthorized     = "unauthorized"
	SlugRateLimited      = "rate-limited"
	SlugUnavailable      = "unavailable"
	SlugInternal         = "internal"
	SlugClientForgotten  = "client-forgotten"
)

// problemTitles are the fixed, human titles of the problem types (RFC 9457
// asks that a title not change from occurrence to occurrence).
var problemTitles = map[string]string{
	SlugValidation:       "The request is invalid",
	SlugInvalidJSON:      "The request body is not acceptable JSON",
	SlugInvalidRequest:   "The request is malformed",
	SlugUnsupportedMedia: "The request body has an unsupported media type",
	SlugBodyTooLarge:     "The request body is too large",
	SlugNotFound:         "Not found",
	SlugMethodNotAllowed: "Method not allowed",
	SlugForbidden:        "Forbidden",
	SlugConflict:         "Conflict with the current state",
	SlugConcurrency:      "Concurrent modification",
	SlugPrecondition:     "Precondition failed",
	SlugUnauthorized:     "Authentication required",
	SlugRateLimited:      "Too many requests",
	SlugUnavailable:      "Service unavailable",
	SlugClientForgotten:  "The client was erased",
	SlugInternal:         "Internal error",
	"not-ready":          "Not ready",
}

func titleOf(slug string, status int) string {
	if t, ok := problemTitles[slug]; ok {
		return t
	}
	return http.StatusText(status)
}

func sendProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
