package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/postgres"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/eventstore/sqlite"
)

func TestNewChainerChecksItsArguments(t *testing.T) {
	f := openSQLiteFixture(t)
	_, err := NewChainer(nil, f.table, ChainerOptions{})
	assert.Error(t, err)
	_, err = NewChainer(f.store, nil, ChainerOptions{})
	assert.Error(t, err)
	_, err = NewChainer(f.store, f.table, ChainerOptions{Key: make([]byte, 5)})
	assert.Error(t, err)
}

func TestRunChainsTheLogAsItGrows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		appendScript(t, f.store)
		c, err := NewChainer(f.store, f.table, ChainerOptions{BatchSize: 3})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()

		appendMore(t, f.store, "live", 7)
		last, err := f.store.HeadPosition(context.Background())
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			head, err := f.table.Head(context.Background())
			return err == nil && head.Position == last
		}, time.Minute, 5*time.Millisecond, "Run chains events appended while it runs")

		cancel()
		require.NoError(t, <-done, "Run returns nil when its context ends")
		r := verify(t, f)
		require.True(t, r.OK(), r.String())
		assert.Zero(t, r.Unchained)
	})
}

// Run rests Interval after a round: what is appended meanwhile waits for
// the next round, which then chains it all at once.
func TestRunRestsBetweenRounds(t *testing.T) {
	f := openSQLiteFixture(t)
	appendScript(t, f.store)
	first, err := f.store.HeadPosition(context.Background())
	require.NoError(t, err)
	const interval = 400 * time.Millisecond
	c, err := NewChainer(f.store, f.table, ChainerOptions{Interval: interval})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	head := func() int64 {
		h, err := f.table.Head(context.Background())
		require.NoError(t, err)
		return h.Position
	}
	require.Eventually(t, func() bool { return head() == first }, time.Minute, time.Millisecond, "the first round chains the log")
	rested := time.Now()

	appendMore(t, f.store, "live", 3)
	last, err := f.store.HeadPosition(context.Background())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return head() == last }, time.Minute, time.Millisecond)
	// The rest began when the first round ended, a moment before rested.
	assert.GreaterOrEqual(t, time.Since(rested), interval/2, "the next round waited for the rest")
}

// failingOnce is a Table whose first Append fails.
type failingOnce struct {
	Table
	failed bool
}

func (f *failingOnce) Append(ctx context.Context, head Link, links []Link) error {
	if !f.failed {
		f.failed = true
		return errors.New("disk full")
	}
	return f.Table.Append(ctx, head, links)
}

// A failed round is tried again after RetryDelay, with no new event to wake
// the chainer.
func TestRunRetriesAFailedRound(t *testing.T) {
	f := openSQLiteFixture(t)
	appendScript(t, f.store)
	last, err := f.store.HeadPosition(context.Background())
	require.NoError(t, err)
	c, err := NewChainer(f.store, &failingOnce{Table: f.table}, ChainerOptions{RetryDelay: 20 * time.Millisecond, Interval: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	require.Eventually(t, func() bool {
		head, err := f.table.Head(context.Background())
		return err == nil && head.Position == last
	}, time.Minute, time.Millisecond, "the retry chains the log")
	cancel()
	require.NoError(t, <-done)
}

func TestRunEndsWithTheStore(t *testing.T) {
	f := openSQLiteFixture(t)
	c, err := NewChainer(f.store, f.table, ChainerOptions{})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	appendMore(t, f.store, "x", 1)
	require.NoError(t, f.store.Close())
	assert.ErrorIs(t, <-done, eventstore.ErrClosed)
}

func TestConcurrentChainersRecordOneChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		appendScript(t, f.store)
		var wg sync.WaitGroup
		errs := make(chan error, 4*10)
		for range 4 {
			c, err := NewChainer(f.store, f.table, ChainerOptions{BatchSize: 2})
			require.NoError(t, err)
			wg.Go(func() {
				for range 10 {
					_, err := c.CatchUp(ctx)
					errs <- err
				}
			})
		}
		appendMore(t, f.store, "during", 10)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		chainAll(t, f)
		r := verify(t, f)
		require.True(t, r.OK(), r.String())
		assert.Zero(t, r.Unchained)
		assert.EqualValues(t, len(readLog(t, f.store, 0)), r.Verified)
	})
}

// The same events stored by SQLite (raw JSON, nanoseconds) and PostgreSQL
// (jsonb, microseconds) have the same canonical bytes once the positions,
// which each backend assigns its own way, are set equal.
func TestCanonicalBytesAreTheSameOnBothBackends(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	clock := func() time.Time { return time.Date(2026, 11, 22, 20, 0, 0, 123456789, time.UTC) }
	ids := 0
	newID := func() uuid.UUID {
		ids++
		return uuid.MustParse(fmt.Sprintf("0190c3d2-0000-7000-8000-%012d", ids))
	}
	pg, err := postgres.Open(ctx, postgres.Config{URL: url, Migrate: true}, eventstore.Options{Clock: clock, NewID: newID})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Close() })
	lite, err := sqlite.Open(ctx, sqlite.Config{Path: t.TempDir() + "/events.db"}, eventstore.Options{Clock: clock, NewID: newID})
	require.NoError(t, err)
	t.Cleanup(func() { _ = lite.Close() })

	// Appended one store after the other: the id generator is shared.
	appendTo := func(store eventstore.Store) []eventstore.RecordedEvent {
		for _, a := range script() {
			for i := range a.events {
				a.events[i].Metadata.OccurredAt = time.Date(2026, 11, 21, 8, 30, 0, 987654321, time.UTC)
			}
			_, err := store.Append(ctx, a.stream, eventstore.AnyVersion, a.events)
			require.NoError(t, err)
		}
		_, err := store.Append(ctx, eventstore.NewStreamID("odd", "spellings"), eventstore.AnyVersion, []eventstore.NewEvent{{
			Type: "odd.spellings",
			Data: json.RawMessage("{ \"z\" : 1.50 ,\n \"a\": [1E2, -0.0, 2e-3], \"s\": \"\\u00e9\\/\\ud83d\\ude42\", \"a\": \"last\" }"),
		}})
		require.NoError(t, err)
		head, err := store.HeadPosition(ctx)
		require.NoError(t, err)
		waitVisible(t, store, head)
		return readLog(t, store, 0)
	}
	pgEvents := appendTo(pg)
	ids = 0
	liteEvents := appendTo(lite)
	require.Len(t, pgEvents, len(liteEvents))

	for i := range liteEvents {
		fromPG := pgEvents[i]
		fromPG.Position = liteEvents[i].Position
		assert.Equal(t, Canonical(liteEvents[i]), Canonical(fromPG), "event %d (%s)", i, liteEvents[i].Type)
	}
	last := len(liteEvents) - 1
	assert.NotEqual(t, string(liteEvents[last].Data), string(pgEvents[last].Data),
		"the backends do store the data differently")
}
