package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/projections/pgsql"
)

// Querier is what the store writes and reads through: a *sql.DB, or the
// *sql.Tx of a bus inbox handler so a notification is added exactly once
// per event.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Listing bounds.
const (
	DefaultListLimit = 50
	MaxListLimit     = 200
)

// Store is the notifications read model in a SQLite database (open it
// with bus.OpenSQLite: WAL, synchronous=FULL).
type Store struct {
	db *sql.DB
}

// NewStore creates the notifications table in db if missing.
func NewStore(ctx context.Context, db *sql.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("notify: store needs a database")
	}
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS notifications (
			id            TEXT    NOT NULL PRIMARY KEY,
			recipient_id  TEXT    NOT NULL,
			kind          TEXT    NOT NULL,
			urgent        INTEGER NOT NULL,
			clinic_id     TEXT    NOT NULL,
			client_id     TEXT    NOT NULL,
			session_id    TEXT    NOT NULL,
			assignment_id TEXT    NOT NULL,
			book_id       TEXT    NOT NULL,
			flags         TEXT    NOT NULL,
			reminder_days INTEGER NOT NULL,
			due_at        INTEGER NOT NULL,
			webhook_id    TEXT    NOT NULL,
			event_id      TEXT    NOT NULL,
			created_at    INTEGER NOT NULL,
			read_at       INTEGER,
			delivered_at  INTEGER,
			delivery_failures INTEGER NOT NULL DEFAULT 0
		) STRICT`,
		`CREATE INDEX IF NOT EXISTS notifications_by_recipient ON notifications (recipient_id, created_at DESC, id DESC)`,
		`CREATE INDEX IF NOT EXISTS notifications_undelivered ON notifications (urgent DESC, created_at) WHERE delivered_at IS NULL`,
	} {
		if _, err := db.ExecContext(ctx, pgsql.DDL(db, ddl)); err != nil {
			return nil, fmt.Errorf("notify: create tables: %w", err)
		}
	}
	return &Store{db: db}, nil
}

// DB is the database the store lives in.
func (s *Store) DB() *sql.DB { return s.db }

// Add records n through q unless a notification with its id exists; it
// reports whether n was new. n needs an id, a recipient, a known kind and
// a creation time.
func (s *Store) Add(ctx context.Context, q Querier, n Notification) (bool, error) {
	if n.ID == "" || n.RecipientID == "" || !n.Kind.Valid() || n.CreatedAt.IsZero() {
		return false, fmt.Errorf("notify: notification needs an id, a recipient, a known kind and a time (id %q, kind %q)", n.ID, n.Kind)
	}
	for _, f := range n.Flags {
		if strings.Contains(f, ",") {
			return false, fmt.Errorf("notify: flag kind %q must not contain a comma", f)
		}
	}
	res, err := q.ExecContext(ctx, `INSERT INTO notifications (id, recipient_id, kind, urgent, clinic_id, client_id, session_id,
		assignment_id, book_id, flags, reminder_days, due_at, webhook_id, event_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		n.ID, n.RecipientID, string(n.Kind), boolInt(n.Urgent), n.ClinicID, n.ClientID, n.SessionID,
		n.AssignmentID, n.BookID, strings.Join(n.Flags, ","), n.ReminderDays, nanos(n.Due), n.WebhookID, n.EventID, n.CreatedAt.UnixNano())
	if err != nil {
		return false, fmt.Errorf("notify: add %s: %w", n.ID, err)
	}
	added, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("notify: add %s: %w", n.ID, err)
	}
	return added == 1, nil
}

// ListOptions narrow a recipient's listing.
type ListOptions struct {
	// UnreadOnly leaves out what was marked read.
	UnreadOnly bool
	// Limit is the page size: DefaultListLimit when 0, at most MaxListLimit.
	Limit int
	// After is the Next cursor of the previous page ("" for the first).
	After string
}

// Page is one page of a listing, newest first. Next is the cursor of the
// following page, "" when this is the last.
type Page struct {
	Notifications []Notification
	Next          string
}

// List returns recipientID's notifications, newest first.
func (s *Store) List(ctx context.Context, recipientID string, opts ListOptions) (Page, error) {
	if recipientID == "" {
		return Page{}, domain.Validation("recipient-required", "recipient", "a recipient is required")
	}
	limit := opts.Limit
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit < 0 || limit > MaxListLimit:
		return Page{}, domain.Validation("limit-out-of-range", "limit", "limit must be between 1 and %d", MaxListLimit)
	}
	query := `SELECT ` + columns + ` FROM notifications WHERE recipient_id = ?`
	args := []any{recipientID}
	if opts.UnreadOnly {
		query += ` AND read_at IS NULL`
	}
	if opts.After != "" {
		at, id, err := parseCursor(opts.After)
		if err != nil {
			return Page{}, err
		}
		query += ` AND (created_at < ? OR (created_at = ? AND id < ?))`
		args = append(args, at, at, id)
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit+1)
	out, err := s.query(ctx, s.db, query, args...)
	if err != nil {
		return Page{}, err
	}
	page := Page{Notifications: out}
	if len(out) > limit {
		page.Notifications = out[:limit]
		last := out[limit-1]
		page.Next = strconv.FormatInt(last.CreatedAt.UnixNano(), 10) + "_" + last.ID
	}
	return page, nil
}

// Get returns one of recipientID's notifications; another recipient's is
// not found, so nothing about it leaks.
func (s *Store) Get(ctx context.Context, recipientID, id string) (Notification, error) {
	out, err := s.query(ctx, s.db, `SELECT `+columns+` FROM notifications WHERE recipient_id = ? AND id = ?`, recipientID, id)
	if err != nil {
		return Notification{}, err
	}
	if len(out) == 0 {
		return Notification{}, domain.NotFound("notification-not-found", "no such notification")
	}
	return out[0], nil
}

// MarkRead marks one of recipientID's notifications read at at. Marking it
// again keeps the first time.
func (s *Store) MarkRead(ctx context.Context, recipientID, id string, at time.Time) (Notification, error) {
	if _, err := s.db.ExecContext(ctx, `UPDATE notifications SET read_at = ? WHERE recipient_id = ? AND id = ? AND read_at IS NULL`,
		at.UnixNano(), recipientID, id); err != nil {
		return Notification{}, fmt.Errorf("notify: mark %s read: %w", id, err)
	}
	return s.Get(ctx, recipientID, id)
}

// MarkAllRead marks every unread notification of recipientID created up
// to through read at at, and returns how many it marked.
func (s *Store) MarkAllRead(ctx context.Context, recipientID string, through, at time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE notifications SET read_at = ? WHERE recipient_id = ? AND read_at IS NULL AND created_at <= ?`,
		at.UnixNano(), recipientID, through.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("notify: mark all read: %w", err)
	}
	return res.RowsAffected()
}

// Unread counts recipientID's unread notifications.
func (s *Store) Unread(ctx context.Context, recipientID string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM notifications WHERE recipient_id = ? AND read_at IS NULL`, recipientID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("notify: count unread: %w", err)
	}
	return n, nil
}

// Undelivered returns up to limit notifications no Deliverer has taken
// yet, urgent ones first, then oldest first.
func (s *Store) Undelivered(ctx context.Context, limit int) ([]Notification, error) {
	return s.query(ctx, s.db, `SELECT `+columns+` FROM notifications WHERE delivered_at IS NULL
		ORDER BY urgent DESC, created_at, id LIMIT ?`, limit)
}

// MarkDelivered records that n was handed to a Deliverer at at.
func (s *Store) MarkDelivered(ctx context.Context, id string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE notifications SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL`, at.UnixNano(), id); err != nil {
		return fmt.Errorf("notify: mark %s delivered: %w", id, err)
	}
	return nil
}

// noteFailure counts a failed delivery of id.
func (s *Store) noteFailure(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE notifications SET delivery_failures = delivery_failures + 1 WHERE id = ?`, id); err != nil {
		return fmt.Errorf("notify: note failed delivery of %s: %w", id, err)
	}
	return nil
}

const columns = `id, recipient_id, kind, urgent, clinic_id, client_id, session_id, assignment_id, book_id, flags,
	reminder_days, due_at, webhook_id, event_id, created_at, read_at, delivered_at`

func (s *Store) query(ctx context.Context, q Querier, query string, args ...any) ([]Notification, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("notify: query: %w", err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		var n Notification
		var kind, flags string
		var urgent int
		var due, created int64
		var read, delivered sql.NullInt64
		if err := rows.Scan(&n.ID, &n.RecipientID, &kind, &urgent, &n.ClinicID, &n.ClientID, &n.SessionID, &n.AssignmentID,
			&n.BookID, &flags, &n.ReminderDays, &due, &n.WebhookID, &n.EventID, &created, &read, &delivered); err != nil {
			return nil, fmt.Errorf("notify: scan: %w", err)
		}
		n.Kind = Kind(kind)
		n.Urgent = urgent != 0
		if flags != "" {
			n.Flags = strings.Split(flags, ",")
		}
		n.Due = fromNanos(due)
		n.CreatedAt = fromNanos(created)
		if read.Valid {
			n.ReadAt = fromNanos(read.Int64)
		}
		if delivered.Valid {
			n.DeliveredAt = fromNanos(delivered.Int64)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notify: query: %w", err)
	}
	return out, nil
}

func parseCursor(cursor string) (int64, string, error) {
	at, id, ok := strings.Cut(cursor, "_")
	nanos, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || id == "" {
		return 0, "", domain.Validation("cursor-invalid", "after", "the cursor is not one this listing returned")
	}
	return nanos, id, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
