package reactions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/careflow/careflow/projections/notify"
	"github.com/careflow/careflow/projections/pgsql"
)

// Querier is a *sql.DB or the *sql.Tx of an inbox handler.
type Querier = notify.Querier

// TimerKind says what a timer does when it fires. The names are stable.
type TimerKind string

const (
	// TimerActivateSession issues ActivateSession at the session's start.
	TimerActivateSession TimerKind = "session.activate"
	// TimerAssignmentReminder records a reminder for the client
	// ReminderDays before the assignment is due.
	TimerAssignmentReminder TimerKind = "assignment.reminder"
	// TimerAssignmentOverdue issues MarkAssignmentOverdue the first instant
	// after the due date.
	TimerAssignmentOverdue TimerKind = "assignment.overdue"
)

// TimerState is where a timer is in its life.
type TimerState string

const (
	TimerPending   TimerState = "pending"
	TimerFired     TimerState = "fired"
	TimerCancelled TimerState = "cancelled"
)

// Timer is one durable timer of a session.
type Timer struct {
	ID           string
	Kind         TimerKind
	ClinicID     string
	ClientID     string
	SessionID    string
	AssignmentID string // "" for session timers
	ReminderDays int    // reminders only
	Due          time.Time
	// SourceVersion is the session stream version of the event that last
	// set or cancelled the timer: an older event never undoes a newer one.
	SourceVersion int64
	State         TimerState
	// NotBefore holds a timer back after a failed firing.
	NotBefore time.Time
	Failures  int
	FiredAt   time.Time
	// Outcome says what firing did: "activated", "marked-overdue",
	// "reminded", "duplicate" (the store had the command already),
	// "obsolete: <why>" or "refused: <slug>".
	Outcome string
}

// timerNamespace seeds timer ids.
var timerNamespace = uuid.MustParse("5c1e9b7a-3f2d-4a86-b0e4-7d9a2c6f1e35")

// TimerID is the id of a timer: the same session, assignment, kind and
// offset always give the same id, so a repeated event sets the same timer
// and the command a timer issues carries the same command id every time.
func TimerID(kind TimerKind, sessionID, assignmentID string, reminderDays int) string {
	return uuid.NewSHA1(timerNamespace, []byte(strings.Join([]string{string(kind), sessionID, assignmentID, strconv.Itoa(reminderDays)}, "\x00"))).String()
}

// TimerStore keeps timers durably. Writes that follow events take the
// inbox handler's transaction so they happen exactly once per event.
type TimerStore interface {
	// Set creates timers, or moves pending ones, unless the timer was last
	// set or cancelled by an event at version or later. Fired and
	// cancelled timers stay as they are.
	Set(ctx context.Context, q Querier, version int64, timers ...Timer) error
	// Cancel cancels the pending timers of a session, narrowed to one
	// assignment unless assignmentID is "" and to kinds unless none given.
	Cancel(ctx context.Context, q Querier, version int64, sessionID, assignmentID string, kinds ...TimerKind) error
	// Pending lists the pending timers of an assignment.
	Pending(ctx context.Context, q Querier, sessionID, assignmentID string) ([]Timer, error)
	// Due lists up to limit pending timers due at now, earliest first.
	Due(ctx context.Context, now time.Time, limit int) ([]Timer, error)
	// Next is when the earliest pending timer is due (ok false: none).
	Next(ctx context.Context) (at time.Time, ok bool, err error)
	// Finish marks a timer fired at at with its outcome.
	Finish(ctx context.Context, id string, at time.Time, outcome string) error
	// Move sets a pending timer's due time (firing found it early).
	Move(ctx context.Context, id string, due time.Time) error
	// Defer counts a failed firing and holds the timer back until until.
	Defer(ctx context.Context, id string, until time.Time) error
	// Get returns one timer.
	Get(ctx context.Context, id string) (Timer, error)
}

// ErrTimerNotFound: no timer has that id.
var ErrTimerNotFound = errors.New("reactions: no such timer")

// SQLiteTimers keeps timers in a table of a SQLite database opened with
// bus.OpenSQLite (WAL, synchronous=FULL): a timer set is on disk before the
// event that set it is acknowledged.
type SQLiteTimers struct {
	db *sql.DB
}

var _ TimerStore = (*SQLiteTimers)(nil)

// NewSQLiteTimers creates the timers table in db if missing.
func NewSQLiteTimers(ctx context.Context, db *sql.DB) (*SQLiteTimers, error) {
	if db == nil {
		return nil, errors.New("reactions: timers need a database")
	}
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS reaction_timers (
			id             TEXT    NOT NULL PRIMARY KEY,
			kind           TEXT    NOT NULL,
			clinic_id      TEXT    NOT NULL,
			client_id      TEXT    NOT NULL,
			session_id     TEXT    NOT NULL,
			assignment_id  TEXT    NOT NULL,
			reminder_days  INTEGER NOT NULL,
			due_at         INTEGER NOT NULL,
			source_version INTEGER NOT NULL,
			state          TEXT    NOT NULL CHECK (state IN ('pending', 'fired', 'cancelled')),
			not_before     INTEGER NOT NULL DEFAULT 0,
			failures       INTEGER NOT NULL DEFAULT 0,
			fired_at       INTEGER NOT NULL DEFAULT 0,
			outcome        TEXT    NOT NULL DEFAULT ''
		) STRICT`,
		`CREATE INDEX IF NOT EXISTS reaction_timers_pending ON reaction_timers (due_at) WHERE state = 'pending'`,
		`CREATE INDEX IF NOT EXISTS reaction_timers_by_session ON reaction_timers (session_id, assignment_id)`,
	} {
		if _, err := db.ExecContext(ctx, pgsql.DDL(db, ddl)); err != nil {
			return nil, fmt.Errorf("reactions: create timers table: %w", err)
		}
	}
	return &SQLiteTimers{db: db}, nil
}

// Set implements TimerStore.
func (s *SQLiteTimers) Set(ctx context.Context, q Querier, version int64, timers ...Timer) error {
	for _, t := range timers {
		if t.ID == "" || t.SessionID == "" || t.Due.IsZero() {
			return fmt.Errorf("reactions: timer needs an id, a session and a due time (%q)", t.ID)
		}
		_, err := q.ExecContext(ctx, `INSERT INTO reaction_timers (id, kind, clinic_id, client_id, session_id, assignment_id,
			reminder_days, due_at, source_version, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')
			ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, source_version = excluded.source_version,
				not_before = 0, failures = 0
			WHERE reaction_timers.state = 'pending' AND reaction_timers.source_version < excluded.source_version`,
			t.ID, string(t.Kind), t.ClinicID, t.ClientID, t.SessionID, t.AssignmentID, t.ReminderDays, t.Due.UnixNano(), version)
		if err != nil {
			return fmt.Errorf("reactions: set timer %s: %w", t.ID, err)
		}
	}
	return nil
}

// Cancel implements TimerStore.
func (s *SQLiteTimers) Cancel(ctx context.Context, q Querier, version int64, sessionID, assignmentID string, kinds ...TimerKind) error {
	query := `UPDATE reaction_timers SET state = 'cancelled', source_version = ?
		WHERE session_id = ? AND state = 'pending' AND source_version < ?`
	args := []any{version, sessionID, version}
	if assignmentID != "" {
		query += ` AND assignment_id = ?`
		args = append(args, assignmentID)
	}
	if len(kinds) > 0 {
		query += ` AND kind IN (?` + strings.Repeat(`, ?`, len(kinds)-1) + `)`
		for _, k := range kinds {
			args = append(args, string(k))
		}
	}
	if _, err := q.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("reactions: cancel timers of session %s: %w", sessionID, err)
	}
	return nil
}

// Pending implements TimerStore.
func (s *SQLiteTimers) Pending(ctx context.Context, q Querier, sessionID, assignmentID string) ([]Timer, error) {
	return scanTimers(q.QueryContext(ctx, `SELECT `+timerColumns+` FROM reaction_timers
		WHERE session_id = ? AND assignment_id = ? AND state = 'pending' ORDER BY due_at, id`, sessionID, assignmentID))
}

// Due implements TimerStore.
func (s *SQLiteTimers) Due(ctx context.Context, now time.Time, limit int) ([]Timer, error) {
	n := now.UnixNano()
	return scanTimers(s.db.QueryContext(ctx, `SELECT `+timerColumns+` FROM reaction_timers
		WHERE state = 'pending' AND due_at <= ? AND not_before <= ? ORDER BY due_at, id LIMIT ?`, n, n, limit))
}

// Next implements TimerStore.
func (s *SQLiteTimers) Next(ctx context.Context) (time.Time, bool, error) {
	var at sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT min(CASE WHEN due_at > not_before THEN due_at ELSE not_before END)
		FROM reaction_timers WHERE state = 'pending'`).Scan(&at)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reactions: next timer: %w", err)
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, at.Int64).UTC(), true, nil
}

// Finish implements TimerStore.
func (s *SQLiteTimers) Finish(ctx context.Context, id string, at time.Time, outcome string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE reaction_timers SET state = 'fired', fired_at = ?, outcome = ?
		WHERE id = ? AND state = 'pending'`, at.UnixNano(), outcome, id)
	if err != nil {
		return fmt.Errorf("reactions: finish timer %s: %w", id, err)
	}
	return nil
}

// Move implements TimerStore.
func (s *SQLiteTimers) Move(ctx context.Context, id string, due time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE reaction_timers SET due_at = ? WHERE id = ? AND state = 'pending'`, due.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("reactions: move timer %s: %w", id, err)
	}
	return nil
}

// Defer implements TimerStore.
func (s *SQLiteTimers) Defer(ctx context.Context, id string, until time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE reaction_timers SET failures = failures + 1, not_before = ?
		WHERE id = ? AND state = 'pending'`, until.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("reactions: defer timer %s: %w", id, err)
	}
	return nil
}

// Get implements TimerStore.
func (s *SQLiteTimers) Get(ctx context.Context, id string) (Timer, error) {
	out, err := scanTimers(s.db.QueryContext(ctx, `SELECT `+timerColumns+` FROM reaction_timers WHERE id = ?`, id))
	if err != nil {
		return Timer{}, err
	}
	if len(out) == 0 {
		return Timer{}, fmt.Errorf("%w: %s", ErrTimerNotFound, id)
	}
	return out[0], nil
}

const timerColumns = `id, kind, clinic_id, client_id, session_id, assignment_id, reminder_days, due_at, source_version,
	state, not_before, failures, fired_at, outcome`

func scanTimers(rows *sql.Rows, err error) ([]Timer, error) {
	if err != nil {
		return nil, fmt.Errorf("reactions: read timers: %w", err)
	}
	defer rows.Close()
	var out []Timer
	for rows.Next() {
		var t Timer
		var kind, state string
		var due, notBefore, fired int64
		if err := rows.Scan(&t.ID, &kind, &t.ClinicID, &t.ClientID, &t.SessionID, &t.AssignmentID, &t.ReminderDays, &due,
			&t.SourceVersion, &state, &notBefore, &t.Failures, &fired, &t.Outcome); err != nil {
			return nil, fmt.Errorf("reactions: read timers: %w", err)
		}
		t.Kind, t.State = TimerKind(kind), TimerState(state)
		t.Due = time.Unix(0, due).UTC()
		if notBefore != 0 {
			t.NotBefore = time.Unix(0, notBefore).UTC()
		}
		if fired != 0 {
			t.FiredAt = time.Unix(0, fired).UTC()
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reactions: read timers: %w", err)
	}
	return out, nil
}
