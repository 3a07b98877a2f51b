package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

// Page sizes of ClientTimeline.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// ErrInvalidQuery: the query's arguments cannot be answered.
var ErrInvalidQuery = errors.New("audit: invalid query")

// Page selects one page of a timeline: the entries after the global
// position After (0: from the start), at most Limit of them (0: the
// default size).
type Page struct {
	After int64
	Limit int
}

// TimelinePage is one page of a client's timeline. Next is the After of
// the next page, 0 when this is the last one.
type TimelinePage struct {
	Entries []Entry `json:"entries"`
	Next    int64   `json:"next,omitempty"`
}

const entryColumns = `e.position, e.event_id, e.stream, e.stream_type, e.stream_id, e.version, e.event_type,
	e.schema_version, e.subject, e.actor_id, e.actor_role, e.command_id, e.correlation_id, e.causation_id,
	e.clinic_id, e.occurred_at, e.recorded_at`

// ClientTimeline lists, in global order, every event that touched the
// client and was recorded between from and to (both included; a zero
// instant leaves that end open), one page at a time. It reads the audit
// trail read model, which may lag the event store by a moment.
func ClientTimeline(ctx context.Context, db *projections.DB, clientID string, from, to time.Time, page Page) (TimelinePage, error) {
	limit, err := checkTimelineQuery(clientID, from, to, page)
	if err != nil {
		return TimelinePage{}, err
	}
	var out TimelinePage
	err = db.Read(ctx, TrailName, func(tx *sql.Tx, t projections.TableNames) error {
		query := `SELECT ` + entryColumns + ` FROM ` + t.Of(clientEventsTable) + ` c JOIN ` + t.Of(eventsTable) +
			` e ON e.position = c.position WHERE c.client_id = ? AND c.position > ?`
		args := []any{clientID, page.After}
		if !from.IsZero() {
			query += ` AND e.recorded_at >= ?`
			args = append(args, formatTime(from))
		}
		if !to.IsZero() {
			query += ` AND e.recorded_at <= ?`
			args = append(args, formatTime(to))
		}
		query += ` ORDER BY c.position LIMIT ?`
		// One more than asked tells whether another page follows.
		args = append(args, limit+1)
		entries, err := queryEntries(ctx, tx, query, args...)
		if err != nil {
			return fmt.Errorf("audit: timeline of client %s: %w", clientID, err)
		}
		if len(entries) > limit {
			entries = entries[:limit]
			out.Next = entries[limit-1].Position
		}
		out.Entries = entries
		return nil
	})
	if err != nil {
		return TimelinePage{}, err
	}
	return out, nil
}

func checkTimelineQuery(clientID string, from, to time.Time, page Page) (int, error) {
	switch {
	case strings.TrimSpace(clientID) == "":
		return 0, fmt.Errorf("%w: a client id is required", ErrInvalidQuery)
	case !from.IsZero() && !to.IsZero() && from.After(to):
		return 0, fmt.Errorf("%w: from %s is after to %s", ErrInvalidQuery, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	case page.After < 0:
		return 0, fmt.Errorf("%w: page after %d is negative", ErrInvalidQuery, page.After)
	case page.Limit < 0 || page.Limit > MaxPageSize:
		return 0, fmt.Errorf("%w: page limit %d is not within 0..%d", ErrInvalidQuery, page.Limit, MaxPageSize)
	case page.Limit == 0:
		return DefaultPageSize, nil
	}
	return page.Limit, nil
}

// StreamHistory lists every version of a stream straight from the event
// store, in version order: the audit entries, without the bodies.
func StreamHistory(ctx context.Context, store eventstore.Store, stream eventstore.StreamID) ([]Entry, error) {
	if err := stream.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidQuery, err)
	}
	events, err := store.ReadStream(ctx, stream, 1)
	if err != nil {
		return nil, fmt.Errorf("audit: read %s: %w", stream, err)
	}
	out := make([]Entry, 0, len(events))
	for _, e := range events {
		out = append(out, EntryOf(e))
	}
	return out, nil
}

func queryEntries(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]Entry, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var occurred, recorded string
		if err := rows.Scan(&e.Position, &e.EventID, &e.Stream, &e.StreamType, &e.StreamID, &e.Version, &e.Type,
			&e.SchemaVersion, &e.Subject, &e.ActorID, &e.ActorRole, &e.CommandID, &e.CorrelationID, &e.CausationID,
			&e.ClinicID, &occurred, &recorded); err != nil {
			return nil, err
		}
		if e.OccurredAt, err = parseTime(occurred); err != nil {
			return nil, err
		}
		if e.RecordedAt, err = parseTime(recorded); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
