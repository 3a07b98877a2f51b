package audit

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
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

// ErrTrailRebuilding: the audit trail serving reads was built by a version
// before 3, which kept no recording times with its links, and its
// replacement is still being built: a time range cannot be answered until
// then (a timeline without one can).
var ErrTrailRebuilding = errors.New("audit: the audit trail is being rebuilt for this version; a time range is answered once it has caught up")

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

// ClientTimeline lists, in global order, every event that touched the
// client and was recorded between from and to (both included; a zero
// instant leaves that end open), one page at a time. The audit trail read
// model says which events: those of the streams that are the client's,
// from the event that made each theirs, and those linked to the client one
// by one. They are read from store, and shown as of the trail's
// checkpoint, which may lag the store by a moment.
func ClientTimeline(ctx context.Context, db *projections.DB, store eventstore.Store, clientID string, from, to time.Time, page Page) (TimelinePage, error) {
	limit, err := checkTimelineQuery(clientID, from, to, page)
	if err != nil {
		return TimelinePage{}, err
	}
	var (
		streams []clientStream
		linked  []int64
		through int64
	)
	err = db.Read(ctx, TrailName, func(tx *sql.Tx, t projections.TableNames) error {
		var err error
		if through, err = db.Checkpoint(ctx, tx, t); err != nil {
			return err
		}
		if streams, err = queryStreams(ctx, tx, `SELECT stream, position FROM `+t.Of(streamClientsTable)+` WHERE client_id = ?`,
			clientID); err != nil {
			return err
		}
		query := `SELECT position FROM ` + t.Of(clientEventsTable) + ` WHERE client_id = ? AND position > ?`
		args := []any{clientID, page.After}
		if !from.IsZero() {
			query += ` AND recorded_at >= ?`
			args = append(args, unixNanos(from))
		}
		if !to.IsZero() {
			query += ` AND recorded_at <= ?`
			args = append(args, unixNanos(to))
		}
		// One more than asked tells whether another page follows.
		query += ` ORDER BY position LIMIT ?`
		args = append(args, limit+1)
		linked, err = queryPositions(ctx, tx, query, args...)
		return err
	})
	if err != nil && (!from.IsZero() || !to.IsZero()) && trailLacksRecordingTimes(ctx, db) {
		return TimelinePage{}, ErrTrailRebuilding
	}
	if err != nil {
		return TimelinePage{}, fmt.Errorf("audit: timeline of client %s: %w", clientID, err)
	}

	earliest, latest := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		earliest = unixNanos(from)
	}
	if !to.IsZero() {
		latest = unixNanos(to)
	}
	shown := func(e eventstore.RecordedEvent) bool {
		at := e.RecordedAt.UnixNano()
		return e.Position > page.After && e.Position <= through && at >= earliest && at <= latest
	}
	events, err := store.ReadPositions(ctx, linked)
	if err != nil {
		return TimelinePage{}, fmt.Errorf("audit: timeline of client %s: %w", clientID, err)
	}
	if len(events) != len(linked) {
		// The trail only links events it read from this log.
		return TimelinePage{}, fmt.Errorf("audit: timeline of client %s: the event store holds %d of the %d events the trail links",
			clientID, len(events), len(linked))
	}
	events = slices.DeleteFunc(events, func(e eventstore.RecordedEvent) bool { return !shown(e) })
	// The client's own stream is theirs without a link.
	streams = append(streams, clientStream{id: eventstore.NewStreamID(clientStreamType, clientID)})
	for _, s := range streams {
		stream, err := store.ReadStream(ctx, s.id, 1)
		if err != nil {
			return TimelinePage{}, fmt.Errorf("audit: timeline of client %s: %w", clientID, err)
		}
		if s.from > 0 && !slices.ContainsFunc(stream, func(e eventstore.RecordedEvent) bool { return e.Position == s.from }) {
			return TimelinePage{}, fmt.Errorf("audit: timeline of client %s: the event store does not hold the event at %d that links %s",
				clientID, s.from, s.id)
		}
		for _, e := range stream {
			if e.Position >= s.from && shown(e) {
				events = append(events, e)
			}
		}
	}
	// A trail of an earlier version, serving until its replacement has
	// caught up, also links the events of a client's streams one by one.
	slices.SortFunc(events, func(a, b eventstore.RecordedEvent) int { return cmp.Compare(a.Position, b.Position) })
	events = slices.CompactFunc(events, func(a, b eventstore.RecordedEvent) bool { return a.Position == b.Position })

	var out TimelinePage
	if len(events) > limit {
		events = events[:limit]
		out.Next = events[limit-1].Position
	}
	out.Entries = make([]Entry, len(events))
	for i, e := range events {
		out.Entries[i] = EntryOf(e)
	}
	return out, nil
}

// trailLacksRecordingTimes reports whether the trail serving reads is of
// version 2, which kept no recording times with its links. It is asked
// only once a ranged query has failed, in a read of its own: on PostgreSQL
// the failed query has aborted the first one.
func trailLacksRecordingTimes(ctx context.Context, db *projections.DB) bool {
	lacks := false
	_ = db.Read(ctx, TrailName, func(tx *sql.Tx, t projections.TableNames) error {
		columns, _, err := db.Dialect().Columns(ctx, tx, t.Of(clientEventsTable))
		lacks = err == nil && !slices.Contains(columns, "recorded_at")
		return err
	})
	return lacks
}

// clientStream is a stream that is a client's from the event at position
// from on (0: from its start).
type clientStream struct {
	id   eventstore.StreamID
	from int64
}

func queryStreams(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]clientStream, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []clientStream
	for rows.Next() {
		var (
			name string
			s    clientStream
		)
		if err := rows.Scan(&name, &s.from); err != nil {
			return nil, err
		}
		if s.id, err = eventstore.ParseStreamID(name); err != nil {
			return nil, fmt.Errorf("audit: the trail links a stream named %q: %w", name, err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// unixNanos is t in Unix nanoseconds, as the trail stores recording times,
// saturated outside the years 1678 to 2262 (where UnixNano wraps): a bound
// before every instant the trail can hold, or after, still compares so.
func unixNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
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

func queryPositions(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
