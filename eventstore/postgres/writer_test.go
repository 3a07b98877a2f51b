package postgres

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/eventstore/storetest"
)

// withoutWorkers opens the store with no append worker, so a test can line
// appends up before one starts.
func withoutWorkers(s *Store) { s.cfg.AppendWorkers = 0 }

type pending struct {
	res eventstore.AppendResult
	err error
}

// queue starts an Append in the background and waits until it is queued.
func queue(t *testing.T, s *Store, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) chan pending {
	t.Helper()
	before := len(s.requests)
	out := make(chan pending, 1)
	go func() {
		res, err := s.Append(context.Background(), stream, expected, events)
		out <- pending{res, err}
	}()
	for len(s.requests) == before {
		runtime.Gosched()
	}
	return out
}

func startWorker(s *Store) {
	s.workers.Add(1)
	go s.runWorker()
}

// Appends waiting together are written in one statement: one transaction,
// so their positions share the transaction id.
func TestWaitingAppendsAreWrittenTogether(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openTestStore(t, url, eventstore.Options{}, withoutWorkers)
	var waiting []chan pending
	for range 5 {
		waiting = append(waiting, queue(t, s, storetest.Stream("session"), eventstore.NoStream, storetest.Event("a"), storetest.Event("b")))
	}
	startWorker(s)
	var xids []int64
	var last int64
	for _, w := range waiting {
		p := <-w
		require.NoError(t, p.err)
		require.Len(t, p.res.Events, 2)
		assert.Greater(t, p.res.Events[0].Position, last, "the group keeps the order the appends arrived in")
		last = p.res.Events[1].Position
		xids = append(xids, p.res.Events[0].Position>>positionShift)
	}
	for _, x := range xids {
		assert.Equal(t, xids[0], x, "one transaction")
	}
	all, err := s.ReadAll(context.Background(), 0, 100)
	require.NoError(t, err)
	require.Len(t, all, 10)
	for i := range waiting {
		assert.Equal(t, int64(1), all[2*i].Version)
		assert.Equal(t, int64(2), all[2*i+1].Version)
	}
}

// One bad append in a group fails alone: the others are written, and a
// second append to a stream already in the group waits for the next one.
func TestGroupIsolatesFailures(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	setup := openTestStore(t, url, eventstore.Options{})
	stored := storetest.Event("stored")
	stored.Metadata.CommandID = "cmd-stored"
	done := storetest.Stream("session")
	first, err := setup.Append(ctx, done, eventstore.NoStream, []eventstore.NewEvent{stored})
	require.NoError(t, err)

	s := openTestStore(t, url, eventstore.Options{}, withoutWorkers)
	a := storetest.Stream("session")
	reused := storetest.Event("reused")
	reused.ID = first.Events[0].ID
	retry := storetest.Event("again")
	retry.Metadata.CommandID = "cmd-stored"

	okA := queue(t, s, a, eventstore.NoStream, storetest.Event("a1"))
	badID := queue(t, s, storetest.Stream("session"), eventstore.NoStream, reused)
	conflict := queue(t, s, storetest.Stream("session"), eventstore.Exactly(5), storetest.Event("c"))
	okA2 := queue(t, s, a, eventstore.Exactly(1), storetest.Event("a2"))
	duplicate := queue(t, s, done, eventstore.NoStream, retry)
	startWorker(s)

	p := <-okA
	require.NoError(t, p.err)
	assert.Equal(t, int64(1), p.res.Version)
	p = <-badID
	assert.ErrorIs(t, p.err, eventstore.ErrInvalidEvent)
	assert.ErrorContains(t, p.err, reused.ID.String())
	p = <-conflict
	assert.ErrorIs(t, p.err, eventstore.ErrConcurrency)
	p = <-okA2
	require.NoError(t, p.err, "the second append to a waits for the next group")
	assert.Equal(t, int64(2), p.res.Version)
	p = <-duplicate
	require.NoError(t, p.err)
	assert.True(t, p.res.Duplicate)
	assert.Equal(t, first.Events[0].ID, p.res.Events[0].ID)

	got, err := s.ReadStream(ctx, a, 1)
	require.NoError(t, err)
	require.Len(t, got, 2)
	all, err := s.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	assert.Len(t, all, 3, "the stored event and a's two")
}

func TestCloseFinishesQueuedAppends(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openTestStore(t, url, eventstore.Options{}, withoutWorkers)
	var waiting []chan pending
	for range 6 {
		waiting = append(waiting, queue(t, s, storetest.Stream("session"), eventstore.NoStream, storetest.Event("x")))
	}
	startWorker(s)
	require.NoError(t, s.Close())
	for _, w := range waiting {
		assert.NoError(t, (<-w).err, "an append queued before Close is written")
	}
	_, err := s.Append(context.Background(), storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("late")})
	assert.ErrorIs(t, err, eventstore.ErrClosed)
	assert.NoError(t, s.Close(), "closing twice is harmless")

	s = openTestStore(t, url, eventstore.Options{})
	all, err := s.ReadAll(context.Background(), 0, 100)
	require.NoError(t, err)
	assert.Len(t, all, 6)
}

// Appends to one stream queued together are written one group after
// another, in the order they came, each seeing the one before.
func TestAppendsToOneStreamTakeTurnsInOrder(t *testing.T) {
	s := openTestStore(t, pgtest.NewDatabase(t), eventstore.Options{}, withoutWorkers)
	a, b := storetest.Stream("session"), storetest.Stream("session")
	var waiting []chan pending
	for v := range 4 {
		waiting = append(waiting, queue(t, s, a, eventstore.Exactly(int64(v)), storetest.Event("a")))
		waiting = append(waiting, queue(t, s, b, eventstore.Exactly(int64(v)), storetest.Event("b")))
	}
	startWorker(s)
	var last int64
	for i, w := range waiting {
		p := <-w
		require.NoError(t, p.err)
		assert.Equal(t, int64(i/2+1), p.res.Version)
		if i%2 == 0 {
			assert.Greater(t, p.res.Events[0].Position, last, "a's versions get increasing positions")
			last = p.res.Events[0].Position
		}
	}
	all, err := s.ReadAll(context.Background(), 0, 100)
	require.NoError(t, err)
	require.Len(t, all, 8)
}
