// Package commands holds one handler per command: it authorizes the actor,
// loads the aggregate from its stream, lets the aggregate decide, and
// appends the recorded events with the version it loaded as the expected
// version, retrying a bounded number of times on a concurrency conflict.
package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
)

// MaxAttempts bounds the load-decide-append loop under contention.
const MaxAttempts = 5

// Deps are what every handler needs. Clock and NewID are injected so tests
// control time and ids.
type Deps struct {
	Store eventstore.Store
	Codec *codec.Registry
	Clock func() time.Time
	NewID func() uuid.UUID
	// Streams, when set, caches decoded streams between commands (see
	// StreamCache); nil reads every stream whole each time.
	Streams *StreamCache
}

// Meta is the envelope of one command: who issues it and how it relates to
// other requests. CommandID makes a retry idempotent; when empty a fresh
// one is made.
type Meta struct {
	Actor         domain.Actor
	CommandID     string
	CorrelationID string
	CausationID   string
	// IfVersion, when above 0, is the version of the command's stream the
	// caller decided on (HTTP If-Match). A command whose stream has moved
	// on is refused with a *StaleVersionError instead of being retried.
	IfVersion int64
}

// Result tells the caller what a command wrote.
type Result struct {
	// Stream and Version of the (last) stream written.
	Stream  eventstore.StreamID
	Version int64
	// Position is the global position of the last event written; a reader
	// can wait for a read model to reach it.
	Position int64
	// Duplicate: the command id had been handled before; nothing new was
	// written and this is the first answer.
	Duplicate bool
}

func resultOf(r eventstore.AppendResult) Result {
	return Result{Stream: r.Stream, Version: r.Version, Position: r.LastPosition(), Duplicate: r.Duplicate}
}

// aggregate is what the load-decide-append loop needs of an aggregate.
type aggregate interface {
	Version() int64
	Pending() []domain.Event
	Committed()
	// Replay applies one stored event during load (and counts it).
	Replay(domain.Event)
}

// prepared normalizes a command's Meta: a missing command id or
// correlation id is generated (the correlation defaults to the command).
func (d Deps) prepared(m Meta) Meta {
	if m.CommandID == "" {
		m.CommandID = d.NewID().String()
	}
	if m.CorrelationID == "" {
		m.CorrelationID = m.CommandID
	}
	return m
}

// loaded is an aggregate rebuilt from its stream, plus whether the stream
// already holds the events of this command id (a retried command).
type loaded[A aggregate] struct {
	agg      A
	events   []cachedEvent // the stream, versions 1..version
	previous []cachedEvent // events this command id wrote before
	version  int64
	// cached: the stream came from the stream cache alone; the store was
	// not asked whether it holds more.
	cached bool
}

// load rebuilds the aggregate from the store (and the stream cache), or
// from the cache alone when trustCache is set and the cache holds the
// stream.
func load[A aggregate](ctx context.Context, d Deps, stream eventstore.StreamID, fresh func() A, commandID string, trustCache bool) (loaded[A], error) {
	var events []cachedEvent
	cached := false
	if trustCache {
		events = d.Streams.get(stream.String())
		cached = len(events) > 0
	}
	if !cached {
		var err error
		if events, err = readStream(ctx, d, stream); err != nil {
			return loaded[A]{}, err
		}
	}
	out := loaded[A]{agg: fresh(), events: events, cached: cached}
	for _, e := range events {
		out.agg.Replay(e.event)
		if commandID != "" && e.commandID == commandID {
			out.previous = append(out.previous, e)
		}
	}
	out.version = int64(len(events))
	return out, nil
}

// readStream returns every event of stream, decoded: the cached ones plus
// those the store holds after them.
func readStream(ctx context.Context, d Deps, stream eventstore.StreamID) ([]cachedEvent, error) {
	key := stream.String()
	cached := d.Streams.get(key)
	recs, err := d.Store.ReadStream(ctx, stream, int64(len(cached))+1)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", stream, err)
	}
	if len(recs) == 0 {
		return cached, nil
	}
	fresh := make([]cachedEvent, 0, len(recs))
	for _, rec := range recs {
		e, err := decodeEvent(d, rec)
		if err != nil {
			return nil, fmt.Errorf("load %s version %d: %w", stream, rec.Version, err)
		}
		fresh = append(fresh, e)
	}
	all := extend(cached, fresh)
	d.Streams.put(key, all)
	return all, nil
}

func decodeEvent(d Deps, rec eventstore.RecordedEvent) (cachedEvent, error) {
	v, err := d.Codec.Decode(rec.Type, rec.SchemaVersion, rec.Data)
	if err != nil {
		return cachedEvent{}, err
	}
	ev, ok := v.(domain.Event)
	if !ok {
		return cachedEvent{}, fmt.Errorf("%s is not a domain event", rec.Type)
	}
	return cachedEvent{event: ev, version: rec.Version, position: rec.Position, commandID: rec.Metadata.CommandID}, nil
}

// Load rebuilds an aggregate from its stream. A stream with no events gives
// fresh() unchanged (Version 0); callers decide whether that is NotFound.
func Load[A aggregate](ctx context.Context, d Deps, stream eventstore.StreamID, fresh func() A) (A, error) {
	l, err := load(ctx, d, stream, fresh, "", false)
	return l.agg, err
}

// execute runs load-decide-append for one stream. decide is called on the
// freshly loaded aggregate and records events on it (or returns an error).
// If the stream already holds events of this command id, nothing is decided
// and the first result is returned as a duplicate. On a concurrency
// conflict the whole cycle runs again, at most MaxAttempts times, so a
// command that is still valid on the newer state succeeds.
//
// With a stream cache, the first cycle decides on the cached stream without
// asking the store for newer events (one read less per command). That is
// safe because nothing decided on it is kept unless the store confirms it:
// the append names the cached version, so a stream that moved on (another
// process, a concurrent command) refuses it as a conflict; and a refusal,
// a no-op or a version mismatch found on the cached stream is not
// answered until a cycle on the store's stream finds the same.
func execute[A aggregate](ctx context.Context, d Deps, stream eventstore.StreamID, clinicID string, m Meta,
	fresh func() A, decide func(A) error) (Result, A, error) {
	var zero A
	trustCache := d.Streams != nil
	for attempt := 1; ; attempt++ {
		l, err := load(ctx, d, stream, fresh, m.CommandID, trustCache)
		if err != nil {
			return Result{}, zero, err
		}
		if l.cached {
			trustCache = false
			attempt-- // this cycle is not one of the MaxAttempts
		}
		if len(l.previous) > 0 {
			last := l.previous[len(l.previous)-1]
			return Result{Stream: stream, Version: last.version, Position: last.position, Duplicate: true}, l.agg, nil
		}
		if err := checkVersion(stream, m.IfVersion, l.version); err != nil {
			if l.cached {
				continue
			}
			return Result{}, zero, err
		}
		if err := decide(l.agg); err != nil {
			if l.cached {
				continue
			}
			return Result{}, zero, err
		}
		pending := l.agg.Pending()
		if len(pending) == 0 {
			if l.cached {
				continue
			}
			return Result{Stream: stream, Version: l.version}, l.agg, nil
		}
		res, err := appendEvents(ctx, d, stream, eventstore.Exactly(l.version), clinicID, m, pending)
		if errors.Is(err, eventstore.ErrConcurrency) && (l.cached || attempt < MaxAttempts) {
			continue
		}
		if err != nil {
			return Result{}, zero, err
		}
		if res.Duplicate {
			if l.cached {
				continue // the store's stream answers it, with its aggregate
			}
		} else {
			remember(d, stream, l.events, res.Events)
		}
		l.agg.Committed()
		return resultOf(res), l.agg, nil
	}
}

// remember adds what an append recorded to the stream cache, so the next
// command on the stream finds it there. Decoding the recorded events costs
// less than reading them back from the store.
func remember(d Deps, stream eventstore.StreamID, before []cachedEvent, recorded []eventstore.RecordedEvent) {
	if d.Streams == nil || len(recorded) == 0 || recorded[0].Version != int64(len(before))+1 {
		return
	}
	more := make([]cachedEvent, 0, len(recorded))
	for _, rec := range recorded {
		e, err := decodeEvent(d, rec)
		if err != nil {
			return // the next load reads them from the store and says why
		}
		more = append(more, e)
	}
	d.Streams.put(stream.String(), extend(before, more))
}

// appendEvents encodes domain events into the envelope and appends them.
func appendEvents(ctx context.Context, d Deps, stream eventstore.StreamID, expected eventstore.ExpectedVersion,
	clinicID string, m Meta, events []domain.Event) (eventstore.AppendResult, error) {
	now := d.Clock().UTC()
	batch := make([]eventstore.NewEvent, 0, len(events))
	for _, e := range events {
		name, version, data, err := d.Codec.Encode(e)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if name != e.EventType() {
			return eventstore.AppendResult{}, fmt.Errorf("event %T registered as %q but names itself %q", e, name, e.EventType())
		}
		batch = append(batch, eventstore.NewEvent{
			ID:            d.NewID(),
			Type:          name,
			SchemaVersion: version,
			Data:          data,
			Metadata: eventstore.Metadata{
				ActorID:       m.Actor.ID,
				ActorRole:     string(m.Actor.Role),
				CommandID:     m.CommandID,
				CorrelationID: m.CorrelationID,
				CausationID:   m.CausationID,
				ClinicID:      clinicID,
				OccurredAt:    now,
			},
		})
	}
	return d.Store.Append(ctx, stream, expected, batch)
}
