package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// Page sizes.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 200
	maxCursorLen     = 512
)

// Page is a parsed ?limit=&cursor= pair. After is the decoded cursor: the
// key of the last item the caller has seen ("" for the first page). Its
// meaning belongs to the list that made it.
type Page struct {
	Limit int
	After string
}

// cursorPrefix versions the cursor format, so a change can refuse old ones.
const cursorPrefix = "c1:"

// EncodeCursor makes the opaque cursor for a key. Clients must not read
// cursors; only pass them back.
func EncodeCursor(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + key))
}

// ParsePage reads limit (default 50, at most 200; larger is capped) and
// cursor. A limit that is not a positive integer or a cursor this server
// did not make is 400.
func ParsePage(r *http.Request) (Page, error) {
	q := r.URL.Query()
	p := Page{Limit: DefaultPageLimit}
	if raw, ok := q["limit"]; ok {
		n, err := strconv.Atoi(raw[0])
		if len(raw) != 1 || err != nil || n < 1 {
			return Page{}, badRequest(SlugInvalidRequest, "limit must be a positive integer",
				FieldError{Field: "limit", Message: "must be a positive integer (at most 200)", Slug: "invalid-limit"})
		}
		p.Limit = min(n, MaxPageLimit)
	}
	if raw, ok := q["cursor"]; ok {
		key, err := decodeCursor(raw)
		if err != nil {
			return Page{}, err
		}
		p.After = key
	}
	return p, nil
}

// invalidCursor is the answer to a cursor this server did not make (or
// that no longer fits the list).
func invalidCursor() error {
	return badRequest(SlugInvalidRequest, "cursor is not one this server made; start again without it",
		FieldError{Field: "cursor", Message: "unknown cursor", Slug: "invalid-cursor"})
}

func decodeCursor(raw []string) (string, error) {
	bad := invalidCursor()
	if len(raw) != 1 || raw[0] == "" || len(raw[0]) > maxCursorLen {
		return "", bad
	}
	b, err := base64.RawURLEncoding.DecodeString(raw[0])
	if err != nil {
		return "", bad
	}
	key, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok || key == "" {
		return "", bad
	}
	return key, nil
}

// PageResponse is the envelope of a list answer.
type PageResponse[T any] struct {
	Items []T `json:"items"`
	// NextCursor fetches the next page; absent on the last page.
	NextCursor string `json:"nextCursor,omitempty"`
}
