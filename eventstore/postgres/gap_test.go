package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/eventstore/storetest"
)

// collector runs a subscription and keeps what it delivers.
type collector struct {
	mu     sync.Mutex
	events []eventstore.RecordedEvent
	got    chan struct{} // receives after every delivery
	done   chan error
}

func subscribe(ctx context.Context, s eventstore.Store) *collector {
	c := &collector{got: make(chan struct{}, 1<<16), done: make(chan error, 1)}
	go func() {
		c.done <- s.Subscribe(ctx, 0, func(e eventstore.RecordedEvent) error {
			c.mu.Lock()
			c.events = append(c.events, e)
			c.mu.Unlock()
			c.got <- struct{}{}
			return nil
		})
	}()
	return c
}

// waitFor blocks until the subscriber delivered an event with id's ID.
func (c *collector) waitFor(t *testing.T, last eventstore.RecordedEvent) []eventstore.RecordedEvent {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		for _, e := range c.events {
			if e.ID == last.ID {
				out := append([]eventstore.RecordedEvent(nil), c.events...)
				c.mu.Unlock()
				return out
			}
		}
		n := len(c.events)
		c.mu.Unlock()
		select {
		case <-c.got:
		case err := <-c.done:
			t.Fatalf("subscription ended after %d events: %v", n, err)
		case <-timeout:
			t.Fatalf("subscriber never delivered %s (has %d events)", last.ID, n)
		}
	}
}

func ids(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID.String()
	}
	return out
}

// The race every "position > checkpoint" reader loses: a transaction takes
// a low position, later transactions take higher ones and commit first, a
// reader moves past them, and then the first one commits below the reader.
// Here one append is held open between its insert and its commit while five
// others commit. A naive reader on a bigserial table doing the same skips
// the held row; the store's subscriber delivers every event exactly once,
// in order.
func TestSubscriberNeverSkipsAnEventHeldOpen(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	inserted, release := make(chan struct{}), make(chan struct{})
	s := openTestStore(t, url, storetest.Options(), concurrentAppends, func(s *Store) {
		s.afterInsert = func(_ context.Context, stream eventstore.StreamID) {
			if stream.Type == "held" {
				close(inserted)
				<-release
			}
		}
	})
	sub := subscribe(ctx, s)

	type outcome struct {
		res eventstore.AppendResult
		err error
	}
	held := make(chan outcome, 1)
	go func() {
		res, err := s.Append(ctx, storetest.Stream("held"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("held")})
		held <- outcome{res, err}
	}()
	<-inserted // the held row is written; its transaction is open

	var later []eventstore.RecordedEvent
	for i := range 5 {
		res, err := s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event(fmt.Sprint(i))})
		require.NoError(t, err)
		later = append(later, res.Events...)
	}

	// The five later events are committed, but no reader may see them yet:
	// an older transaction could still commit an event before them.
	visible, err := s.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	assert.Empty(t, visible, "nothing after an open transaction is readable")
	head, err := s.HeadPosition(ctx)
	require.NoError(t, err)
	assert.Zero(t, head, "the head does not move past an open transaction")

	// A naive reader of the same table sees them and moves past the held
	// event's position.
	conn := connect(t, url)
	naiveRead := func(after int64) []int64 {
		rows, err := conn.Query(ctx, `SELECT position FROM events WHERE position > $1 ORDER BY position`, after)
		require.NoError(t, err)
		defer rows.Close()
		var out []int64
		for rows.Next() {
			var p int64
			require.NoError(t, rows.Scan(&p))
			out = append(out, p)
		}
		require.NoError(t, rows.Err())
		return out
	}
	naive := naiveRead(0)
	require.Len(t, naive, 5)
	naiveCheckpoint := naive[len(naive)-1]

	close(release)
	out := <-held
	require.NoError(t, out.err)
	heldEvent := out.res.Events[0]
	assert.Less(t, heldEvent.Position, later[0].Position, "the held transaction is older, so its event sorts first")
	assert.Empty(t, naiveRead(naiveCheckpoint), "the naive reader skipped the held event for good")

	// A last event proves nothing more arrives before it: the subscriber
	// saw the held event once, first, then the five, in order.
	last, err := s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("last")})
	require.NoError(t, err)
	want := append(append([]eventstore.RecordedEvent{heldEvent}, later...), last.Events...)
	got := sub.waitFor(t, last.Events[0])
	assert.Equal(t, ids(want), ids(got), "every event exactly once, in order")
	assert.Equal(t, positions(want), positions(got))
	all, err := s.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	assert.Equal(t, ids(want), ids(all))
}

// The textbook failure with a plain bigserial position, for comparison:
// the reader checkpoints past a number an open transaction holds, and
// never sees that row.
func TestNaiveBigserialReaderSkips(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	conn := connect(t, url)
	_, err := conn.Exec(ctx, `CREATE TABLE naive_log (position bigserial PRIMARY KEY, body text NOT NULL)`)
	require.NoError(t, err)

	slow := connect(t, url)
	tx, err := slow.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO naive_log (body) VALUES ('slow')`) // takes position 1
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `INSERT INTO naive_log (body) VALUES ('fast')`) // takes 2, commits
	require.NoError(t, err)

	read := func(after int64) []string {
		rows, err := conn.Query(ctx, `SELECT position, body FROM naive_log WHERE position > $1 ORDER BY position`, after)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var p int64
			var b string
			require.NoError(t, rows.Scan(&p, &b))
			out = append(out, fmt.Sprintf("%d:%s", p, b))
		}
		return out
	}
	assert.Equal(t, []string{"2:fast"}, read(0))
	require.NoError(t, tx.Commit(ctx))
	assert.Empty(t, read(2), "the reader that checkpointed 2 never sees 1:slow")
	assert.Equal(t, []string{"1:slow", "2:fast"}, read(0), "although it is committed")
}

// A transaction that is not an append (it sends no NOTIFY when it ends)
// also holds readers back while it runs; when it ends, subscribers pick up
// the waiting events through their short re-check. The subscriber is on a
// second store, so only NOTIFYs wake it: once it has read with the event
// waiting behind the foreign transaction, nothing but the re-check can
// wake it again.
func TestSubscriberWaitsOutAForeignTransaction(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	writer := openTestStore(t, url, storetest.Options())
	reads := make(chan bool, 100)
	reader := openTestStore(t, url, storetest.Options(), func(s *Store) {
		s.afterRead = func(blocked bool) {
			select {
			case reads <- blocked:
			default: // the test has what it needs; never stall the subscriber
			}
		}
	})
	sub := subscribe(ctx, reader)
	require.False(t, <-reads, "the first read finds an empty log")

	foreign := connect(t, url)
	tx, err := foreign.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT pg_current_xact_id()`) // holds a transaction id, like any writer
	require.NoError(t, err)

	res, err := writer.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("x")})
	require.NoError(t, err)
	visible, err := reader.ReadAll(ctx, 0, 10)
	require.NoError(t, err)
	assert.Empty(t, visible, "an event behind a running transaction waits")
	for !<-reads {
	} // the NOTIFY woke the subscriber, which found the event waiting

	require.NoError(t, tx.Commit(ctx))
	got := sub.waitFor(t, res.Events[0])
	assert.Equal(t, ids(res.Events), ids(got))
}

// Under load, with random appends held open between insert and commit,
// subscribers started before, during and after see exactly the log, in
// order.
func TestSubscribersUnderLoadWithHeldTransactions(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := openTestStore(t, url, storetest.Options(), concurrentAppends, func(s *Store) {
		s.afterInsert = func(context.Context, eventstore.StreamID) {
			if rand.IntN(4) == 0 {
				time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
			}
		}
	})
	before := subscribe(ctx, s)
	const writers, perWriter = 12, 25
	var wg sync.WaitGroup
	var during *collector
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := storetest.Stream("session")
			for i := range perWriter {
				batch := []eventstore.NewEvent{storetest.Event(fmt.Sprint(i))}
				if i%5 == 0 {
					batch = append(batch, storetest.Event(fmt.Sprint(i, "b")))
				}
				_, err := s.Append(ctx, stream, eventstore.AnyVersion, batch)
				assert.NoError(t, err)
			}
		}()
		if w == writers/2 {
			during = subscribe(ctx, s)
		}
	}
	wg.Wait()
	after := subscribe(ctx, s)
	last, err := s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("last")})
	require.NoError(t, err)

	var want []eventstore.RecordedEvent
	for p := int64(0); ; {
		page, err := s.ReadAll(ctx, p, 97)
		require.NoError(t, err)
		want = append(want, page...)
		if len(page) < 97 {
			break
		}
		p = page[len(page)-1].Position
	}
	require.Len(t, want, writers*(perWriter+perWriter/5)+1)
	for name, c := range map[string]*collector{"before": before, "during": during, "after": after} {
		assert.Equal(t, ids(want), ids(c.waitFor(t, last.Events[0])), "subscriber %s", name)
	}
	cancel()
	for _, c := range []*collector{before, during, after} {
		assert.True(t, errors.Is(<-c.done, context.Canceled))
	}
}

func positions(evs []eventstore.RecordedEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Position
	}
	return out
}

// Transaction ids are shared by the whole cluster, but a transaction in
// another database cannot write this log: it does not hold readers back.
func TestTransactionsInOtherDatabasesDoNotHoldReadersBack(t *testing.T) {
	url, other := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	ctx := context.Background()
	s := openTestStore(t, url, storetest.Options())

	elsewhere := connect(t, other)
	tx, err := elsewhere.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)

	res, err := s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("x")})
	require.NoError(t, err)
	// The other transaction stays open throughout. (A short wait covers
	// another test's transaction that ends between a read's snapshot and
	// its look at pg_stat_activity, which counts for that one read.)
	assert.Eventually(t, func() bool {
		visible, err := s.ReadAll(ctx, 0, 10)
		if err != nil || len(visible) != len(res.Events) {
			return false
		}
		head, err := s.HeadPosition(ctx)
		return err == nil && head == res.LastPosition() && slices.Equal(ids(res.Events), ids(visible))
	}, 10*time.Second, 5*time.Millisecond, "the event is readable while another database's transaction runs")
}
