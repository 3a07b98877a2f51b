package projections

import (
	"context"
	"slices"
	"sort"
	"sync"

	"github.com/careflow/careflow/eventstore"
)

// feed is the runner's one reader of the event log. Reading and decoding
// the log cost as much as a projection's writes when every projection read
// it for itself; the feed reads each batch once and hands the same events
// to every projection that asks for them. Each projection still asks from
// its own checkpoint, with its own batch size, and commits its own
// checkpoint: the feed only answers ReadAll, from memory when it can.
//
// It answers from two places:
//   - the tail: every event the runner's subscription delivered since Run
//     started, so projections following live never query the store;
//   - recent reads: a projection behind (a rebuild, a restart) reads a
//     batch, and the others behind at the same place, which in a rebuild of
//     all is every projection, get that batch instead of reading it again.
//     A request for a batch being read waits for it.
//
// A projection too far behind for either reads the store itself (through
// the feed, so the next ones there share its read), and joins the others
// once it has caught up. The events handed out are shared: nobody may
// modify them.
//
// An answer may hold fewer events than the log has by then (the tail or a
// batch read a moment ago), never other ones: ReadAll itself answers as of
// when it reads. A projection only stops and waits after an answer with no
// events, and such answers are never kept, so no event is missed: the
// subscription adds an event to the tail before it wakes the projections.
type feed struct {
	read func(ctx context.Context, after int64, limit int) ([]eventstore.RecordedEvent, error)
	// maxBatches and maxTail bound what is kept in memory.
	maxBatches int
	maxTail    int

	mu sync.Mutex
	// tail holds every event with a position > tailAfter that the
	// subscription delivered, in order; tailing is false until Run starts
	// the subscription.
	tailing   bool
	tailAfter int64
	tail      []eventstore.RecordedEvent
	// batches are the latest reads from the store, oldest first.
	batches []*batch
}

// batch is one ReadAll(after, limit) from the store, shared while it is
// being read (done open) and after.
type batch struct {
	after  int64
	done   chan struct{}
	events []eventstore.RecordedEvent // set before done is closed
	err    error
}

func newFeed(read func(ctx context.Context, after int64, limit int) ([]eventstore.RecordedEvent, error), maxBatches, maxTail int) *feed {
	return &feed{read: read, maxBatches: max(maxBatches, 1), maxTail: max(maxTail, 1)}
}

// follow starts the tail after position head, where the subscription
// starts.
func (f *feed) follow(head int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tailing, f.tailAfter, f.tail = true, head, nil
}

// push adds the event the subscription delivered to the tail, forgetting
// the oldest ones beyond maxTail.
func (f *feed) push(e eventstore.RecordedEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.tailing {
		return
	}
	if n := len(f.tail); n > 0 && e.Position <= f.tail[n-1].Position {
		return
	}
	f.tail = append(f.tail, e)
	if drop := len(f.tail) - f.maxTail; drop > 0 {
		// Dropping half the cap at once keeps the copies rare.
		drop = max(drop, f.maxTail/2)
		f.tailAfter = f.tail[drop-1].Position
		f.tail = append([]eventstore.RecordedEvent(nil), f.tail[drop:]...)
	}
}

// ReadAll answers like eventstore.Store.ReadAll: up to limit events with
// position > after, in order.
func (f *feed) ReadAll(ctx context.Context, after int64, limit int) ([]eventstore.RecordedEvent, error) {
	for {
		f.mu.Lock()
		if f.tailing && after >= f.tailAfter {
			out := eventsAfter(f.tail, after, limit)
			f.mu.Unlock()
			return out, nil
		}
		b := f.find(after)
		if b == nil {
			b = &batch{after: after, done: make(chan struct{})}
			f.batches = append(f.batches, b)
			if len(f.batches) > f.maxBatches {
				f.batches = slices.Delete(f.batches, 0, 1)
			}
			f.mu.Unlock()
			return f.fill(ctx, b, limit)
		}
		f.mu.Unlock()
		select {
		case <-b.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if b.err == nil {
			if out := eventsAfter(b.events, after, limit); len(out) > 0 {
				return out, nil
			}
		}
		// That read failed or ended before after: forget it and read anew.
		f.forget(b)
	}
}

// find returns the batch that holds the events after position after, or
// is being read from there. Called with mu held.
func (f *feed) find(after int64) *batch {
	for i := len(f.batches) - 1; i >= 0; i-- {
		b := f.batches[i]
		select {
		case <-b.done:
			if b.err == nil && len(b.events) > 0 && b.after <= after && after < b.events[len(b.events)-1].Position {
				return b
			}
		default:
			if b.after == after {
				return b
			}
		}
	}
	return nil
}

// fill reads b from the store. An empty or failed read is not kept: the
// next request reads the store again.
func (f *feed) fill(ctx context.Context, b *batch, limit int) ([]eventstore.RecordedEvent, error) {
	events, err := f.read(ctx, b.after, limit)
	b.events, b.err = events, err
	close(b.done)
	if err != nil || len(events) == 0 {
		f.forget(b)
	}
	return events, err
}

func (f *feed) forget(b *batch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = slices.DeleteFunc(f.batches, func(kept *batch) bool { return kept == b })
}

// eventsAfter returns up to limit of the ordered events with a position
// greater than after, sharing their array but not its spare capacity.
func eventsAfter(events []eventstore.RecordedEvent, after int64, limit int) []eventstore.RecordedEvent {
	i := sort.Search(len(events), func(i int) bool { return events[i].Position > after })
	n := min(limit, len(events)-i)
	if n <= 0 {
		return nil
	}
	return events[i : i+n : i+n]
}
