package sqlite

import (
	"database/sql"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/careflow/careflow/eventstore"
)

// eventColumns is the column list every read selects, in scanEvents order.
const eventColumns = `position, event_id, stream_type, stream_id, version, type, schema_version, data,
	actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, occurred_at, recorded_at`

// Unix nanoseconds in an int64 span the years 1678 to 2262.
var (
	minStorableTime = time.Unix(0, math.MinInt64).UTC()
	maxStorableTime = time.Unix(0, math.MaxInt64).UTC()
)

// encodeTime gives the stored form of t: nil for the zero time (not given),
// else unix nanoseconds.
func encodeTime(t time.Time) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	if t.Before(minStorableTime) || t.After(maxStorableTime) {
		return nil, fmt.Errorf("%w: time %s is outside the storable range %d..%d",
			eventstore.ErrInvalidEvent, t, minStorableTime.Year(), maxStorableTime.Year())
	}
	return t.UnixNano(), nil
}

// scanEvents first makes room for firstEvents rows, so that a read of a
// few new events does not reserve room for a whole batch, and then for up
// to maxEvents at once: a projection's catch-up batch (5,000 by default)
// fits.
const (
	firstEvents = 1000
	maxEvents   = 10_000
)

func decodeTime(nanos sql.NullInt64) time.Time {
	if !nanos.Valid {
		return time.Time{}
	}
	return time.Unix(0, nanos.Int64).UTC()
}

// bodyColumns is eventColumns without the Metadata (ReadAllBodies), in
// the order scan reads them without it.
const bodyColumns = `position, event_id, stream_type, stream_id, version, type, schema_version, data, recorded_at`

// scanEvents reads rows selected with eventColumns and closes them. limit
// is how many rows the caller may get at most (0: unknown). Each row is
// scanned into its place in the result, and the result grows at most once
// on the way to limit, so a read of a full catch-up batch allocates little
// more than its events: the log's reads are most of what a rebuild
// allocates.
func scanEvents(rows *sql.Rows, limit int) ([]eventstore.RecordedEvent, error) {
	return scan(rows, limit, true)
}

// scan is scanEvents, or without metadata the same for rows selected with
// bodyColumns (their Metadata left zero).
func scan(rows *sql.Rows, limit int, metadata bool) ([]eventstore.RecordedEvent, error) {
	defer rows.Close()
	var (
		out        []eventstore.RecordedEvent
		id         sql.RawBytes
		occurredAt sql.NullInt64
		recordedAt int64
	)
	if limit > 0 {
		out = make([]eventstore.RecordedEvent, 0, min(limit, firstEvents))
	}
	for rows.Next() {
		if more := min(limit, maxEvents) - len(out); more > 0 && len(out) == cap(out) {
			out = slices.Grow(out, more)
		}
		out = append(out, eventstore.RecordedEvent{})
		e := &out[len(out)-1]
		m := &e.Metadata
		var err error
		if metadata {
			err = rows.Scan(&e.Position, &id, &e.Stream.Type, &e.Stream.ID, &e.Version, &e.Type,
				&e.SchemaVersion, (*[]byte)(&e.Data), &m.ActorID, &m.ActorRole, &m.CommandID,
				&m.CorrelationID, &m.CausationID, &m.ClinicID, &occurredAt, &recordedAt)
		} else {
			err = rows.Scan(&e.Position, &id, &e.Stream.Type, &e.Stream.ID, &e.Version, &e.Type,
				&e.SchemaVersion, (*[]byte)(&e.Data), &recordedAt)
		}
		if err != nil {
			return nil, err
		}
		if e.ID, err = uuid.ParseBytes(id); err != nil {
			return nil, fmt.Errorf("event at position %d: bad event id %q: %w", e.Position, id, err)
		}
		if metadata {
			m.OccurredAt = decodeTime(occurredAt)
		}
		e.RecordedAt = time.Unix(0, recordedAt).UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
