package postgres

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
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

// Each group shape gets its statement, and the quiet ones send no NOTIFY.
// (The variants are built by text replacement; this catches a replacement
// that silently stopped matching.)
func TestAppendStatements(t *testing.T) {
	one := &appendRequest{stream: storetest.Stream("session"), events: []eventstore.NewEvent{storetest.Event("a")},
		ids: make([]pgtype.UUID, 1), data: [][]byte{[]byte("{}")}, occurredAt: make([]pgtype.Timestamptz, 1)}
	two := &appendRequest{stream: storetest.Stream("session"), events: []eventstore.NewEvent{storetest.Event("a"), storetest.Event("b")},
		ids: make([]pgtype.UUID, 2), data: [][]byte{[]byte("{}"), []byte("{}")}, occurredAt: make([]pgtype.Timestamptz, 2)}
	anyOne, anyTwo := *one, *two
	anyOne.expected, anyTwo.expected = eventstore.AnyVersion, eventstore.AnyVersion
	for _, c := range []struct {
		name       string
		reqs       []*appendRequest
		want, lean string
		args       int
	}{
		{"one append of one event", []*appendRequest{one}, appendOneEventSQL, appendLeanExactEventSQL, 15},
		{"one append of two events", []*appendRequest{two}, appendOneSQL, appendLeanExactSQL, 15},
		{"one append of one event, any version", []*appendRequest{&anyOne}, appendOneEventSQL, appendLeanEventSQL, 15},
		{"one append of two events, any version", []*appendRequest{&anyTwo}, appendOneSQL, appendLeanSQL, 15},
		{"a group", []*appendRequest{one, two}, appendSQL, "", 17},
	} {
		t.Run(c.name, func(t *testing.T) {
			sql, lean, args := newGroup(c.reqs).statement(time.Now(), false)
			assert.Equal(t, c.want, sql)
			assert.Equal(t, c.lean, lean)
			assert.Len(t, args, c.args)
			assert.Contains(t, sql, "pg_notify")
			quietSQL, quietLean, _ := newGroup(c.reqs).statement(time.Now(), true)
			assert.NotContains(t, quietSQL, "pg_notify")
			assert.NotContains(t, quietLean, "pg_notify")
			if lean != "" {
				assert.Contains(t, lean, "pg_notify")
				assert.NotEqual(t, lean, quietLean)
			}
		})
	}
	for _, sql := range []string{appendOneEventSQL, appendLeanEventSQL, appendLeanExactEventSQL} {
		assert.NotContains(t, sql, "unnest", "one event goes as plain parameters")
	}
	for _, sql := range []string{appendOneSQL, appendLeanSQL, appendLeanExactSQL} {
		assert.NotContains(t, sql, "JOIN", "one append needs no join")
	}
	for _, sql := range []string{appendLeanExactSQL, appendLeanExactEventSQL} {
		assert.NotContains(t, sql, "MAX(version)", "an exact append looks up one version, not the highest")
	}
}

// An append that finds the writers idle writes itself, in the caller's
// goroutine; while groups are being formed it queues for a worker instead.
func TestLoneAppendWritesInCallersGoroutine(t *testing.T) {
	s := openTestStore(t, pgtest.NewDatabase(t), eventstore.Options{}, withoutWorkers)
	s.callerWrites = true
	stream := storetest.Stream("session")
	done := make(chan pending, 1)
	go func() {
		res, err := s.Append(context.Background(), stream, eventstore.NoStream, []eventstore.NewEvent{storetest.Event("a")})
		done <- pending{res, err}
	}()
	select {
	case p := <-done:
		require.NoError(t, p.err)
		assert.Equal(t, int64(1), p.res.Version)
	case <-time.After(10 * time.Second):
		t.Fatal("no worker runs, yet the lone append was not written by its caller")
	}

	s.grouping.Store(true)
	waiting := queue(t, s, stream, eventstore.Exactly(1), storetest.Event("b"))
	startWorker(s)
	p := <-waiting
	require.NoError(t, p.err)
	assert.Equal(t, int64(2), p.res.Version)
	all, err := s.ReadAll(context.Background(), 0, 10)
	require.NoError(t, err)
	assert.Len(t, all, 2)
}

// An append refused for its expected version by the full statement takes
// no transaction id, so its commit has nothing to flush; one that inserts
// does. A lean statement refused by a unique index has taken one (its
// abort is not flushed) and asks for the full statement; a lean statement
// that finds the stream behind its expected version writes nothing and
// runs the full one itself. Checked for each form of the append statement.
func TestRefusedAppendTakesNoTransactionID(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, pgtest.NewDatabase(t), eventstore.Options{})
	stream := storetest.Stream("session")
	_, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{storetest.Event("a")})
	require.NoError(t, err)
	request := func(stream eventstore.StreamID, expected eventstore.ExpectedVersion, n int) *appendRequest {
		events := make([]eventstore.NewEvent, n)
		for i := range events {
			events[i] = storetest.Event("e")
		}
		_, err := eventstore.PrepareAppend(ctx, s.opts, stream, expected, events)
		require.NoError(t, err)
		r, err := newAppendRequest(ctx, stream, expected, "", events)
		require.NoError(t, err)
		return r
	}
	run := func(g *group) (assigned bool, _ error) {
		tx, err := s.pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		if _, _, err := s.runGroup(ctx, tx, g, time.Now()); err != nil {
			return false, err
		}
		require.NoError(t, tx.QueryRow(ctx, `SELECT pg_current_xact_id_if_assigned() IS NOT NULL`).Scan(&assigned))
		return assigned, nil
	}
	xidAssigned := func(g *group) bool {
		assigned, err := run(g)
		require.NoError(t, err)
		return assigned
	}
	for _, n := range []int{1, 2} {
		past := newGroup([]*appendRequest{request(stream, eventstore.NoStream, n)})
		_, err := run(past)
		assert.ErrorIs(t, err, errLeanRefused, "%d events, stream past the expected version", n)
		past.fullOnly = true
		assert.False(t, xidAssigned(past), "%d events, refused by the full statement", n)
		assert.False(t, xidAssigned(newGroup([]*appendRequest{request(stream, eventstore.Exactly(5), n)})), "%d events, stream behind", n)
		assert.True(t, xidAssigned(newGroup([]*appendRequest{request(stream, eventstore.Exactly(1), n)})), "%d events, written", n)
	}
	other := storetest.Stream("session")
	assert.False(t, xidAssigned(newGroup([]*appendRequest{request(stream, eventstore.NoStream, 1), request(other, eventstore.Exactly(3), 1)})), "a group, all refused")
	assert.True(t, xidAssigned(newGroup([]*appendRequest{request(stream, eventstore.NoStream, 1), request(other, eventstore.NoStream, 1)})), "a group, one written")
}

// The database refuses a second append of one command to one stream, and
// the store answers it with the first append's result: whether the repeat
// expects a stale version (refused by the version index first) or the
// stream's current one (refused by the command index), through the lean
// statement and through a group.
func TestRepeatedCommandIsRefusedByTheDatabase(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, pgtest.NewDatabase(t), eventstore.Options{})
	stream := storetest.Stream("session")
	event := func(body string) eventstore.NewEvent {
		e := storetest.Event(body)
		e.Metadata.CommandID = "cmd-1"
		return e
	}
	first, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{event("a"), event("b")})
	require.NoError(t, err)

	_, err = s.pool.Exec(ctx, `INSERT INTO events (position, event_id, stream_type, stream_id, version, type,
		schema_version, data, actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, recorded_at,
		first_of_command) VALUES (1, gen_random_uuid(), $1, $2, 3, 'x', 1, '{}', '', '', 'cmd-1', '', '', '', now(), true)`,
		stream.Type, stream.ID)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, commandOnceIndex, pgErr.ConstraintName)

	for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Exactly(2), eventstore.AnyVersion} {
		again, err := s.Append(ctx, stream, expected, []eventstore.NewEvent{event("a"), event("b")})
		require.NoError(t, err, "expected %d", expected)
		assert.True(t, again.Duplicate, "expected %d", expected)
		assert.Equal(t, first.Events[1].Position, again.Events[1].Position)
	}
	// A group of several commands marks each command's first event, so a
	// retry of each expecting the stream's current version is answered
	// from the database's index, not written.
	var streams []eventstore.StreamID
	var reqs []*appendRequest
	for i := range 3 {
		streams = append(streams, storetest.Stream("session"))
		e1, e2 := storetest.Event("g"), storetest.Event("h")
		e1.Metadata.CommandID, e2.Metadata.CommandID = fmt.Sprintf("grouped-%d", i), fmt.Sprintf("grouped-%d", i)
		reqs = append(reqs, mustRequest(t, s, streams[i], eventstore.NoStream, e1, e2))
	}
	written, err := s.execGroup(ctx, newGroup(reqs))
	require.NoError(t, err)
	for i, stream := range streams {
		require.NoError(t, written[i].err)
		var marked []int64
		rows, err := s.pool.Query(ctx, `SELECT version FROM events WHERE stream_type = $1 AND stream_id = $2 AND first_of_command`,
			stream.Type, stream.ID)
		require.NoError(t, err)
		marked, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		require.NoError(t, err)
		assert.Equal(t, []int64{1}, marked, "the first event of the grouped append only")
		e := storetest.Event("again")
		e.Metadata.CommandID = fmt.Sprintf("grouped-%d", i)
		again, err := s.Append(ctx, stream, eventstore.Exactly(2), []eventstore.NewEvent{e})
		require.NoError(t, err)
		assert.True(t, again.Duplicate)
		assert.Equal(t, written[i].result.Events[1].Position, again.Events[1].Position)
	}

	// In a group: the repeat is answered, the other append is written.
	other := storetest.Stream("session")
	g := newGroup([]*appendRequest{
		mustRequest(t, s, stream, eventstore.Exactly(2), event("a"), event("b")),
		mustRequest(t, s, other, eventstore.NoStream, event("c")),
	})
	outcomes, err := s.execGroup(ctx, g)
	require.NoError(t, err)
	require.NoError(t, outcomes[0].err)
	assert.True(t, outcomes[0].result.Duplicate)
	require.NoError(t, outcomes[1].err)
	assert.Equal(t, int64(1), outcomes[1].result.Version)

	got, err := s.ReadStream(ctx, stream, 1)
	require.NoError(t, err)
	assert.Len(t, got, 2, "no repeat wrote")
}

func mustRequest(t *testing.T, s *Store, stream eventstore.StreamID, expected eventstore.ExpectedVersion,
	events ...eventstore.NewEvent) *appendRequest {
	t.Helper()
	commandID, err := eventstore.PrepareAppend(context.Background(), s.opts, stream, expected, events)
	require.NoError(t, err)
	r, err := newAppendRequest(context.Background(), stream, expected, commandID, events)
	require.NoError(t, err)
	return r
}

// Every append statement finds a stream's version and a command id through
// the indexes, whatever the table's statistics say. A fresh table has none,
// and PostgreSQL once planned the group statement's duplicate check as a
// hashed scan of the whole table: every group then read every event (a
// group of 8 took 6 ms on a log of 100,000 events, docs/performance.md).
func TestAppendStatementsReadThroughIndexes(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openTestStore(t, url, eventstore.Options{})
	ctx := context.Background()
	for range 20 {
		_, err := s.Append(ctx, storetest.Stream("session"), eventstore.NoStream,
			[]eventstore.NewEvent{storetest.Event("a"), storetest.Event("b")})
		require.NoError(t, err)
	}
	requestExpecting := func(expected eventstore.ExpectedVersion, events int) *appendRequest {
		batch := make([]eventstore.NewEvent, events)
		for i := range batch {
			batch[i] = storetest.Event("a")
			batch[i].Metadata.CommandID = "cmd"
		}
		commandID, err := eventstore.PrepareAppend(ctx, s.opts, storetest.Stream("session"), expected, batch)
		require.NoError(t, err)
		r, err := newAppendRequest(ctx, storetest.Stream("session"), expected, commandID, batch)
		require.NoError(t, err)
		return r
	}
	request := func(events int) *appendRequest { return requestExpecting(eventstore.NoStream, events) }
	groups := map[string]*group{
		"several appends":                  newGroup([]*appendRequest{request(1), request(2), request(1)}),
		"one append":                       newGroup([]*appendRequest{request(3)}),
		"one append of one":                newGroup([]*appendRequest{request(1)}),
		"one append expecting 7":           newGroup([]*appendRequest{requestExpecting(eventstore.Exactly(7), 3)}),
		"one append of one expecting 7":    newGroup([]*appendRequest{requestExpecting(eventstore.Exactly(7), 1)}),
		"one append at any version":        newGroup([]*appendRequest{requestExpecting(eventstore.AnyVersion, 3)}),
		"one append of one at any version": newGroup([]*appendRequest{requestExpecting(eventstore.AnyVersion, 1)}),
	}
	for name, g := range groups {
		for _, quiet := range []bool{false, true} {
			sql, lean, args := g.statement(time.Now(), quiet)
			for _, sql := range []string{sql, lean} {
				if sql == "" {
					continue
				}
				rows, err := s.pool.Query(ctx, "EXPLAIN "+sql, args...)
				require.NoError(t, err)
				plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
				require.NoError(t, err)
				for _, line := range plan {
					assert.NotContains(t, line, "Seq Scan on events", "%s (quiet %v):\n%s", name, quiet, strings.Join(plan, "\n"))
				}
			}
		}
	}
	rows, err := s.pool.Query(ctx, "EXPLAIN "+priorAppendSQL, "session", "s-1", "cmd", eventstore.MaxEventsPerAppend)
	require.NoError(t, err)
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Contains(t, strings.Join(plan, "\n"), "events_command_once", "a stored command is found through its index")
	for _, line := range plan {
		assert.NotContains(t, line, "Seq Scan on events", "the look-up of a stored command:\n%s", strings.Join(plan, "\n"))
	}
}
