package postgres

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/careflow/careflow/eventstore"
)

// eventColumns is the column list every read selects, in scanEvent order.
const eventColumns = `position, event_id, stream_type, stream_id, version, type, schema_version, data,
	actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, occurred_at, recorded_at`

// PostgreSQL keeps microseconds; Append truncates the times it reports the
// same way so its result matches what a read gives back. Years outside
// 1..9999 are refused rather than stored oddly.
var (
	minStorableTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxStorableTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func storableTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// encodeTime gives the stored form of t: NULL for the zero time (not given).
func encodeTime(t time.Time) (pgtype.Timestamptz, error) {
	if t.IsZero() {
		return pgtype.Timestamptz{}, nil
	}
	if t.Before(minStorableTime) || !t.Before(maxStorableTime) {
		return pgtype.Timestamptz{}, fmt.Errorf("%w: time %s is outside the storable years 1..9999", eventstore.ErrInvalidEvent, t)
	}
	return pgtype.Timestamptz{Time: storableTime(t), Valid: true}, nil
}

// eventScanner decodes rows selected with eventColumns (optionally after
// leading columns the caller scans into extra).
type eventScanner struct {
	id         pgtype.UUID
	occurredAt pgtype.Timestamptz
	recordedAt time.Time
}

func (sc *eventScanner) scan(rows pgx.Rows, e *eventstore.RecordedEvent, extra ...any) error {
	m := &e.Metadata
	dest := append(extra, &e.Position, &sc.id, &e.Stream.Type, &e.Stream.ID, &e.Version, &e.Type,
		&e.SchemaVersion, (*[]byte)(&e.Data), &m.ActorID, &m.ActorRole, &m.CommandID,
		&m.CorrelationID, &m.CausationID, &m.ClinicID, &sc.occurredAt, &sc.recordedAt)
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	e.ID = sc.id.Bytes
	if sc.occurredAt.Valid {
		m.OccurredAt = sc.occurredAt.Time.UTC()
	}
	e.RecordedAt = sc.recordedAt.UTC()
	return nil
}

// scanEvents reads rows selected with eventColumns and closes them.
func scanEvents(rows pgx.Rows, capHint int) ([]eventstore.RecordedEvent, error) {
	defer rows.Close()
	var (
		sc  eventScanner
		out []eventstore.RecordedEvent
	)
	if capHint > 0 {
		out = make([]eventstore.RecordedEvent, 0, capHint)
	}
	for rows.Next() {
		var e eventstore.RecordedEvent
		if err := sc.scan(rows, &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
