package projections

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
)

// countingReads counts the events a store's ReadAll returns, but for the
// one-event reads of Status, which tests poll.
type countingReads struct {
	eventstore.Store
	events atomic.Int64
	calls  atomic.Int64
}

func (s *countingReads) ReadAll(ctx context.Context, after int64, limit int) ([]eventstore.RecordedEvent, error) {
	events, err := s.Store.ReadAll(ctx, after, limit)
	if limit == 1 {
		return events, err
	}
	s.calls.Add(1)
	s.events.Add(int64(len(events)))
	return events, err
}

func positions(events []eventstore.RecordedEvent) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Position
	}
	return out
}

func TestFeedAnswersLikeTheStoreAndReadsABatchOnce(t *testing.T) {
	// Given a log of 20 events and a feed over it
	ctx := context.Background()
	store := &countingReads{Store: storeFactories["memory"](t, nil)}
	appendEvents(t, store, 20)
	f := newFeed(store.ReadAll, 2, 100)

	// When three readers at the same place ask for the same batch
	var wg sync.WaitGroup
	answers := make([][]int64, 3)
	for i := range answers {
		wg.Go(func() {
			events, err := f.ReadAll(ctx, 0, 8)
			assert.NoError(t, err)
			answers[i] = positions(events)
		})
	}
	wg.Wait()

	// Then they all get the store's answer, read once
	for _, a := range answers {
		assert.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8}, a)
	}
	assert.Equal(t, int64(8), store.events.Load())

	// and a reader inside that batch gets the rest of it, not more
	events, err := f.ReadAll(ctx, 5, 8)
	require.NoError(t, err)
	assert.Equal(t, []int64{6, 7, 8}, positions(events))
	assert.Equal(t, int64(1), store.calls.Load())

	// and one past it reads the store
	events, err = f.ReadAll(ctx, 8, 100)
	require.NoError(t, err)
	assert.Equal(t, int64(9), events[0].Position)
	assert.Len(t, events, 12)
	assert.Equal(t, int64(2), store.calls.Load())
}

func TestFeedServesTheTailWithoutReadingTheStore(t *testing.T) {
	// Given a feed following the log from position 3, fed 3 more events
	ctx := context.Background()
	store := &countingReads{Store: storeFactories["memory"](t, nil)}
	appendEvents(t, store, 6)
	all, err := store.Store.ReadAll(ctx, 0, 10)
	require.NoError(t, err)
	f := newFeed(store.ReadAll, 2, 4)
	f.follow(3)
	for _, e := range all[3:] {
		f.push(e)
	}

	// When readers at or after 3 ask
	events, err := f.ReadAll(ctx, 3, 10)
	require.NoError(t, err)
	assert.Equal(t, []int64{4, 5, 6}, positions(events))
	events, err = f.ReadAll(ctx, 6, 10)
	require.NoError(t, err)
	assert.Empty(t, events)
	assert.Equal(t, int64(0), store.calls.Load(), "the tail answers")

	// Then a reader before the tail reads the store, up to the limit
	events, err = f.ReadAll(ctx, 1, 10)
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 3, 4, 5, 6}, positions(events))
	assert.Equal(t, int64(1), store.calls.Load())
}

func TestFeedTailForgetsTheOldestEventsBeyondItsCap(t *testing.T) {
	// Given a feed whose tail keeps 4 events, fed 6
	ctx := context.Background()
	store := &countingReads{Store: storeFactories["memory"](t, nil)}
	appendEvents(t, store, 6)
	all, err := store.Store.ReadAll(ctx, 0, 10)
	require.NoError(t, err)
	f := newFeed(store.ReadAll, 2, 4)
	f.follow(0)
	for _, e := range all {
		f.push(e)
	}

	// When a reader asks from before what the tail kept
	events, err := f.ReadAll(ctx, 0, 10)

	// Then the store answers, in full
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 2, 3, 4, 5, 6}, positions(events))
	assert.Equal(t, int64(1), store.calls.Load())
	events, err = f.ReadAll(ctx, 4, 10)
	require.NoError(t, err)
	assert.Equal(t, []int64{5, 6}, positions(events))
}

func TestRebuildOfAllReadsTheLogAboutOnce(t *testing.T) {
	// Given five projections caught up with a log of 300 events
	store := &countingReads{Store: storeFactories["memory"](t, nil)}
	db := openTestDB(t, viewsFactories["sqlite"](t))
	names := []string{"p1", "p2", "p3", "p4", "p5"}
	projectionsOf := func(version int) ([]Projection, []*countingProjection) {
		var ps []Projection
		var counting []*countingProjection
		for _, name := range names {
			p := newCounting(name)
			p.version = version
			ps = append(ps, p)
			counting = append(counting, p)
		}
		return ps, counting
	}
	v1, _ := projectionsOf(1)
	r, err := NewRunnerWithOptions(store, db, nil, Options{BatchSize: 50}, v1...)
	require.NoError(t, err)
	head := appendEvents(t, store, 300)
	run := startRunner(t, r)
	for _, name := range names {
		waitFor(t, r, name, head)
	}
	require.NoError(t, run.stop())

	// When a new version of each is started: all five rebuild from zero
	v2, counting := projectionsOf(2)
	r, err = NewRunnerWithOptions(store, db, nil, Options{BatchSize: 50}, v2...)
	require.NoError(t, err)
	store.events.Store(0)
	startRunner(t, r)
	for _, name := range names {
		require.Eventually(t, func() bool { return statusOf(t, r, name).Generation == 2 }, generous, time.Millisecond)
	}

	// Then the log was read about once, not five times (a projection
	// whose goroutine starts late on a loaded machine may read on its own
	// until it catches up with the others)
	assert.Less(t, store.events.Load(), 3*head, "events read from the store")
	for _, p := range counting {
		requireEachAppliedOnce(t, db, p, head)
	}
}
