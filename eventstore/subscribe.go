package eventstore

import (
	"context"
	"sync"
)

// Signal wakes every waiter when something was committed. It is a condition
// variable built on channels so waiters can also select on ctx.Done().
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewSignal returns a ready Signal.
func NewSignal() *Signal { return &Signal{ch: make(chan struct{})} }

// Wait returns a channel that is closed at the next Broadcast. Take it
// before checking for new work, so a Broadcast in between is not missed.
func (s *Signal) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

// Broadcast wakes everyone waiting now.
func (s *Signal) Broadcast() {
	s.mu.Lock()
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}

// CatchUpBatch is how many events a subscription reads per round trip.
const CatchUpBatch = 1000

// CatchUp implements Store.Subscribe for backends whose ReadAll only ever
// returns committed events in position order with no later gaps: it reads
// what is stored, then waits on wake for more. wake is any channel source
// that fires after commits (a Signal's Wait, a LISTEN/NOTIFY, a poll tick).
func CatchUp(ctx context.Context, readAll func(ctx context.Context, after int64, limit int) ([]RecordedEvent, error),
	wake func() <-chan struct{}, after int64, handle func(RecordedEvent) error) error {
	if err := CheckRead(ctx, after, 1); err != nil {
		return err
	}
	for {
		woken := wake()
		events, err := readAll(ctx, after, CatchUpBatch)
		if err != nil {
			return err
		}
		for _, e := range events {
			if err := handle(e); err != nil {
				return err
			}
			after = e.Position
		}
		if len(events) == CatchUpBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-woken:
		}
	}
}
