package api

import (
	"encoding/base64"
	"net/http"
	"slices"
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

// pageByID cuts items (in their list order) to the caller's page: those
// after the item whose id is page.After, at most page.Limit of them. It
// serves lists a read model answers whole, such as a session's messages. A
// cursor that names no item of the list is a 400.
func pageByID[T any](items []T, page Page, id func(T) string) (PageResponse[T], error) {
	start := 0
	if page.After != "" {
		i := slices.IndexFunc(items, func(it T) bool { return id(it) == page.After })
		if i < 0 {
			return PageResponse[T]{}, invalidCursor()
		}
		start = i + 1
	}
	end := min(start+page.Limit, len(items))
	out := PageResponse[T]{Items: append(make([]T, 0, end-start), items[start:end]...)}
	if end < len(items) {
		out.NextCursor = EncodeCursor(id(items[end-1]))
	}
	return out, nil
}
