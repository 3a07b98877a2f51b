package views

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

// ClinicOverviewProjection is the name of the clinic overview projection.
const ClinicOverviewProjection = "clinic_overview"

// The clinic overview is what a clinic admin watches: how many clients are
// in care, how many sessions are in each state, and per provider the work
// left undone in the open sessions they hold. Whether work is late is
// decided when the overview is read, against the caller's clock.
type clinicOverviewProjection struct {
	dec   *decoder
	w     writer
	types typeSet
}

func newClinicOverview(dec *decoder) *clinicOverviewProjection {
	return &clinicOverviewProjection{dec: dec, types: types(
		organization.ClinicCreated{}.EventType(), organization.ClinicProviderJoined{}.EventType(),
		organization.ClinicProviderLeft{}.EventType(), organization.ProviderRegistered{}.EventType(),
		organization.ProviderDeactivated{}.EventType(), organization.ProviderReactivated{}.EventType(),
		organization.ClientRegistered{}.EventType(), organization.ClientDeactivated{}.EventType(),
		organization.ClientReactivated{}.EventType(),
		care.SessionScheduled{}.EventType(), care.SessionActivated{}.EventType(), care.SessionRescheduled{}.EventType(),
		care.SessionCancelled{}.EventType(), care.SessionClosed{}.EventType(),
		care.AssignmentGiven{}.EventType(), care.AssignmentCompleted{}.EventType(), care.AssignmentOverdue{}.EventType(),
		care.AssignmentFeedbackGiven{}.EventType(),
	)}
}

func (p *clinicOverviewProjection) reads() typeSet { return p.types }

func (*clinicOverviewProjection) Name() string { return ClinicOverviewProjection }
func (*clinicOverviewProjection) Version() int { return 1 }
func (*clinicOverviewProjection) Tables() []string {
	return []string{"co_clinics", "co_providers", "co_members", "co_clients", "co_sessions", "co_assignments"}
}

// ReadsNoMetadata implements projections.BodiesOnly.
func (*clinicOverviewProjection) ReadsNoMetadata() {}

func (*clinicOverviewProjection) Schema(t projections.TableNames) []string {
	return schema(t,
		`CREATE TABLE {co_clinics} (
			clinic_id TEXT PRIMARY KEY,
			name      TEXT NOT NULL)`,
		`CREATE TABLE {co_providers} (
			provider_id  TEXT PRIMARY KEY,
			display_name TEXT NOT NULL,
			active       INTEGER NOT NULL)`,
		`CREATE TABLE {co_members} (
			clinic_id   TEXT NOT NULL,
			provider_id TEXT NOT NULL,
			PRIMARY KEY (clinic_id, provider_id))`,
		`CREATE TABLE {co_clients} (
			clinic_id TEXT NOT NULL,
			client_id TEXT NOT NULL,
			active    INTEGER NOT NULL,
			PRIMARY KEY (clinic_id, client_id))`,
		`CREATE TABLE {co_sessions} (
			session_id  TEXT PRIMARY KEY,
			clinic_id   TEXT NOT NULL,
			provider_id TEXT NOT NULL,
			state       TEXT NOT NULL,
			ends_at     BIGINT NOT NULL)`,
		`CREATE INDEX {co_sessions}_clinic ON {co_sessions} (clinic_id)`,
		// Whether the work is still open, and whose, is read from the
		// session when the overview is read: closing a session touches
		// one row.
		`CREATE TABLE {co_assignments} (
			session_id    TEXT NOT NULL,
			assignment_id TEXT NOT NULL,
			due           BIGINT NOT NULL,
			completed     INTEGER NOT NULL,
			feedback      INTEGER NOT NULL,
			overdue       INTEGER NOT NULL,
			PRIMARY KEY (session_id, assignment_id))`,
	)
}

// Prepare implements projections.Preparer: it decodes the events this
// projection reads (nil for the others).
func (p *clinicOverviewProjection) Prepare(e eventstore.RecordedEvent) (any, error) {
	return p.dec.prepare(p.types, e)
}

// Apply implements projections.Projection.
func (p *clinicOverviewProjection) Apply(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent) error {
	v, err := p.Prepare(e)
	if err != nil {
		return err
	}
	return p.ApplyPrepared(ctx, tx, t, e, v)
}

// The overview's sessions and assignments are held through a batch
// (held.go): most of their changes follow within a few events.
var (
	coSessions     = newTable("co_sessions", 1, "session_id", "clinic_id", "provider_id", "state", "ends_at")
	coSessionState = coSessions.setter("state")
	coSessionEnd   = coSessions.setter("ends_at")

	coAssignments         = newTable("co_assignments", 2, "session_id", "assignment_id", "due", "completed", "feedback", "overdue")
	coAssignmentDue       = coAssignments.setter("due")
	coAssignmentCompleted = coAssignments.setter("completed")
	coAssignmentOverdue   = coAssignments.setter("overdue")
	coAssignmentFeedback  = coAssignments.setter("feedback")
)

// Flush implements projections.Flusher: it writes the rows the batch held.
func (p *clinicOverviewProjection) Flush(ctx context.Context, tx *sql.Tx, t projections.TableNames) error {
	return p.w.flush(ctx, tx, t)
}

// ApplyPrepared implements projections.Preparer: v is the decoded event.
func (p *clinicOverviewProjection) ApplyPrepared(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent, v any) error {
	if v == nil {
		return nil
	}
	out := p.w.in(ctx, tx, t)
	exec := out.exec
	switch ev := v.(type) {
	case organization.ClinicCreated:
		return exec(`INSERT INTO {co_clinics} (clinic_id, name) VALUES (?, ?)
			ON CONFLICT (clinic_id) DO UPDATE SET name = excluded.name`, ev.ClinicID, ev.Name)
	case organization.ProviderRegistered:
		return exec(`INSERT INTO {co_providers} (provider_id, display_name, active) VALUES (?, ?, 1)
			ON CONFLICT (provider_id) DO UPDATE SET display_name = excluded.display_name, active = 1`,
			ev.ProviderID, ev.DisplayName)
	case organization.ProviderDeactivated:
		return exec(`UPDATE {co_providers} SET active = 0 WHERE provider_id = ?`, ev.ProviderID)
	case organization.ProviderReactivated:
		return exec(`UPDATE {co_providers} SET active = 1 WHERE provider_id = ?`, ev.ProviderID)
	case organization.ClinicProviderJoined:
		return exec(`INSERT INTO {co_members} (clinic_id, provider_id) VALUES (?, ?)
			ON CONFLICT (clinic_id, provider_id) DO NOTHING`, ev.ClinicID, ev.ProviderID)
	case organization.ClinicProviderLeft:
		return exec(`DELETE FROM {co_members} WHERE clinic_id = ? AND provider_id = ?`, ev.ClinicID, ev.ProviderID)
	case organization.ClientRegistered:
		return exec(`INSERT INTO {co_clients} (clinic_id, client_id, active) VALUES (?, ?, 1)
			ON CONFLICT (clinic_id, client_id) DO UPDATE SET active = 1`, ev.ClinicID, ev.ClientID)
	case organization.ClientDeactivated:
		return exec(`UPDATE {co_clients} SET active = 0 WHERE clinic_id = ? AND client_id = ?`, ev.ClinicID, ev.ClientID)
	case organization.ClientReactivated:
		return exec(`UPDATE {co_clients} SET active = 1 WHERE clinic_id = ? AND client_id = ?`, ev.ClinicID, ev.ClientID)
	case care.SessionScheduled:
		return out.put(coSessions, ev.SessionID, ev.ClinicID, ev.ProviderID, string(care.StateScheduled), ev.End.UnixNano())
	case care.SessionActivated:
		return out.set(coSessionState, string(care.StateActive), ev.SessionID)
	case care.SessionRescheduled:
		if err := out.set(coSessionEnd, ev.End.UnixNano(), ev.SessionID); err != nil {
			return err
		}
		for _, m := range ev.Dues {
			if err := out.set(coAssignmentDue, m.Due.UnixNano(), ev.SessionID, m.AssignmentID); err != nil {
				return err
			}
		}
		return nil
	case care.SessionCancelled:
		return out.set(coSessionState, string(care.StateCancelled), ev.SessionID)
	case care.SessionClosed:
		return out.set(coSessionState, string(care.StateClosed), ev.SessionID)
	case care.AssignmentGiven:
		return out.put(coAssignments, ev.SessionID, ev.AssignmentID, ev.Due.UnixNano(), 0, 0, 0)
	case care.AssignmentCompleted:
		return out.set(coAssignmentCompleted, 1, ev.SessionID, ev.AssignmentID)
	case care.AssignmentOverdue:
		return out.set(coAssignmentOverdue, 1, ev.SessionID, ev.AssignmentID)
	case care.AssignmentFeedbackGiven:
		return out.set(coAssignmentFeedback, 1, ev.SessionID, ev.AssignmentID)
	}
	return nil
}

// ClinicReport is a clinic's overview at a moment.
type ClinicReport struct {
	ClinicID        string             `json:"clinicId"`
	ClinicName      string             `json:"clinicName"`
	AsOf            time.Time          `json:"asOf"`
	ActiveClients   int                `json:"activeClients"`
	InactiveClients int                `json:"inactiveClients"`
	Sessions        SessionCounts      `json:"sessions"`
	Providers       []ProviderWorkload `json:"providers"`
}

// SessionCounts counts a clinic's sessions per state.
type SessionCounts struct {
	Scheduled int `json:"scheduled"`
	Active    int `json:"active"`
	Closed    int `json:"closed"`
	Cancelled int `json:"cancelled"`
}

// ProviderWorkload is the work undone in the open sessions one provider
// holds: assignments past their due date and not completed, completed
// assignments without feedback, and sessions past their end not closed.
// Member says whether the provider still belongs to the clinic: one who
// left is listed while they hold open work.
type ProviderWorkload struct {
	ProviderID         string `json:"providerId"`
	DisplayName        string `json:"displayName"`
	Member             bool   `json:"member"`
	Active             bool   `json:"active"`
	OpenSessions       int    `json:"openSessions"`
	OverdueAssignments int    `json:"overdueAssignments"`
	AwaitingFeedback   int    `json:"awaitingFeedback"`
	SessionsPastEnd    int    `json:"sessionsPastEnd"`
}

// ClinicOverview reads clinicID's overview at now. An unknown clinic is
// ErrNotFound.
func ClinicOverview(ctx context.Context, db *projections.DB, clinicID string, now time.Time) (ClinicReport, error) {
	out := ClinicReport{ClinicID: clinicID, AsOf: now.UTC(), Providers: []ProviderWorkload{}}
	at := now.UnixNano()
	err := db.Read(ctx, ClinicOverviewProjection, func(tx *sql.Tx, t projections.TableNames) error {
		err := tx.QueryRowContext(readContext(ctx), rebind(db, t, `SELECT name FROM {co_clinics} WHERE clinic_id = ?`), clinicID).Scan(&out.ClinicName)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(readContext(ctx), rebind(db, t, `SELECT
			COALESCE(SUM(CASE WHEN active = 1 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN active = 1 THEN 0 ELSE 1 END), 0)
			FROM {co_clients} WHERE clinic_id = ?`), clinicID).Scan(&out.ActiveClients, &out.InactiveClients)
		if err != nil {
			return err
		}
		workload := map[string]*ProviderWorkload{}
		get := func(id string) *ProviderWorkload {
			w, ok := workload[id]
			if !ok {
				w = &ProviderWorkload{ProviderID: id}
				workload[id] = w
			}
			return w
		}
		err = queryRows(ctx, tx, rebind(db, t, `SELECT provider_id, state, COUNT(*),
			COALESCE(SUM(CASE WHEN ends_at < ? THEN 1 ELSE 0 END), 0)
			FROM {co_sessions} WHERE clinic_id = ? GROUP BY provider_id, state`), []any{at, clinicID},
			func(rows *sql.Rows) error {
				var provider, state string
				var n, pastEnd int
				if err := rows.Scan(&provider, &state, &n, &pastEnd); err != nil {
					return err
				}
				switch care.State(state) {
				case care.StateScheduled:
					out.Sessions.Scheduled += n
				case care.StateActive:
					out.Sessions.Active += n
				case care.StateClosed:
					out.Sessions.Closed += n
				case care.StateCancelled:
					out.Sessions.Cancelled += n
				}
				if care.State(state).Open() {
					w := get(provider)
					w.OpenSessions += n
					w.SessionsPastEnd += pastEnd
				}
				return nil
			})
		if err != nil {
			return err
		}
		err = queryRows(ctx, tx, rebind(db, t, `SELECT s.provider_id,
			COALESCE(SUM(CASE WHEN a.completed = 0 AND (a.overdue = 1 OR a.due < ?) THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN a.completed = 1 AND a.feedback = 0 THEN 1 ELSE 0 END), 0)
			FROM {co_sessions} s JOIN {co_assignments} a ON a.session_id = s.session_id
			WHERE s.clinic_id = ? AND s.state IN (?, ?) GROUP BY s.provider_id`),
			[]any{at, clinicID, string(care.StateScheduled), string(care.StateActive)},
			func(rows *sql.Rows) error {
				var provider string
				var overdue, awaiting int
				if err := rows.Scan(&provider, &overdue, &awaiting); err != nil {
					return err
				}
				w := get(provider)
				w.OverdueAssignments += overdue
				w.AwaitingFeedback += awaiting
				return nil
			})
		if err != nil {
			return err
		}
		err = queryRows(ctx, tx, rebind(db, t, `SELECT provider_id FROM {co_members} WHERE clinic_id = ?`), []any{clinicID},
			func(rows *sql.Rows) error {
				var provider string
				if err := rows.Scan(&provider); err != nil {
					return err
				}
				get(provider).Member = true
				return nil
			})
		if err != nil {
			return err
		}
		for id, w := range workload {
			var active int
			err := tx.QueryRowContext(readContext(ctx), rebind(db, t, `SELECT display_name, active FROM {co_providers} WHERE provider_id = ?`),
				id).Scan(&w.DisplayName, &active)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			w.Active = active == 1
			if w.Member || w.OpenSessions > 0 {
				out.Providers = append(out.Providers, *w)
			}
		}
		return nil
	})
	if err != nil {
		return ClinicReport{}, fmt.Errorf("views: overview of clinic %s: %w", clinicID, err)
	}
	sort.Slice(out.Providers, func(i, j int) bool {
		a, b := out.Providers[i], out.Providers[j]
		if a.DisplayName != b.DisplayName {
			return a.DisplayName < b.DisplayName
		}
		return a.ProviderID < b.ProviderID
	})
	return out, nil
}
