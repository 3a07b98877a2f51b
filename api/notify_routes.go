package api

// The reactions routes (this file and webhook_routes.go): a signed-in
// user's own notifications, and a clinic's webhook endpoints. Both are
// served from the reactions' database (projections/reactions,
// projections/notify), not from the event store: they are not commands,
// so they take no Idempotency-Key or If-Match and answer no position.
//
//   - Notifications belong to one recipient, the principal's actor id (the
//     provider or client id, the user id for staff). Another recipient's
//     notification is not found, never forbidden, so nothing leaks about
//     it. They carry kinds and ids only, never PHI.
//   - Webhook endpoints are managed by the clinic's admins (and institute
//     and system admins, as the reactions allow); its auditors may read
//     them. The reactions authorize every call again against current
//     memberships.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/projections/notify"
	"github.com/careflow/careflow/projections/reactions"
)

// NotificationStore is the notifications read model (*notify.Store, from
// reactions.Reactions.Notifications()).
type NotificationStore interface {
	List(ctx context.Context, recipientID string, opts notify.ListOptions) (notify.Page, error)
	MarkRead(ctx context.Context, recipientID, id string, at time.Time) (notify.Notification, error)
	MarkAllRead(ctx context.Context, recipientID string, through, at time.Time) (int64, error)
	Unread(ctx context.Context, recipientID string) (int, error)
}

var _ NotificationStore = (*notify.Store)(nil)

// WebhookService registers and reads a clinic's webhook endpoints
// (*reactions.Webhooks, from reactions.Reactions.Webhooks()).
type WebhookService interface {
	RegisterWebhook(ctx context.Context, admin domain.Actor, clinicID, url string, types []string, secret string) (reactions.Endpoint, error)
	Endpoints(ctx context.Context, admin domain.Actor, clinicID string) ([]reactions.Endpoint, error)
	Endpoint(ctx context.Context, admin domain.Actor, clinicID, endpointID string) (reactions.Endpoint, error)
	Attempts(ctx context.Context, admin domain.Actor, clinicID, endpointID string, limit int) ([]reactions.Attempt, error)
	EnableWebhook(ctx context.Context, admin domain.Actor, clinicID, endpointID string) (reactions.Endpoint, error)
	DeleteWebhook(ctx context.Context, admin domain.Actor, clinicID, endpointID string) error
}

var _ WebhookService = (*reactions.Webhooks)(nil)

// ReactionsConfig wires the notification and webhook routes. Either both
// fields are set or neither: then the routes are still registered (and
// documented, and under their policies) but answer 503
// reactions-not-configured.
type ReactionsConfig struct {
	// Notifications is reactions.Reactions.Notifications().
	Notifications NotificationStore
	// Webhooks is reactions.Reactions.Webhooks().
	Webhooks WebhookService
}

func (c ReactionsConfig) configured() bool { return c.Notifications != nil || c.Webhooks != nil }

func (c ReactionsConfig) check() error {
	if !c.configured() {
		return nil
	}
	var errs []error
	if c.Notifications == nil {
		errs = append(errs, errors.New("api: Reactions.Notifications is required when Reactions.Webhooks is set"))
	}
	if c.Webhooks == nil {
		errs = append(errs, errors.New("api: Reactions.Webhooks is required when Reactions.Notifications is set"))
	}
	return errors.Join(errs...)
}

// registerReactionRoutes registers the notification and webhook routes on
// rt. cfg must have passed check; staff tells whether an auditor holds
// that role in a clinic now.
func registerReactionRoutes(rt *Router, cfg ReactionsConfig, staff commands.StaffDirectory, clock func() time.Time) {
	n := &notificationRoutes{store: cfg.Notifications, clock: clock}
	wh := &webhookRoutes{hooks: cfg.Webhooks, staff: staff}
	routes := map[string]http.HandlerFunc{
		"GET /v1/me/notifications":                        n.list,
		"POST /v1/me/notifications/{notificationId}/read": n.markRead,
		"POST /v1/me/notifications/read":                  n.markAllRead,

		"POST /v1/clinics/{clinicId}/webhooks":                     wh.register,
		"GET /v1/clinics/{clinicId}/webhooks":                      wh.list,
		"GET /v1/clinics/{clinicId}/webhooks/{webhookId}":          wh.get,
		"GET /v1/clinics/{clinicId}/webhooks/{webhookId}/attempts": wh.attempts,
		"POST /v1/clinics/{clinicId}/webhooks/{webhookId}/enable":  wh.enable,
		"DELETE /v1/clinics/{clinicId}/webhooks/{webhookId}":       wh.delete,
	}
	for pattern, h := range routes {
		if !cfg.configured() {
			h = reactionsNotConfigured
		}
		rt.HandleFunc(pattern, h)
	}
}

// reactionsNotConfigured answers the routes of a server built without the
// reactions.
func reactionsNotConfigured(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, &Error{Status: http.StatusServiceUnavailable, Slug: SlugUnavailable, Code: "reactions-not-configured",
		Detail: "this server was started without notifications and webhooks"})
}

// notificationRoutes serve the principal's own notifications.
type notificationRoutes struct {
	store NotificationStore
	clock func() time.Time
}

// notificationView is a notification as the API shows it: kinds, ids and
// times only.
type notificationView struct {
	ID           string     `json:"id"`
	Kind         string     `json:"kind"`
	Urgent       bool       `json:"urgent"`
	Summary      string     `json:"summary"`
	ClinicID     string     `json:"clinicId,omitempty"`
	ClientID     string     `json:"clientId,omitempty"`
	SessionID    string     `json:"sessionId,omitempty"`
	AssignmentID string     `json:"assignmentId,omitempty"`
	BookID       string     `json:"bookId,omitempty"`
	Flags        []string   `json:"flags"`
	ReminderDays int        `json:"reminderDays,omitempty"`
	Due          *time.Time `json:"due,omitempty"`
	WebhookID    string     `json:"webhookId,omitempty"`
	CreatedAt    time.Time  `json:"createdAt"`
	Read         bool       `json:"read"`
	ReadAt       *time.Time `json:"readAt,omitempty"`
}

func viewNotification(n notify.Notification) notificationView {
	v := notificationView{
		ID: n.ID, Kind: string(n.Kind), Urgent: n.Urgent, Summary: n.Summary(),
		ClinicID: n.ClinicID, ClientID: n.ClientID, SessionID: n.SessionID, AssignmentID: n.AssignmentID,
		BookID: n.BookID, Flags: n.Flags, ReminderDays: n.ReminderDays, WebhookID: n.WebhookID,
		CreatedAt: n.CreatedAt, Read: n.Read(), Due: optionalTime(n.Due), ReadAt: optionalTime(n.ReadAt),
	}
	if v.Flags == nil {
		v.Flags = []string{}
	}
	return v
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// notificationPage is one page of the principal's notifications, with how
// many are unread in all (for a badge).
type notificationPage struct {
	Items      []notificationView `json:"items"`
	NextCursor string             `json:"nextCursor,omitempty"`
	Unread     int                `json:"unread"`
}

// markedAnswer says how many notifications mark-all-read marked and how
// many are left unread (created after through).
type markedAnswer struct {
	Marked int64 `json:"marked"`
	Unread int   `json:"unread"`
}

func (n *notificationRoutes) list(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	page, err := ParsePage(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	unreadOnly, err := parseBoolQuery(r, "unread")
	if err != nil {
		WriteError(w, r, err)
		return
	}
	got, err := n.store.List(r.Context(), p.ActorID, notify.ListOptions{UnreadOnly: unreadOnly, Limit: page.Limit, After: page.After})
	if err != nil {
		WriteError(w, r, cursorField(err))
		return
	}
	unread, err := n.store.Unread(r.Context(), p.ActorID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := notificationPage{Items: make([]notificationView, 0, len(got.Notifications)), Unread: unread}
	for _, note := range got.Notifications {
		out.Items = append(out.Items, viewNotification(note))
	}
	if got.Next != "" {
		out.NextCursor = EncodeCursor(got.Next)
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *notificationRoutes) markRead(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	note, err := n.store.MarkRead(r.Context(), p.ActorID, r.PathValue("notificationId"), n.clock())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewNotification(note))
}

// markAllRead marks every unread notification created up to ?through=
// (default now) read: a client passes the creation time of the newest one
// it showed, so one that arrived meanwhile stays unread.
func (n *notificationRoutes) markAllRead(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	now := n.clock()
	through, err := parseInstant(r, "through")
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if through.IsZero() {
		through = now
	}
	marked, err := n.store.MarkAllRead(r.Context(), p.ActorID, through, now)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	unread, err := n.store.Unread(r.Context(), p.ActorID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, markedAnswer{Marked: marked, Unread: unread})
}

// parseBoolQuery reads an optional boolean query parameter (false when
// absent).
func parseBoolQuery(r *http.Request, name string) (bool, error) {
	raw, ok := r.URL.Query()[name]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(raw[0])
	if len(raw) != 1 || err != nil {
		return false, badRequest(SlugInvalidRequest, name+" must be true or false",
			FieldError{Field: name, Message: "must be true or false", Slug: "invalid-boolean"})
	}
	return b, nil
}

// cursorField names the request's cursor parameter in a cursor-invalid
// refusal of the store (which calls its own field "after").
func cursorField(err error) error {
	var de *domain.Error
	if errors.As(err, &de) && de.Slug == "cursor-invalid" {
		return domain.Validation("cursor-invalid", "cursor", "%s", de.Message)
	}
	if err != nil {
		return fmt.Errorf("list notifications: %w", err)
	}
	return nil
}
