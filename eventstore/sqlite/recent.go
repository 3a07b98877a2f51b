package sqlite

import (
	"slices"
	"sync"

	"github.com/careflow/careflow/eventstore"
)

// recentEvents keeps the events this store's writer committed last, so
// the subscriptions that follow the log live (the projections' runner, the
// hash chain, the bus relay, the reactions) read them from memory instead
// of each querying and decoding them again: one query per subscriber per
// commit was 7% of the server's CPU under a command load. ReadAll does not
// use it: it reads the file, which is what a check of the log must see.
//
// It holds a run of consecutive positions only. The writer is the one
// writer of the file, and the rows of one commit get consecutive positions
// (AUTOINCREMENT, statements that fail are undone with their position); a
// commit that does not continue the run (another process wrote in between)
// starts a new run, so a read from here never skips an event. Reads it
// cannot answer from the run go to the database.
type recentEvents struct {
	mu     sync.RWMutex
	max    int
	events []eventstore.RecordedEvent // consecutive positions, oldest first
}

// defaultRecentEvents bounds the events kept (a few MB).
const defaultRecentEvents = 4096

func newRecentEvents(max int) *recentEvents {
	return &recentEvents{max: max}
}

// add appends the events of one commit, in position order. Each is copied:
// what Append returned belongs to its caller.
func (r *recentEvents) add(events []eventstore.RecordedEvent) {
	if len(events) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range events {
		if n := len(r.events); n > 0 && r.events[n-1].Position+1 != e.Position {
			r.events = nil // not a continuation: start a new run
		}
		e.Data = slices.Clone(e.Data)
		r.events = append(r.events, e)
	}
	if len(r.events) > 2*r.max {
		r.events = slices.Clone(r.events[len(r.events)-r.max:])
	}
}

// read answers ReadAll(after, limit) when the run holds the event right
// after position after; ok is false when it must be asked of the database.
// The events handed out are copies.
func (r *recentEvents) read(after int64, limit int) (events []eventstore.RecordedEvent, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.events) == 0 {
		return nil, false
	}
	first, last := r.events[0].Position, r.events[len(r.events)-1].Position
	if after < first-1 || after >= last {
		// Before the run, or at its end: newer events, if any, are in the
		// database only (a commit not yet added here, or another writer's).
		return nil, false
	}
	from := int(after - first + 1)
	to := min(from+limit, len(r.events))
	out := make([]eventstore.RecordedEvent, to-from)
	for i, e := range r.events[from:to] {
		e.Data = slices.Clone(e.Data)
		out[i] = e
	}
	return out, true
}
