package reactions

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/projections/bus"
	"github.com/careflow/careflow/projections/notify"
	"github.com/careflow/careflow/projections/pgsql"
)

// Webhook limits.
const (
	MaxWebhookURL     = 2048
	MaxWebhookTypes   = 50
	MinWebhookSecret  = 16
	MaxWebhookSecret  = 256
	MaxWebhooksClinic = 20

	// DefaultRetryWindow is how long a delivery is retried from its first
	// attempt before the endpoint is disabled.
	DefaultRetryWindow = 72 * time.Hour
)

// EndpointState is whether an endpoint receives deliveries.
type EndpointState string

const (
	EndpointActive   EndpointState = "active"
	EndpointDisabled EndpointState = "disabled"
)

// Endpoint is a registered webhook endpoint. The secret is never read back.
type Endpoint struct {
	ID           string
	ClinicID     string
	URL          string
	Types        []string
	RegisteredBy string
	CreatedAt    time.Time
	State        EndpointState
	DisabledAt   time.Time
}

// Attempt is one try to deliver an event to an endpoint.
type Attempt struct {
	DeliveryID string
	EndpointID string
	EventID    string
	EventType  string
	Stream     string
	Version    int64
	Number     int // 1 for the first try of a delivery
	At         time.Time
	// StatusCode is the receiver's HTTP status, 0 when none came back.
	StatusCode int
	// Error says why it failed ("" on success): transport error or status.
	Error     string
	Succeeded bool
}

// WebhookConfig is what Webhooks needs.
type WebhookConfig struct {
	// DB holds the endpoint, delivery and attempt tables; the bus inbox
	// must live in the same database.
	DB *sql.DB
	// AllowInternalTargets lets endpoints point at loopback, private and
	// link-local addresses (and plain http to loopback). Off in
	// production: a clinic admin must not make careflow call its own
	// machine or network.
	AllowInternalTargets bool
	Codec                *codec.Registry
	Staff                commands.StaffDirectory
	Notifications        *notify.Store
	Clock                func() time.Time
	// NewID makes endpoint ids; defaults to uuid.New.
	NewID func() uuid.UUID
	// Client sends deliveries. It must not follow redirects (a redirect
	// could lead past the URL checks): NewWebhooks refuses one that does
	// not set CheckRedirect and makes its own when nil.
	Client *http.Client
	// RequestTimeout bounds one attempt. Defaults to 10s.
	RequestTimeout time.Duration
	// RetryInitial is the wait after the first failure; each next wait
	// doubles up to RetryMax, with jitter. Defaults 30s and 6h.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// RetryWindow is how long a delivery is retried from its first attempt
	// before the endpoint is disabled. Defaults to DefaultRetryWindow.
	RetryWindow time.Duration
	// Jitter returns a random duration in [0, d); defaults to
	// math/rand/v2. Tests make it fixed.
	Jitter func(d time.Duration) time.Duration
	// OrderGrace is how long a delivery waits for an earlier version of its
	// stream that the consumer has not seen (handed over out of order, or
	// from before the consumer's time) before it goes anyway. Defaults to
	// 5 minutes.
	OrderGrace time.Duration
	// MaxWait bounds how long Run sleeps between checks. Defaults to a
	// minute.
	MaxWait time.Duration
	Logger  *slog.Logger
	// Notified, when set, is called after an endpoint was disabled and its
	// admin notified (so the notification is delivered at once).
	Notified func()
}

// Webhooks registers clinic webhook endpoints and delivers the events of
// the clinic to them: slim, signed, in order per stream, retried with
// exponential backoff for RetryWindow. See docs/webhooks.md.
type Webhooks struct {
	cfg        WebhookConfig
	knownTypes []string
	families   []string
	nudge      chan struct{}
	// dispatching keeps DeliverDue single-flight, so order per stream
	// holds however often it is called.
	dispatching sync.Mutex
}

// NewWebhooks creates the tables if missing and checks cfg.
func NewWebhooks(ctx context.Context, cfg WebhookConfig) (*Webhooks, error) {
	var errs []error
	if cfg.DB == nil || cfg.Codec == nil || cfg.Staff == nil || cfg.Notifications == nil || cfg.Clock == nil {
		errs = append(errs, errors.New("reactions: webhooks need a database, a codec, a staff directory, the notification store and a clock"))
	}
	if cfg.Client != nil && cfg.Client.CheckRedirect == nil {
		errs = append(errs, errors.New("reactions: the webhook HTTP client must not follow redirects (set CheckRedirect)"))
	}
	if cfg.RetryInitial < 0 || cfg.RetryMax < 0 || cfg.RetryWindow < 0 || cfg.RequestTimeout < 0 {
		errs = append(errs, errors.New("reactions: webhook durations must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.NewID == nil {
		cfg.NewID = uuid.New
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if !cfg.AllowInternalTargets {
			// A public name can resolve to an internal address: check the
			// address actually dialled, not only the URL.
			dialer := &net.Dialer{Timeout: 10 * time.Second, Control: refuseInternalAddress}
			cfg.Client.Transport = &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 10 * time.Second}
		}
	}
	if cfg.RetryInitial == 0 {
		cfg.RetryInitial = 30 * time.Second
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 6 * time.Hour
	}
	if cfg.RetryMax < cfg.RetryInitial {
		return nil, fmt.Errorf("reactions: webhook RetryMax %s is below RetryInitial %s", cfg.RetryMax, cfg.RetryInitial)
	}
	if cfg.RetryWindow == 0 {
		cfg.RetryWindow = DefaultRetryWindow
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d)
		}
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = time.Minute
	}
	if cfg.OrderGrace <= 0 {
		cfg.OrderGrace = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, ddl := range webhookSchema {
		if _, err := cfg.DB.ExecContext(ctx, pgsql.DDL(cfg.DB, ddl)); err != nil {
			return nil, fmt.Errorf("reactions: create webhook tables: %w", err)
		}
	}
	w := &Webhooks{cfg: cfg, knownTypes: cfg.Codec.Names(), nudge: make(chan struct{}, 1)}
	for _, name := range w.knownTypes {
		family, _, _ := strings.Cut(name, ".")
		if !slices.Contains(w.families, family) {
			w.families = append(w.families, family)
		}
	}
	return w, nil
}

var webhookSchema = []string{
	`CREATE TABLE IF NOT EXISTS webhook_endpoints (
		id            TEXT    NOT NULL PRIMARY KEY,
		clinic_id     TEXT    NOT NULL,
		url           TEXT    NOT NULL,
		types         TEXT    NOT NULL,
		secret        TEXT    NOT NULL,
		registered_by TEXT    NOT NULL,
		created_at    INTEGER NOT NULL,
		state         TEXT    NOT NULL CHECK (state IN ('active', 'disabled')),
		disabled_at   INTEGER NOT NULL DEFAULT 0
	) STRICT`,
	`CREATE INDEX IF NOT EXISTS webhook_endpoints_by_clinic ON webhook_endpoints (clinic_id, state)`,
	`CREATE TABLE IF NOT EXISTS webhook_deliveries (
		id               TEXT    NOT NULL PRIMARY KEY,
		endpoint_id      TEXT    NOT NULL,
		event_id         TEXT    NOT NULL,
		event_type       TEXT    NOT NULL,
		stream           TEXT    NOT NULL,
		version          INTEGER NOT NULL,
		position         INTEGER NOT NULL,
		clinic_id        TEXT    NOT NULL,
		recorded_at      INTEGER NOT NULL,
		state            TEXT    NOT NULL CHECK (state IN ('pending', 'delivered')),
		attempts         INTEGER NOT NULL DEFAULT 0,
		first_attempt_at INTEGER NOT NULL DEFAULT 0,
		next_attempt_at  INTEGER NOT NULL,
		delivered_at     INTEGER NOT NULL DEFAULT 0,
		queued_at        INTEGER NOT NULL,
		UNIQUE (endpoint_id, event_id)
	) STRICT`,
	// How far the webhook consumer has seen each stream without a gap
	// (through), and the versions it saw above that: a delivery waits until
	// every earlier version of its stream was seen, since transports may
	// hand over events of one stream on different topics out of order.
	`CREATE TABLE IF NOT EXISTS webhook_stream_marks (
		stream  TEXT    NOT NULL PRIMARY KEY,
		through INTEGER NOT NULL
	) STRICT`,
	`CREATE TABLE IF NOT EXISTS webhook_stream_seen (
		stream  TEXT    NOT NULL,
		version INTEGER NOT NULL,
		PRIMARY KEY (stream, version)
	) STRICT`,
	`CREATE INDEX IF NOT EXISTS webhook_deliveries_pending ON webhook_deliveries (endpoint_id, stream, version) WHERE state = 'pending'`,
	`CREATE TABLE IF NOT EXISTS webhook_attempts (
		delivery_id TEXT    NOT NULL,
		number      INTEGER NOT NULL,
		endpoint_id TEXT    NOT NULL,
		at          INTEGER NOT NULL,
		status_code INTEGER NOT NULL,
		error       TEXT    NOT NULL,
		succeeded   INTEGER NOT NULL,
		PRIMARY KEY (delivery_id, number)
	) STRICT`,
	`CREATE INDEX IF NOT EXISTS webhook_attempts_by_endpoint ON webhook_attempts (endpoint_id, at DESC)`,
}

// Topics are the bus topics the webhook consumer must subscribe to: one
// per event family the codec knows.
func (w *Webhooks) Topics() []string {
	var out []string
	for _, f := range w.families {
		if topic, err := bus.TopicFor(f); err == nil {
			out = append(out, topic)
		}
	}
	return out
}

// RegisterWebhook registers an endpoint of clinicID that receives the
// clinic's events whose type matches one of types: an exact event type
// ("assignment.completed"), a family ("session.*") or "*" for all. url
// must be https, or http to a loopback host (for local receivers). secret
// (16–256 printable characters) signs every delivery.
//
// admin must be a clinic admin of the clinic, an institute admin of its
// institute, or a system admin; another role is forbidden, and a clinic
// the admin does not administer is not found. admin is notified when the
// endpoint is disabled.
func (w *Webhooks) RegisterWebhook(ctx context.Context, admin domain.Actor, clinicID, rawURL string, types []string, secret string) (Endpoint, error) {
	if err := w.authorize(ctx, admin, clinicID, "register webhooks"); err != nil {
		return Endpoint{}, err
	}
	var errs domain.ValidationErrors
	cleanURL, err := ValidateWebhookURL(rawURL, w.cfg.AllowInternalTargets)
	if err != nil {
		errs = append(errs, err.(*domain.Error))
	}
	cleanTypes, typeErrs := w.validateTypes(types)
	errs = append(errs, typeErrs...)
	if err := validateSecret(secret); err != nil {
		errs = append(errs, err)
	}
	if err := errs.Err(); err != nil {
		return Endpoint{}, err
	}
	var count int
	if err := w.cfg.DB.QueryRowContext(ctx, `SELECT count(*) FROM webhook_endpoints WHERE clinic_id = ?`, clinicID).Scan(&count); err != nil {
		return Endpoint{}, fmt.Errorf("reactions: count webhooks: %w", err)
	}
	if count >= MaxWebhooksClinic {
		return Endpoint{}, domain.Conflict("too-many-webhooks", "a clinic has at most %d webhook endpoints", MaxWebhooksClinic)
	}
	typesJSON, err := json.Marshal(cleanTypes)
	if err != nil {
		return Endpoint{}, fmt.Errorf("reactions: encode webhook types: %w", err)
	}
	ep := Endpoint{
		ID: w.cfg.NewID().String(), ClinicID: clinicID, URL: cleanURL, Types: cleanTypes,
		RegisteredBy: admin.ID, CreatedAt: w.cfg.Clock().UTC(), State: EndpointActive,
	}
	if _, err := w.cfg.DB.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, clinic_id, url, types, secret, registered_by, created_at, state)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'active')`,
		ep.ID, ep.ClinicID, ep.URL, string(typesJSON), secret, ep.RegisteredBy, ep.CreatedAt.UnixNano()); err != nil {
		return Endpoint{}, fmt.Errorf("reactions: register webhook: %w", err)
	}
	return ep, nil
}

// Endpoints lists clinicID's endpoints, oldest first.
func (w *Webhooks) Endpoints(ctx context.Context, admin domain.Actor, clinicID string) ([]Endpoint, error) {
	if err := w.authorize(ctx, admin, clinicID, "list webhooks"); err != nil {
		return nil, err
	}
	return w.endpoints(ctx, w.cfg.DB, `clinic_id = ? ORDER BY created_at, id`, clinicID)
}

// Endpoint returns one of clinicID's endpoints.
func (w *Webhooks) Endpoint(ctx context.Context, admin domain.Actor, clinicID, endpointID string) (Endpoint, error) {
	if err := w.authorize(ctx, admin, clinicID, "read webhooks"); err != nil {
		return Endpoint{}, err
	}
	return w.endpoint(ctx, clinicID, endpointID)
}

func (w *Webhooks) endpoint(ctx context.Context, clinicID, endpointID string) (Endpoint, error) {
	eps, err := w.endpoints(ctx, w.cfg.DB, `clinic_id = ? AND id = ?`, clinicID, endpointID)
	if err != nil {
		return Endpoint{}, err
	}
	if len(eps) == 0 {
		return Endpoint{}, domain.NotFound("webhook-not-found", "no such webhook endpoint")
	}
	return eps[0], nil
}

// Attempts lists the latest delivery attempts to one of clinicID's
// endpoints, newest first (limit 1–500, 0 means 100).
func (w *Webhooks) Attempts(ctx context.Context, admin domain.Actor, clinicID, endpointID string, limit int) ([]Attempt, error) {
	if err := w.authorize(ctx, admin, clinicID, "read webhook attempts"); err != nil {
		return nil, err
	}
	if _, err := w.endpoint(ctx, clinicID, endpointID); err != nil {
		return nil, err
	}
	switch {
	case limit == 0:
		limit = 100
	case limit < 0 || limit > 500:
		return nil, domain.Validation("limit-out-of-range", "limit", "limit must be between 1 and 500")
	}
	rows, err := w.cfg.DB.QueryContext(ctx, `SELECT a.delivery_id, a.endpoint_id, d.event_id, d.event_type, d.stream, d.version,
		a.number, a.at, a.status_code, a.error, a.succeeded
		FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
		WHERE a.endpoint_id = ? ORDER BY a.at DESC, d.position DESC, a.number DESC LIMIT ?`, endpointID, limit)
	if err != nil {
		return nil, fmt.Errorf("reactions: list attempts: %w", err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var at int64
		var ok int
		if err := rows.Scan(&a.DeliveryID, &a.EndpointID, &a.EventID, &a.EventType, &a.Stream, &a.Version, &a.Number, &at,
			&a.StatusCode, &a.Error, &ok); err != nil {
			return nil, fmt.Errorf("reactions: list attempts: %w", err)
		}
		a.At = time.Unix(0, at).UTC()
		a.Succeeded = ok != 0
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reactions: list attempts: %w", err)
	}
	return out, nil
}

// EnableWebhook re-enables a disabled endpoint: its waiting deliveries
// are tried again at once, each with a fresh retry window.
func (w *Webhooks) EnableWebhook(ctx context.Context, admin domain.Actor, clinicID, endpointID string) (Endpoint, error) {
	if err := w.authorize(ctx, admin, clinicID, "enable webhooks"); err != nil {
		return Endpoint{}, err
	}
	if _, err := w.endpoint(ctx, clinicID, endpointID); err != nil {
		return Endpoint{}, err
	}
	now := w.cfg.Clock().UnixNano()
	tx, err := w.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return Endpoint{}, fmt.Errorf("reactions: enable webhook: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `UPDATE webhook_endpoints SET state = 'active', disabled_at = 0 WHERE id = ?`, endpointID); err != nil {
		return Endpoint{}, fmt.Errorf("reactions: enable webhook: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET first_attempt_at = 0, next_attempt_at = ?
		WHERE endpoint_id = ? AND state = 'pending'`, now, endpointID); err != nil {
		return Endpoint{}, fmt.Errorf("reactions: enable webhook: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Endpoint{}, fmt.Errorf("reactions: enable webhook: %w", err)
	}
	w.Nudge()
	return w.endpoint(ctx, clinicID, endpointID)
}

// DeleteWebhook removes an endpoint with its deliveries and attempts.
func (w *Webhooks) DeleteWebhook(ctx context.Context, admin domain.Actor, clinicID, endpointID string) error {
	if err := w.authorize(ctx, admin, clinicID, "delete webhooks"); err != nil {
		return err
	}
	if _, err := w.endpoint(ctx, clinicID, endpointID); err != nil {
		return err
	}
	tx, err := w.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("reactions: delete webhook: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range []string{
		`DELETE FROM webhook_attempts WHERE endpoint_id = ?`,
		`DELETE FROM webhook_deliveries WHERE endpoint_id = ?`,
		`DELETE FROM webhook_endpoints WHERE id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, stmt, endpointID); err != nil {
			return fmt.Errorf("reactions: delete webhook: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("reactions: delete webhook: %w", err)
	}
	return nil
}

// authorize lets clinic admins of the clinic, institute admins of its
// institute and system admins manage its webhooks.
func (w *Webhooks) authorize(ctx context.Context, admin domain.Actor, clinicID, what string) error {
	allowed := []domain.Role{domain.RoleClinicAdmin, domain.RoleInstituteAdmin, domain.RoleSystemAdmin}
	if admin.ID == "" || !slices.Contains(allowed, admin.Role) {
		name := string(admin.Role)
		if name == "" {
			name = "user without a role"
		}
		return domain.Forbidden("forbidden", "a %s may not %s", name, what)
	}
	notFound := domain.NotFound("clinic-not-found", "no such clinic")
	if strings.TrimSpace(clinicID) == "" {
		return notFound
	}
	roles, err := w.cfg.Staff.ClinicRoles(ctx, clinicID, admin.ID)
	if domain.KindOf(err) == domain.KindNotFound {
		return notFound
	}
	if err != nil {
		return err
	}
	if admin.Role != domain.RoleSystemAdmin && !slices.Contains(roles, admin.Role) {
		return notFound
	}
	return nil
}

// ValidateWebhookURL accepts an absolute https URL without credentials or
// fragment and returns it normalized. Unless allowInternal, the host must
// not be a loopback, private, link-local or unspecified address (or
// localhost); with allowInternal, plain http to a loopback host is allowed
// too (for a receiver on the same machine in development and tests).
func ValidateWebhookURL(raw string, allowInternal bool) (string, error) {
	invalid := func(format string, args ...any) error {
		return domain.Validation("webhook-url-invalid", "url", format, args...)
	}
	if raw == "" || len(raw) > MaxWebhookURL {
		return "", invalid("the URL is required and at most %d characters", MaxWebhookURL)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return "", invalid("the URL must be absolute, like https://hooks.example.org/careflow")
	}
	if u.User != nil {
		return "", invalid("the URL must not carry credentials; the signature authenticates deliveries")
	}
	if u.Fragment != "" {
		return "", invalid("the URL must not have a fragment")
	}
	host := u.Hostname()
	if host == "" {
		return "", invalid("the URL needs a host")
	}
	if !allowInternal && (isLoopback(host) || isInternalIP(net.ParseIP(host))) {
		return "", invalid("the URL must not point at this machine or a private network")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !allowInternal || !isLoopback(host) {
			return "", invalid("the scheme must be https")
		}
	default:
		return "", invalid("the scheme must be https")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	return u.String(), nil
}

// isInternalIP: addresses a webhook must not reach from careflow's host.
func isInternalIP(ip net.IP) bool {
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast())
}

// refuseInternalAddress is a dialer Control: it refuses a connection to an
// internal address whatever name led there.
func refuseInternalAddress(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if isInternalIP(net.ParseIP(host)) {
		return fmt.Errorf("webhook: refusing to connect to internal address %s", host)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var typePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}\.([a-z][a-z0-9_]{0,63}|\*)$`)

// validateTypes checks the filters: 1–MaxWebhookTypes, each "*", a known
// family + ".*" or a known event type, no repeats. They are returned
// sorted.
func (w *Webhooks) validateTypes(types []string) ([]string, domain.ValidationErrors) {
	var errs domain.ValidationErrors
	if len(types) == 0 || len(types) > MaxWebhookTypes {
		return nil, append(errs, domain.Validation("webhook-types-invalid", "types", "give 1 to %d event types", MaxWebhookTypes))
	}
	seen := map[string]bool{}
	for i, t := range types {
		field := fmt.Sprintf("types[%d]", i)
		t = strings.TrimSpace(t)
		switch {
		case seen[t]:
			errs = append(errs, domain.Validation("webhook-types-invalid", field, "%q is given twice", t))
		case t == "*":
		case !typePattern.MatchString(t):
			errs = append(errs, domain.Validation("webhook-types-invalid", field, "%q is not an event type, a family like \"session.*\" or \"*\"", t))
		case strings.HasSuffix(t, ".*"):
			if !slices.Contains(w.families, strings.TrimSuffix(t, ".*")) {
				errs = append(errs, domain.Validation("webhook-types-invalid", field, "there is no event family %q", strings.TrimSuffix(t, ".*")))
			}
		default:
			if !slices.Contains(w.knownTypes, t) {
				errs = append(errs, domain.Validation("webhook-types-invalid", field, "there is no event type %q", t))
			}
		}
		seen[t] = true
	}
	if seen["*"] && len(types) > 1 {
		errs = append(errs, domain.Validation("webhook-types-invalid", "types", "\"*\" already matches every type; give it alone"))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}

func validateSecret(secret string) *domain.Error {
	if n := len(secret); n < MinWebhookSecret || n > MaxWebhookSecret {
		return domain.Validation("webhook-secret-invalid", "secret", "the secret is %d to %d characters", MinWebhookSecret, MaxWebhookSecret)
	}
	for _, r := range secret {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return domain.Validation("webhook-secret-invalid", "secret", "the secret must be printable ASCII")
		}
	}
	return nil
}

// matches reports whether an event type passes an endpoint's filters.
func matches(types []string, eventType string) bool {
	family, _, _ := strings.Cut(eventType, ".")
	for _, t := range types {
		if t == "*" || t == eventType || t == family+".*" {
			return true
		}
	}
	return false
}

type endpointRow struct {
	Endpoint
	secret string
}

func (w *Webhooks) endpoints(ctx context.Context, q Querier, where string, args ...any) ([]Endpoint, error) {
	rows, err := w.endpointRows(ctx, q, where, args...)
	if err != nil {
		return nil, err
	}
	out := make([]Endpoint, len(rows))
	for i, r := range rows {
		out[i] = r.Endpoint
	}
	return out, nil
}

func (w *Webhooks) endpointRows(ctx context.Context, q Querier, where string, args ...any) ([]endpointRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, clinic_id, url, types, secret, registered_by, created_at, state, disabled_at
		FROM webhook_endpoints WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("reactions: read webhooks: %w", err)
	}
	defer rows.Close()
	var out []endpointRow
	for rows.Next() {
		var r endpointRow
		var types, state string
		var created, disabled int64
		if err := rows.Scan(&r.ID, &r.ClinicID, &r.URL, &types, &r.secret, &r.RegisteredBy, &created, &state, &disabled); err != nil {
			return nil, fmt.Errorf("reactions: read webhooks: %w", err)
		}
		if err := json.Unmarshal([]byte(types), &r.Types); err != nil {
			return nil, fmt.Errorf("reactions: webhook %s types: %w", r.ID, err)
		}
		r.State = EndpointState(state)
		r.CreatedAt = time.Unix(0, created).UTC()
		if disabled != 0 {
			r.DisabledAt = time.Unix(0, disabled).UTC()
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reactions: read webhooks: %w", err)
	}
	return out, nil
}
