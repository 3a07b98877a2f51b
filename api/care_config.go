package api

// The care routes (this file, care_routes.go, view_routes.go,
// audit_routes.go, access_routes.go):
//
//   - Commands go to commands.Care, which authorizes the actor on the
//     session itself (care team, own client) from the organization streams.
//     If-Match becomes Meta.IfVersion, Idempotency-Key the command id.
//   - Reads are authorized here (care_access.go) against current
//     memberships read through CareDirectory, never from a read model or
//     the token's clinics: a client sees only their own records and never
//     discussion or notes; a provider only clients on their care team (a
//     provider of the same clinic off the team gets 403 not-on-care-team,
//     anyone of another clinic 404); admins and auditors only their clinic.
//   - Session-scoped reads read the session stream (who it belongs to, and
//     the position of its last write) and wait, bounded by MaxWait, until
//     the read model has applied that position: a caller always reads its
//     own writes to a session. Other reads wait for X-Careflow-Min-Position
//     (or ?minPosition=). X-Careflow-Fresh says whether the wait succeeded;
//     when it did not, the answer is what the read model has.
//   - /v1/assignments/{id} finds the session through AssignmentIndex, a
//     tiny projection (assignment id -> session id) run by the same runner.
//     An id it does not know is looked up again once it has caught up with
//     the head of the log, so a new assignment is found at once.
//   - Every answer holding PHI is first recorded in the AccessLog (who,
//     role, route, object ids, when, X-Careflow-Purpose); if the record
//     cannot be made durable, the read fails and nothing is sent.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/views"
)

// DefaultFreshnessWait bounds how long a read waits for the read models to
// reach the position its caller asked for (or its session's last write).
const DefaultFreshnessWait = 2 * time.Second

// Freshness headers: a reader passes the X-Careflow-Position of its own
// write as X-Careflow-Min-Position (or ?minPosition=) and learns from
// X-Careflow-Fresh whether the answer includes it.
const (
	HeaderMinPosition = "X-Careflow-Min-Position"
	HeaderFresh       = "X-Careflow-Fresh"
	HeaderPurpose     = "X-Careflow-Purpose"
	MaxPurposeLen     = 200
)

// CareCommands are the session and assignment commands (*commands.Care).
type CareCommands interface {
	ScheduleSession(ctx context.Context, m commands.Meta, cmd commands.ScheduleSession) (commands.Scheduled, error)
	ApplyDesignPlan(ctx context.Context, m commands.Meta, cmd commands.ApplyDesignPlan) (commands.Scheduled, error)
	RescheduleSession(ctx context.Context, m commands.Meta, cmd commands.RescheduleSession) (commands.Result, error)
	CancelSession(ctx context.Context, m commands.Meta, cmd commands.CancelSession) (commands.Result, error)
	ActivateSession(ctx context.Context, m commands.Meta, cmd commands.ActivateSession) (commands.Result, error)
	CloseSession(ctx context.Context, m commands.Meta, cmd commands.CloseSession) (commands.Result, error)
	AssignHomework(ctx context.Context, m commands.Meta, cmd commands.AssignHomework) (commands.Created, error)
	StartAssignment(ctx context.Context, m commands.Meta, cmd commands.StartAssignment) (commands.Result, error)
	CompleteAssignment(ctx context.Context, m commands.Meta, cmd commands.CompleteAssignment) (commands.Completion, error)
	GiveFeedback(ctx context.Context, m commands.Meta, cmd commands.GiveFeedback) (commands.Created, error)
	CommentOnFeedback(ctx context.Context, m commands.Meta, cmd commands.CommentOnFeedback) (commands.Created, error)
	PostMessage(ctx context.Context, m commands.Meta, cmd commands.PostMessage) (commands.Created, error)
	PostDiscussion(ctx context.Context, m commands.Meta, cmd commands.PostDiscussion) (commands.Created, error)
	WriteNote(ctx context.Context, m commands.Meta, cmd commands.WriteNote) (commands.Created, error)
}

var _ CareCommands = (*commands.Care)(nil)

// CareDirectory answers who may read what: a client's clinic and care
// team, and the roles a user holds in a clinic (*commands.Organization).
// Reads are authorized from the organization's streams, never from a read
// model that may lag a change of care team.
type CareDirectory interface {
	commands.ClientDirectory
	commands.StaffDirectory
}

var _ CareDirectory = (*commands.Organization)(nil)

// Freshness lets a read wait until a read model has applied a position
// (*projections.Runner).
type Freshness interface {
	WaitFor(ctx context.Context, name string, position int64, maxWait time.Duration) (bool, error)
}

var _ Freshness = (*projections.Runner)(nil)

// CareConfig wires the care routes: sessions, assignments, the projected
// views, the audit timeline and the access log. Either every field but
// MaxWait is set, or none is: then the care routes are still registered
// (and documented, and under their policies) but answer 503
// care-not-configured.
type CareConfig struct {
	// Commands issues the care commands (commands.NewCare).
	Commands CareCommands
	// Directory authorizes reads (commands.NewOrganization).
	Directory CareDirectory
	// Views is the read-model database the runner fills. Its runner must
	// run views.All, audit.NewTrail and NewAssignmentIndex.
	Views *projections.DB
	// Freshness is that runner.
	Freshness Freshness
	// TimeTravel rebuilds states as of an instant from the event store.
	TimeTravel *audit.TimeTravel
	// AccessLog records every read of PHI (OpenSQLiteAccessLog).
	AccessLog AccessLog
	// MaxWait bounds read-your-write waits; 0 means DefaultFreshnessWait.
	MaxWait time.Duration
}

func (c CareConfig) configured() bool {
	return c.Commands != nil || c.Directory != nil || c.Views != nil || c.Freshness != nil ||
		c.TimeTravel != nil || c.AccessLog != nil
}

func (c CareConfig) check() error {
	if !c.configured() {
		return nil
	}
	var errs []error
	for _, f := range []struct {
		name    string
		missing bool
	}{
		{"Commands", c.Commands == nil}, {"Directory", c.Directory == nil}, {"Views", c.Views == nil},
		{"Freshness", c.Freshness == nil}, {"TimeTravel", c.TimeTravel == nil}, {"AccessLog", c.AccessLog == nil},
	} {
		if f.missing {
			errs = append(errs, fmt.Errorf("api: Care.%s is required when any care dependency is set", f.name))
		}
	}
	if c.Views != nil {
		// The runner registers its projections with the database when it
		// is made: one missing here would fail every read that needs it.
		for _, name := range requiredViews() {
			if _, err := c.Views.Tables(context.Background(), name); errors.Is(err, projections.ErrUnknownProjection) {
				errs = append(errs, fmt.Errorf("api: Care.Views has no projection %s: create the runner (with views.All, audit.NewTrail and NewAssignmentIndex) before the server", name))
			}
		}
	}
	if c.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("api: Care.MaxWait %s must not be negative", c.MaxWait))
	}
	return errors.Join(errs...)
}

// requiredViews are the projections the care routes read.
func requiredViews() []string {
	return []string{views.InboxProjection, views.ClientSessionsProjection, views.SessionViewProjection,
		views.ClinicOverviewProjection, views.ScoreHistoryProjection, audit.TrailName, AssignmentIndexName}
}

// careRoutes serve everything under sessions, assignments, the projected
// views, the audit trail and the access log.
type careRoutes struct {
	cfg     CareConfig
	store   eventstore.Store
	clock   func() time.Time
	newID   func() string
	maxWait time.Duration
	heads   *sessionHeads
	cache   *viewCaches
}

// registerCareRoutes registers the care routes on rt. cfg must have passed
// check.
func registerCareRoutes(rt *Router, cfg CareConfig, store eventstore.Store, clock func() time.Time) {
	// Access records get time-ordered ids: their unique index then grows at
	// its end instead of at random pages.
	newID := func() string { return uuid.Must(uuid.NewV7()).String() }
	c := &careRoutes{cfg: cfg, store: store, clock: clock, newID: newID, maxWait: cfg.MaxWait,
		heads: newSessionHeads(maxSessionHeads)}
	if c.maxWait == 0 {
		c.maxWait = DefaultFreshnessWait
	}
	c.cache = newViewCaches(store, c.knownSessionClient)
	routes := map[string]http.HandlerFunc{
		"POST /v1/sessions":                             c.scheduleSessions,
		"GET /v1/sessions/{sessionId}":                  c.getSession,
		"POST /v1/sessions/{sessionId}/assignments":     c.assignHomework,
		"POST /v1/sessions/{sessionId}/close":           c.closeSession,
		"POST /v1/sessions/{sessionId}/cancel":          c.cancelSession,
		"POST /v1/sessions/{sessionId}/activate":        c.activateSession,
		"POST /v1/sessions/{sessionId}/reschedule":      c.rescheduleSession,
		"POST /v1/sessions/{sessionId}/messages":        c.postMessage,
		"GET /v1/sessions/{sessionId}/messages":         c.listMessages,
		"POST /v1/sessions/{sessionId}/discussion":      c.postDiscussion,
		"GET /v1/sessions/{sessionId}/discussion":       c.listDiscussion,
		"POST /v1/sessions/{sessionId}/notes":           c.writeNote,
		"GET /v1/sessions/{sessionId}/notes":            c.listNotes,
		"GET /v1/assignments/{assignmentId}":            c.getAssignment,
		"POST /v1/assignments/{assignmentId}/start":     c.startAssignment,
		"POST /v1/assignments/{assignmentId}/responses": c.submitResponses,
		"POST /v1/assignments/{assignmentId}/feedback":  c.giveFeedback,
		"POST /v1/assignments/{assignmentId}/comments":  c.postComment,
		"GET /v1/assignments/{assignmentId}/comments":   c.listComments,
		"GET /v1/clients/{clientId}/sessions":           c.clientSessions,
		"GET /v1/clients/{clientId}/scores":             c.clientScores,
		"GET /v1/providers/{providerId}/inbox":          c.providerInbox,
		"GET /v1/clinics/{clinicId}/overview":           c.clinicOverview,
		"GET /v1/audit/clients/{clientId}/timeline":     c.clientTimeline,
		"GET /v1/audit/streams/{streamId}":              c.streamHistory,
		"GET /v1/clients/{clientId}/access-log":         c.accessLog,
	}
	routes["GET /v1/clients/{clientId}/disclosures"] = c.disclosures
	for pattern, h := range routes {
		if !cfg.configured() {
			h = careNotConfigured
		}
		rt.Handle(pattern, withAccessNote(pattern, h))
	}
}

// careNotConfigured answers a care route of a server built without care
// dependencies (an auth-only deployment, or tests of the foundations).
func careNotConfigured(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, &Error{Status: http.StatusServiceUnavailable, Slug: SlugUnavailable, Code: "care-not-configured",
		Detail: "this server was started without the care services"})
}

// minPosition reads X-Careflow-Min-Position or ?minPosition= (0: none).
func readMinPosition(r *http.Request) (int64, error) {
	raw := r.Header.Get(HeaderMinPosition)
	field := HeaderMinPosition
	if raw == "" {
		raw, field = r.URL.Query().Get("minPosition"), "minPosition"
	}
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest(SlugInvalidRequest, "the minimum position must be a non-negative integer",
			FieldError{Field: field, Message: "must be a non-negative integer", Slug: "invalid-position"})
	}
	return n, nil
}

// await waits (bounded by maxWait) until the read model projection has
// applied the largest of positions, and says in X-Careflow-Fresh whether
// it had. Without a position to wait for it sets nothing.
func (c *careRoutes) await(w http.ResponseWriter, r *http.Request, projection string, positions ...int64) error {
	var target int64
	for _, p := range positions {
		target = max(target, p)
	}
	if target <= 0 {
		return nil
	}
	reached, err := c.cfg.Freshness.WaitFor(r.Context(), projection, target, c.maxWait)
	if err != nil {
		return fmt.Errorf("wait for %s to reach %d: %w", projection, target, err)
	}
	w.Header().Set(HeaderFresh, strconv.FormatBool(reached))
	return nil
}

// purpose reads the optional X-Careflow-Purpose header: at most 200
// printable ASCII characters.
func readPurpose(r *http.Request) (string, error) {
	values := r.Header.Values(HeaderPurpose)
	if len(values) == 0 {
		return "", nil
	}
	v := strings.TrimSpace(values[0])
	ok := len(values) == 1 && len(v) <= MaxPurposeLen
	for i := 0; ok && i < len(v); i++ {
		ok = v[i] >= 0x20 && v[i] <= 0x7e
	}
	if !ok {
		return "", badRequest(SlugInvalidRequest, "X-Careflow-Purpose must be at most 200 printable ASCII characters",
			FieldError{Field: HeaderPurpose, Message: "at most 200 printable ASCII characters", Slug: "invalid-purpose"})
	}
	return v, nil
}

// parseInstant reads an optional RFC 3339 query parameter.
func parseInstant(r *http.Request, name string) (time.Time, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, badRequest(SlugInvalidRequest, name+" must be an RFC 3339 instant",
			FieldError{Field: name, Message: "must be an RFC 3339 instant such as 2026-03-02T09:00:00Z", Slug: "invalid-instant"})
	}
	return t, nil
}

// careMeta is CommandMeta plus If-Match as the version the command must
// find its stream at.
func careMeta(r *http.Request) (commands.Meta, error) {
	m, err := CommandMeta(r)
	if err != nil {
		return m, err
	}
	im, err := ParseIfMatch(r)
	if err != nil {
		return m, err
	}
	if im.Set && !im.Any {
		m.IfVersion = im.Version
	}
	return m, nil
}

// commandAnswer is a command response with more fields beside the
// standard ones.
type commandAnswer struct {
	CommandResponse
	Sessions []scheduledSession `json:"sessions,omitempty"`
}

type scheduledSession struct {
	ID       string    `json:"id"`
	StartsAt time.Time `json:"startsAt"`
	EndsAt   time.Time `json:"endsAt"`
}

// responsesAnswer answers submitted responses with their score.
type responsesAnswer struct {
	CommandResponse
	Scored   bool         `json:"scored"`
	Score    *int         `json:"score,omitempty"`
	Severity string       `json:"severity,omitempty"`
	Flags    []books.Flag `json:"flags"`
}

// writeCommandBody answers a command like WriteCommandResult, with body
// (which embeds the CommandResponse) as the JSON.
func writeCommandBody(w http.ResponseWriter, status int, res commands.Result, body any) {
	h := w.Header()
	h.Set("ETag", ETag(res.Version))
	h.Set(HeaderPosition, strconv.FormatInt(res.Position, 10))
	if res.Duplicate {
		h.Set(HeaderReplayed, "true")
		if status == http.StatusCreated {
			status = http.StatusOK
		}
	}
	writeJSON(w, status, body)
}

func careCommandResponse(ids map[string]string, res commands.Result) CommandResponse {
	if ids == nil {
		ids = map[string]string{}
	}
	return CommandResponse{IDs: ids, Version: res.Version, Position: res.Position, Duplicate: res.Duplicate}
}
