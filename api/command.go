package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/careflow/careflow/commands"
)

// Command headers.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderPosition       = "X-Careflow-Position"
	HeaderReplayed       = "Idempotent-Replayed"
	MaxIdempotencyKeyLen = 200
)

// IfMatch is a parsed If-Match header: the stream version the caller last
// saw. The zero value means no header: no precondition.
type IfMatch struct {
	Set bool
	// Any is "If-Match: *": the resource must exist, at any version.
	Any     bool
	Version int64
}

// ParseIfMatch reads If-Match: <version>, "<version>" or *. A weak tag, a
// list or anything else is 400 (If-Match compares strongly).
func ParseIfMatch(r *http.Request) (IfMatch, error) {
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		return IfMatch{}, nil
	}
	bad := badRequest(SlugInvalidRequest, `If-Match must be one version: 3 or "3" (or *)`,
		FieldError{Field: "If-Match", Message: "must be one stream version", Slug: "invalid-if-match"})
	if len(values) > 1 {
		return IfMatch{}, bad
	}
	v := strings.TrimSpace(values[0])
	if v == "*" {
		return IfMatch{Set: true, Any: true}, nil
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || strings.HasPrefix(v, "+") {
		return IfMatch{}, bad
	}
	return IfMatch{Set: true, Version: n}, nil
}

// Check compares the precondition with the resource's current version (0
// when it does not exist): a mismatch is 412 precondition-failed. Use it
// for conditional reads; a command must check the version inside its
// load-decide loop (see commands.StaleVersionError), or a write can slip in
// between the check and the command.
func (m IfMatch) Check(current int64) error {
	switch {
	case !m.Set:
		return nil
	case m.Any && current > 0:
		return nil
	case !m.Any && current == m.Version:
		return nil
	}
	return PreconditionFailed(m.Version, current)
}

// ETag is the entity tag of a stream version.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ParseIdempotencyKey reads the Idempotency-Key header: absent is "" (the
// command gets a fresh id); present must be 1 to 200 printable ASCII
// characters, else 400.
func ParseIdempotencyKey(r *http.Request) (string, error) {
	values := r.Header.Values(HeaderIdempotencyKey)
	if len(values) == 0 {
		return "", nil
	}
	k := values[0]
	ok := len(values) == 1 && len(k) >= 1 && len(k) <= MaxIdempotencyKeyLen
	for i := 0; ok && i < len(k); i++ {
		ok = k[i] >= 0x20 && k[i] <= 0x7e
	}
	if !ok || strings.TrimSpace(k) == "" {
		return "", badRequest(SlugInvalidRequest, "Idempotency-Key must be 1 to 200 printable ASCII characters",
			FieldError{Field: HeaderIdempotencyKey, Message: "must be 1 to 200 printable ASCII characters", Slug: "invalid-idempotency-key"})
	}
	return k, nil
}

// idempotencyNamespace seeds command ids made from Idempotency-Keys.
var idempotencyNamespace = uuid.MustParse("a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607")

// CommandMeta builds the command envelope of an authenticated request: the
// principal's actor, the request id as correlation id, and a command id
// derived from the Idempotency-Key (none: the command makes a fresh one).
//
// The command id is a UUIDv5 of the actor, method, path and key, never the
// key itself: keys are the client's, so two users (or one user on two
// resources) choosing the same key must not be taken for a retry of each
// other's command.
func CommandMeta(r *http.Request) (commands.Meta, error) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return commands.Meta{}, Unauthorized("this route needs an access token", "")
	}
	key, err := ParseIdempotencyKey(r)
	if err != nil {
		return commands.Meta{}, err
	}
	m := commands.Meta{Actor: p.Actor(), CorrelationID: RequestID(r.Context())}
	if key != "" {
		scope := strings.Join([]string{string(p.Role), p.ActorID, r.Method, r.URL.Path, key}, "\x00")
		m.CommandID = uuid.NewSHA1(idempotencyNamespace, []byte(scope)).String()
	}
	return m, nil
}

// CommandResponse is the body of every command answer.
type CommandResponse struct {
	// IDs names what the command created, e.g. {"sessionId": "..."}.
	IDs map[string]string `json:"ids"`
	// Version is the stream version after the command (also the ETag).
	Version int64 `json:"version"`
	// Position is the global position of the last event written (also
	// X-Careflow-Position): a reader can wait for projections to reach it.
	Position int64 `json:"position"`
	// Duplicate: the Idempotency-Key was seen before; this is the first answer.
	Duplicate bool `json:"duplicate"`
}

// WriteCommandResult answers a command: status (201 for a create, 200
// otherwise; a replay of a create answers 200), the ids created, the
// version as ETag and the position as X-Careflow-Position.
func WriteCommandResult(w http.ResponseWriter, status int, ids map[string]string, res commands.Result) {
	if ids == nil {
		ids = map[string]string{}
	}
	h := w.Header()
	h.Set("ETag", ETag(res.Version))
	h.Set(HeaderPosition, strconv.FormatInt(res.Position, 10))
	if res.Duplicate {
		h.Set(HeaderReplayed, "true")
		if status == http.StatusCreated {
			status = http.StatusOK
		}
	}
	writeJSON(w, status, CommandResponse{IDs: ids, Version: res.Version, Position: res.Position, Duplicate: res.Duplicate})
}
