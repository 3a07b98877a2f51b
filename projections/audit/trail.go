package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

// TrailName is the audit trail projection's name.
const TrailName = "audit_trail"

// The audit trail's logical tables.
const (
	// streamClientsTable says which client each stream is about, and from
	// which event on: a session's from session.scheduled, a client's
	// account from account.registered. Every event of such a stream from
	// then on touches that client; the events are read from the store. A
	// client's own stream needs no row: it is theirs whole.
	streamClientsTable = "audit_stream_clients"
	// clientEventsTable links the other events to the clients they
	// touched, by global position: an event that names a client in a
	// stream that is not that client's.
	clientEventsTable = "audit_client_events"
)

// Trail is the audit trail projection. Run it with a projections.Runner.
// Its only state of its own is a cache of the streams' clients (see
// owners).
type Trail struct {
	owners owners
}

// NewTrail returns the audit trail projection.
func NewTrail() *Trail { return &Trail{} }

var _ projections.Preparer = (*Trail)(nil)

// Name implements projections.Projection.
func (*Trail) Name() string { return TrailName }

// Version implements projections.Projection.
func (*Trail) Version() int { return 4 } // 4: streams are linked to their client, not each of their events

// ReadsNoMetadata implements projections.BodiesOnly: the trail keeps
// positions; a timeline reads the events, Metadata and all, from the store.
func (*Trail) ReadsNoMetadata() {}

// Tables implements projections.Projection.
func (*Trail) Tables() []string {
	return []string{clientEventsTable, streamClientsTable}
}

// Schema implements projections.Projection.
//
// The trail is an index of the event log, not a copy of it: which streams
// are about which client (and from which event on), and the few events
// that touched a client from a stream of someone else's, with when each
// was recorded (Unix nanoseconds, for the timeline's time range). The
// events themselves are read from the event store (ClientTimeline), which
// already holds every envelope. Linking streams rather than their events
// writes one row per stream instead of one per event (ADR 0015).
//
// Each table is one B-tree keyed the way the trail writes it (WITHOUT
// ROWID; the runner drops the clause on PostgreSQL); the timeline finds a
// client's streams through the one index, built once the trail has caught
// up.
func (*Trail) Schema(t projections.TableNames) []string {
	clientEvents, streamClients := t.Of(clientEventsTable), t.Of(streamClientsTable)
	return []string{
		`CREATE TABLE ` + streamClients + ` (
			stream TEXT PRIMARY KEY,
			client_id TEXT NOT NULL,
			position BIGINT NOT NULL
		) WITHOUT ROWID`,
		`CREATE INDEX ` + streamClients + `_client ON ` + streamClients + ` (client_id)`,
		`CREATE TABLE ` + clientEvents + ` (
			client_id TEXT NOT NULL,
			position BIGINT NOT NULL,
			recorded_at BIGINT NOT NULL,
			PRIMARY KEY (client_id, position)
		) WITHOUT ROWID`,
	}
}

// Apply implements projections.Projection: every stream about a client is
// linked to them at the event that made it theirs, and an event naming a
// client outside that client's streams is linked to them on its own.
// Nothing of the body but ids is read. Its statements go through
// projections.Exec and QueryRow, which prepare them once per batch.
func (tr *Trail) Apply(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent) error {
	refs, err := tr.Prepare(e)
	if err != nil {
		return err
	}
	return tr.ApplyPrepared(ctx, tx, t, e, refs)
}

// Prepare implements projections.Preparer: it reads the ids out of the
// body.
func (*Trail) Prepare(e eventstore.RecordedEvent) (any, error) { return referencesOf(e.Data), nil }

// ApplyPrepared implements projections.Preparer: prepared holds the
// body's references.
func (tr *Trail) ApplyPrepared(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent, prepared any) error {
	refs, ok := prepared.(references)
	if !ok {
		return fmt.Errorf("audit: event %d was prepared as %T", e.Position, prepared)
	}
	stream := e.Stream.String()
	owner, err := tr.ownerOf(ctx, tx, t, e, stream)
	if err != nil {
		return err
	}
	l := link(e, refs, owner)
	if l.owner != "" {
		if _, err := projections.Exec(ctx, tx, `INSERT INTO `+t.Of(streamClientsTable)+` (stream, client_id, position) VALUES (?, ?, ?)`,
			stream, l.owner, e.Position); err != nil {
			return fmt.Errorf("audit: link %s to its client: %w", stream, err)
		}
		tr.owners.remember(stream, l.owner, e.Position)
	}
	for _, client := range l.clients {
		if client == owner || client == l.owner || isClientStream(e.Stream, client) {
			continue // the stream is the client's: the timeline reads it whole
		}
		if _, err := projections.Exec(ctx, tx, `INSERT INTO `+t.Of(clientEventsTable)+` (client_id, position, recorded_at) VALUES (?, ?, ?)`,
			client, e.Position, e.RecordedAt.UnixNano()); err != nil {
			return fmt.Errorf("audit: link event %d to a client: %w", e.Position, err)
		}
	}
	return nil
}

// isClientStream reports whether stream is the client's own stream, which
// is theirs from its first event without a link.
func isClientStream(stream eventstore.StreamID, clientID string) bool {
	return stream.Type == clientStreamType && stream.ID == clientID
}

// ownerOf returns the client e's stream was linked to by an earlier event
// ("" if none), from the cache when it can, else from the table.
func (tr *Trail) ownerOf(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent, stream string) (string, error) {
	if e.Stream.Type == clientStreamType {
		// A client's own stream is never linked (see link).
		return "", nil
	}
	if e.Version == 1 {
		// A stream is linked by one of its own events: before its first
		// there is nothing to find (a rebuild looked up each of the log's
		// 62,000 sessions here, 0.35 CPU-s at the writer).
		return "", nil
	}
	if owner, ok := tr.owners.lookup(stream, e.Position); ok {
		return owner, nil
	}
	var (
		owner    string
		position int64
	)
	err := projections.QueryRow(ctx, tx, `SELECT client_id, position FROM `+t.Of(streamClientsTable)+` WHERE stream = ?`, stream).
		Scan(&owner, &position)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("audit: read the client of %s: %w", stream, err)
	}
	tr.owners.remember(stream, owner, position)
	return owner, nil
}

// maxOwners bounds the cache of streams' clients: about 150 bytes each,
// 15 MiB at most. Past it the cache starts over; the table still answers.
const maxOwners = 100_000

// owners caches which client each stream was linked to, and by the event
// at which position, so that most events need no look-up in the table.
// One cache serves every generation of the trail's tables, and it may hold
// links written by a transaction that was then rolled back: a link is a
// function of the log alone (the stream's first event naming a client), so
// every generation that has applied the event at that position has the
// same row, and one that has not yet applied it must not see it, which
// the position tells.
type owners struct {
	mu     sync.Mutex
	byName map[string]ownerLink
}

type ownerLink struct {
	client   string
	position int64
}

// lookup returns the client of stream as seen by the event at position, if
// the cache knows it.
func (o *owners) lookup(stream string, position int64) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	l, ok := o.byName[stream]
	if !ok || l.position >= position {
		return "", false
	}
	return l.client, true
}

func (o *owners) remember(stream, client string, position int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byName == nil || len(o.byName) >= maxOwners {
		o.byName = map[string]ownerLink{}
	}
	o.byName[stream] = ownerLink{client: client, position: position}
}
