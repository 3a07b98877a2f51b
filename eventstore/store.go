package eventstore

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Store is the event log. Every backend passes eventstore/storetest.
//
// Guarantees:
//   - Append is atomic: all events of one call are stored, or none.
//   - Versions within a stream are 1-based and contiguous.
//   - Positions are strictly increasing in commit order over all streams:
//     a reader that has seen position p will never later find an event
//     with a position <= p that it has not seen.
//   - An acknowledged Append survives a crash of the process.
//   - Append is idempotent by command id within a stream: a second Append to
//     the same stream whose events carry a command id already stored there
//     writes nothing and returns the first result with Duplicate set.
type Store interface {
	// Append adds events to the end of stream if its version matches
	// expected. A mismatch returns a *ConcurrencyError (errors.Is
	// ErrConcurrency). All events of one call must carry the same command id
	// (or none).
	Append(ctx context.Context, stream StreamID, expected ExpectedVersion, events []NewEvent) (AppendResult, error)

	// ReadStream returns the stream's events with version >= fromVersion
	// (1 reads all), in version order. A stream with no events gives none.
	ReadStream(ctx context.Context, stream StreamID, fromVersion int64) ([]RecordedEvent, error)

	// ReadAll returns up to limit events with position > afterPosition, in
	// global order. afterPosition 0 reads from the start.
	ReadAll(ctx context.Context, afterPosition int64, limit int) ([]RecordedEvent, error)

	// ReadPositions returns the committed events at the given global
	// positions (in any order, at most MaxReadPositions of them), in
	// position order; a position that holds no event gives none. It serves
	// indexes of the log, such as the audit trail's per client, which keep
	// positions and read the events themselves from the store.
	ReadPositions(ctx context.Context, positions []int64) ([]RecordedEvent, error)

	// Subscribe calls handle for every event with position > afterPosition,
	// exactly once and in global order: first the ones already stored, then
	// each one as it is committed. It returns when ctx ends (with ctx.Err())
	// or when handle returns an error (with that error).
	Subscribe(ctx context.Context, afterPosition int64, handle func(RecordedEvent) error) error

	// HeadPosition is the position of the last committed event (0 if none)
	// that readers may see. It is never past a commit, but may trail one
	// for a moment: PostgreSQL holds it below transactions still running
	// that could commit below it.
	HeadPosition(ctx context.Context) (int64, error)

	Close() error
}

// BodyReader is a Store that can read the log without most of each event's
// envelope. Projections rebuild from bodies: on SQLite, leaving out the
// seven Metadata columns no projection reads took a rebuild of 1M events
// from 28 to 38.6 us of CPU per event to 25.7 to 27.4 (docs/performance.md,
// session 11). The runner uses it when every one of its projections says
// it reads no Metadata.
type BodyReader interface {
	// ReadAllBodies answers as ReadAll does, except that the events'
	// Metadata may be left zero.
	ReadAllBodies(ctx context.Context, afterPosition int64, limit int) ([]RecordedEvent, error)
}

// Options are the dependencies a backend needs besides its connection.
type Options struct {
	// Types, when set, is the catalogue of known event types; an Append of a
	// type it does not know, or of a schema version newer than it knows, is
	// refused with ErrUnknownEventType.
	Types TypeCatalog
	// Clock stamps RecordedAt. Defaults to time.Now.
	Clock func() time.Time
	// NewID makes event ids for events that come without one. Defaults to
	// UUIDv7.
	NewID func() uuid.UUID
}

// TypeCatalog tells whether an event type name and schema version are known.
// codec.Registry implements it.
type TypeCatalog interface {
	KnowsType(name string, schemaVersion int) bool
}

// WithDefaults fills in the zero fields.
func (o Options) WithDefaults() Options {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.NewID == nil {
		o.NewID = func() uuid.UUID { return uuid.Must(uuid.NewV7()) }
	}
	return o
}
