// Package memory is an in-process event store for unit tests. It keeps the
// same guarantees as the durable backends except surviving a restart.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/careflow/careflow/eventstore"
)

type commandKey struct {
	stream    eventstore.StreamID
	commandID string
}

// Store is the in-memory eventstore.Store.
type Store struct {
	opts   eventstore.Options
	signal *eventstore.Signal

	mu       sync.RWMutex
	closed   bool
	log      []eventstore.RecordedEvent // log[i].Position == i+1
	streams  map[eventstore.StreamID][]int
	commands map[commandKey]eventstore.AppendResult
	ids      map[uuid.UUID]bool
}

var _ eventstore.Store = (*Store)(nil)

// New returns an empty store.
func New(opts eventstore.Options) *Store {
	return &Store{
		opts:     opts.WithDefaults(),
		signal:   eventstore.NewSignal(),
		streams:  map[eventstore.StreamID][]int{},
		commands: map[commandKey]eventstore.AppendResult{},
		ids:      map[uuid.UUID]bool{},
	}
}

func (s *Store) Append(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events []eventstore.NewEvent) (eventstore.AppendResult, error) {
	events = slices.Clone(events)
	commandID, err := eventstore.PrepareAppend(ctx, s.opts, stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	if commandID != "" {
		if prev, ok := s.commands[commandKey{stream, commandID}]; ok {
			prev.Duplicate = true
			prev.Events = slices.Clone(prev.Events)
			return prev, nil
		}
	}
	current := int64(len(s.streams[stream]))
	if err := eventstore.CheckExpected(stream, expected, current); err != nil {
		return eventstore.AppendResult{}, err
	}
	for i, e := range events {
		if s.ids[e.ID] {
			return eventstore.AppendResult{}, fmt.Errorf("%w: event %d (%s): event id %s is already stored", eventstore.ErrInvalidEvent, i, e.Type, e.ID)
		}
	}
	now := s.opts.Clock().UTC()
	result := eventstore.AppendResult{Stream: stream, Version: current + int64(len(events))}
	for i, e := range events {
		rec := eventstore.RecordedEvent{
			ID:            e.ID,
			Stream:        stream,
			Version:       current + int64(i) + 1,
			Position:      int64(len(s.log)) + 1,
			Type:          e.Type,
			SchemaVersion: e.SchemaVersion,
			Data:          slices.Clone(e.Data),
			Metadata:      e.Metadata,
			RecordedAt:    now,
		}
		s.log = append(s.log, rec)
		s.ids[e.ID] = true
		s.streams[stream] = append(s.streams[stream], len(s.log)-1)
		result.Events = append(result.Events, cloned(rec))
	}
	if commandID != "" {
		s.commands[commandKey{stream, commandID}] = result
	}
	s.signal.Broadcast()
	return result, nil
}

func (s *Store) ReadStream(ctx context.Context, stream eventstore.StreamID, fromVersion int64) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.CheckRead(ctx, fromVersion, 1); err != nil {
		return nil, err
	}
	if err := stream.Validate(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	idx := s.streams[stream]
	start := max(fromVersion-1, 0)
	if start >= int64(len(idx)) {
		return nil, nil
	}
	out := make([]eventstore.RecordedEvent, 0, int64(len(idx))-start)
	for _, i := range idx[start:] {
		out = append(out, cloned(s.log[i]))
	}
	return out, nil
}

func (s *Store) ReadAll(ctx context.Context, afterPosition int64, limit int) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.CheckRead(ctx, afterPosition, limit); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	if afterPosition >= int64(len(s.log)) {
		return nil, nil
	}
	end := min(afterPosition+int64(limit), int64(len(s.log)))
	out := make([]eventstore.RecordedEvent, 0, end-afterPosition)
	for _, e := range s.log[afterPosition:end] {
		out = append(out, cloned(e))
	}
	return out, nil
}

func (s *Store) ReadPositions(ctx context.Context, positions []int64) ([]eventstore.RecordedEvent, error) {
	positions, err := eventstore.CheckPositions(ctx, positions)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	out := make([]eventstore.RecordedEvent, 0, len(positions))
	for _, p := range positions {
		if p <= int64(len(s.log)) {
			out = append(out, cloned(s.log[p-1]))
		}
	}
	return out, nil
}

// cloned copies an event's data, so no caller can change stored history.
func cloned(e eventstore.RecordedEvent) eventstore.RecordedEvent {
	e.Data = slices.Clone(e.Data)
	return e
}

func (s *Store) Subscribe(ctx context.Context, afterPosition int64, handle func(eventstore.RecordedEvent) error) error {
	return eventstore.CatchUp(ctx, s.ReadAll, s.signal.Wait, afterPosition, handle)
}

func (s *Store) HeadPosition(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(len(s.log)), nil
}

// Close makes every later call fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal.Broadcast()
	return nil
}
