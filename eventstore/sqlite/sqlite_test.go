package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/storetest"
)

func openTestStore(t *testing.T, path string, opts eventstore.Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Path: path}, opts)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts eventstore.Options) eventstore.Store {
		return openTestStore(t, filepath.Join(t.TempDir(), "events.db"), opts)
	})
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{Path: "/tmp/x.db"}
	cfg.setDefaults()
	require.NoError(t, cfg.Validate())
	assert.Equal(t, defaultMaxBatch, cfg.MaxBatch)
	assert.Equal(t, defaultReadConns, cfg.ReadConns)
	assert.Equal(t, defaultBusyTimeout, cfg.BusyTimeout)

	for _, bad := range []Config{
		{},
		{Path: ":memory:"},
		{Path: "file:x.db?mode=memory"},
		{Path: "/tmp/x.db?cache=shared"},
		{Path: "/tmp/x.db", MaxBatch: -1},
		{Path: "/tmp/x.db", ReadConns: -2},
		{Path: "/tmp/x.db", BusyTimeout: -time.Second},
	} {
		bad.setDefaults()
		assert.Error(t, bad.Validate(), "%+v", bad)
	}
	_, err := Open(context.Background(), Config{Path: ":memory:"}, eventstore.Options{})
	assert.ErrorContains(t, err, "plain file path")
}

func TestOpenCreatesDirectoriesAndPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "events.db")
	s := openTestStore(t, path, eventstore.Options{})
	_, err := s.Append(context.Background(), storetest.Stream("client"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("x")})
	require.NoError(t, err)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the database holds PHI: owner only")
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(ctx, Config{Path: path}, eventstore.Options{})
	require.NoError(t, err)

	stream := storetest.Stream("session")
	e, too := storetest.Event("kept"), storetest.Event("too")
	e.Metadata.CommandID, too.Metadata.CommandID = "cmd-1", "cmd-1"
	first, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{e, too})
	require.NoError(t, err)
	before, err := s.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s = openTestStore(t, path, eventstore.Options{})
	after, err := s.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	assert.Equal(t, before, after, "every field survives a reopen")
	assert.Equal(t, first.Events, after, "what Append returned is what is stored")
	head, err := s.HeadPosition(ctx)
	require.NoError(t, err)
	assert.Equal(t, first.LastPosition(), head)

	again, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{e})
	require.NoError(t, err)
	assert.True(t, again.Duplicate, "idempotency survives a reopen")
	assert.Equal(t, first.Events, again.Events)
	assert.Equal(t, first.Version, again.Version)

	next, err := s.Append(ctx, stream, eventstore.Exactly(2), []eventstore.NewEvent{storetest.Event("next")})
	require.NoError(t, err)
	assert.Equal(t, int64(3), next.Version)
	assert.Greater(t, next.LastPosition(), head, "positions go on after a reopen")
}

func TestMigrationIsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	for range 3 {
		s, err := Open(ctx, Config{Path: path}, eventstore.Options{})
		require.NoError(t, err)
		_, err = s.Append(ctx, storetest.Stream("client"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("x")})
		require.NoError(t, err)
		require.NoError(t, s.Close())
	}
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	var version, tables, count int
	require.NoError(t, db.QueryRow(`PRAGMA user_version`).Scan(&version))
	assert.Equal(t, schemaVersion, version)
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'events'`).Scan(&tables))
	assert.Equal(t, 1, tables)
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM events`).Scan(&count))
	assert.Equal(t, 3, count, "reopening keeps the data")

	_, err = db.Exec(`PRAGMA user_version = 99`)
	require.NoError(t, err)
	_, err = Open(ctx, Config{Path: path}, eventstore.Options{})
	assert.ErrorContains(t, err, "newer than this build knows", "a database from a newer build is refused")
}

// Every query the store runs is an index seek or range: a full scan of the
// log (or of a whole stream per append) would make appends slow down as the
// log grows.
func TestQueriesUseIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	openTestStore(t, path, eventstore.Options{})
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()

	plan := func(query string, args ...any) string {
		rows, err := db.Query(`EXPLAIN QUERY PLAN `+query, args...)
		require.NoError(t, err)
		defer rows.Close()
		var steps []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
			steps = append(steps, detail)
		}
		require.NoError(t, rows.Err())
		return strings.Join(steps, "; ")
	}
	for name, c := range map[string]struct {
		query string
		args  []any
		uses  string
	}{
		"check":      {checkSQL, []any{"session", "1", "cmd"}, "events_by_command"},
		"by command": {byCommandSQL, []any{"cmd", "session", "1"}, "events_by_command"},
		"id taken":   {idTakenSQL, []any{"x"}, "sqlite_autoindex_events_1"},
		"stream":     {readStreamSQL, []any{"session", "1", 1}, "sqlite_autoindex_events_2"},
		"all":        {readAllSQL, []any{0, 10}, "INTEGER PRIMARY KEY"},
		"bodies":     {readBodiesSQL, []any{0, 10}, "INTEGER PRIMARY KEY"},
		"head":       {headSQL, nil, "SCAN events"},
		"positions":  {readPositionsSQL, []any{"[3,1,2]"}, "INTEGER PRIMARY KEY"},
	} {
		p := plan(c.query, c.args...)
		assert.Contains(t, p, c.uses, name)
		assert.NotContains(t, p, "TEMP B-TREE", "%s sorts: %s", name, p)
		if name != "head" {
			assert.NotRegexp(t, `SCAN events( |$|;)`, p, "%s scans the log: %s", name, p)
		}
	}
	assert.Contains(t, plan(checkSQL, "session", "1", "cmd"), "stream_type=? AND stream_id=?", "the version look-up seeks the stream")
}

// A database written by an older build is brought up to date on open, and
// keeps its events and their idempotency.
func TestMigrationUpgradesAnOlderDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	for _, stmt := range migrations[0] {
		_, err := db.Exec(stmt)
		require.NoError(t, err)
	}
	_, err = db.Exec(`PRAGMA user_version = 1`)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO events (event_id, stream_type, stream_id, version, type, schema_version, data,
		actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, occurred_at, recorded_at)
		VALUES ('0190c3d2-0000-7000-8000-000000000001', 'client', 'c1', 1, 'test.happened', 1, CAST('{"body":"old"}' AS BLOB),
		'', '', 'cmd-old', '', '', '', NULL, 1)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s := openTestStore(t, path, eventstore.Options{})
	again, err := s.Append(ctx, eventstore.NewStreamID("client", "c1"), eventstore.NoStream,
		[]eventstore.NewEvent{{Type: "test.happened", Data: []byte(`{}`), Metadata: eventstore.Metadata{CommandID: "cmd-old"}}})
	require.NoError(t, err)
	assert.True(t, again.Duplicate, "a command stored before the upgrade is still recognised")
	assert.Equal(t, uuid.MustParse("0190c3d2-0000-7000-8000-000000000001"), again.Events[0].ID)

	db, err = sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	var version int
	var index string
	require.NoError(t, db.QueryRow(`PRAGMA user_version`).Scan(&version))
	assert.Equal(t, schemaVersion, version)
	require.NoError(t, db.QueryRow(`SELECT sql FROM sqlite_schema WHERE name = 'events_by_command'`).Scan(&index))
	assert.Contains(t, index, "(command_id, stream_type, stream_id, version)")
}

func TestEventsAreAppendOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s := openTestStore(t, path, eventstore.Options{})
	_, err := s.Append(ctx, storetest.Stream("client"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("x")})
	require.NoError(t, err)

	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`UPDATE events SET type = 'forged'`)
	assert.ErrorContains(t, err, "append-only")
	_, err = db.Exec(`DELETE FROM events`)
	assert.ErrorContains(t, err, "append-only")
}

func TestReusedEventIDIsInvalid(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, filepath.Join(t.TempDir(), "events.db"), eventstore.Options{})
	e := storetest.Event("x")
	e.ID = uuid.Must(uuid.NewV7())
	_, err := s.Append(ctx, storetest.Stream("client"), eventstore.NoStream, []eventstore.NewEvent{e})
	require.NoError(t, err)
	_, err = s.Append(ctx, storetest.Stream("client"), eventstore.NoStream, []eventstore.NewEvent{e})
	assert.ErrorIs(t, err, eventstore.ErrInvalidEvent)
	assert.ErrorContains(t, err, e.ID.String())
}

func TestTimesRoundTrip(t *testing.T) {
	ctx := context.Background()
	recorded := time.Date(2026, 11, 22, 9, 30, 0, 123456789, time.FixedZone("CET", 3600))
	s := openTestStore(t, filepath.Join(t.TempDir(), "events.db"), eventstore.Options{
		Clock: func() time.Time { return recorded },
	})
	stream := storetest.Stream("client")
	withTime := storetest.Event("a")
	withTime.Metadata.OccurredAt = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	without := storetest.Event("b")
	without.Metadata.OccurredAt = time.Time{}
	res, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{withTime, without})
	require.NoError(t, err)
	got, err := s.ReadStream(ctx, stream, 1)
	require.NoError(t, err)
	assert.Equal(t, res.Events, got)
	assert.True(t, got[0].Metadata.OccurredAt.Equal(withTime.Metadata.OccurredAt), "the epoch is a time, not 'unset'")
	assert.False(t, got[0].Metadata.OccurredAt.IsZero())
	assert.True(t, got[1].Metadata.OccurredAt.IsZero(), "an unset time stays unset")
	assert.True(t, got[0].RecordedAt.Equal(recorded), "nanoseconds are kept")
	assert.Equal(t, time.UTC, got[0].RecordedAt.Location())

	tooOld := storetest.Event("c")
	tooOld.Metadata.OccurredAt = time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err = s.Append(ctx, stream, eventstore.Exactly(2), []eventstore.NewEvent{tooOld})
	assert.ErrorIs(t, err, eventstore.ErrInvalidEvent)
}

// Requests queued before the writer starts land in one group. A conflict
// and failing inserts in the middle of the group fail only their own
// requests; the others commit in the same transaction.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	var clockCalls atomic.Int32
	s, err := openWithoutWriter(ctx, Config{Path: filepath.Join(t.TempDir(), "events.db")}, eventstore.Options{
		Clock: func() time.Time { clockCalls.Add(1); return time.Now() },
	})
	require.NoError(t, err)
	writerStarted := false
	t.Cleanup(func() {
		if !writerStarted {
			go s.runWriter()
		}
		assert.NoError(t, s.Close())
	})

	streamA, streamB, streamC, streamD := storetest.Stream("client"), storetest.Stream("client"), storetest.Stream("client"), storetest.Stream("client")
	takenID := uuid.Must(uuid.NewV7())
	first := storetest.Event("a1")
	first.ID = takenID
	reuse := func(body string) eventstore.NewEvent {
		e := storetest.Event(body)
		e.ID = takenID // already used by the first request: its insert fails
		return e
	}
	events := func(bodies ...string) []eventstore.NewEvent {
		out := make([]eventstore.NewEvent, len(bodies))
		for i, b := range bodies {
			out[i] = storetest.Event(b)
		}
		return out
	}

	type call struct {
		stream   eventstore.StreamID
		expected eventstore.ExpectedVersion
		events   []eventstore.NewEvent
	}
	calls := []call{
		{streamA, eventstore.NoStream, []eventstore.NewEvent{first}},
		// A conflict.
		{streamB, eventstore.Exactly(5), events("b1")},
		// Three events go in as two INSERTs inside a savepoint; the second
		// fails, so the savepoint must undo the first.
		{streamC, eventstore.NoStream, append(events("c1", "c2"), reuse("c3"))},
		// Two events go in as one INSERT, which fails as a whole.
		{streamD, eventstore.NoStream, append(events("d1"), reuse("d2"))},
		// Sees the first request's write, made earlier in the same group.
		{streamA, eventstore.Exactly(1), events("a2", "a3")},
	}
	results := make([]eventstore.AppendResult, len(calls))
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Append(ctx, c.stream, c.expected, c.events)
		}()
		// Queue them one by one so their order in the group is known.
		require.Eventually(t, func() bool { return len(s.requests) == i+1 }, 10*time.Second, time.Millisecond)
	}
	writerStarted = true
	go s.runWriter()
	wg.Wait()

	assert.Equal(t, int32(1), clockCalls.Load(), "all requests were committed by one transaction")
	require.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], eventstore.ErrConcurrency)
	assert.ErrorIs(t, errs[2], eventstore.ErrInvalidEvent)
	assert.ErrorContains(t, errs[2], takenID.String())
	assert.ErrorIs(t, errs[3], eventstore.ErrInvalidEvent)
	require.NoError(t, errs[4])
	assert.Equal(t, int64(3), results[4].Version)

	all, err := s.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	var got []string
	for _, e := range all {
		got = append(got, e.Stream.String()+"/"+strconv.FormatInt(e.Version, 10))
	}
	assert.Equal(t, []string{streamA.String() + "/1", streamA.String() + "/2", streamA.String() + "/3"}, got,
		"the failed requests left nothing behind, not even the events before the one that failed")
	assert.Equal(t, results[0].Events, all[:1])
	assert.Equal(t, results[4].Events, all[1:])
}

func TestLargeAppendsSplitIntoChunks(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, filepath.Join(t.TempDir(), "events.db"), eventstore.Options{})
	stream := storetest.Stream("client")
	var version int64
	for _, n := range []int{1, 2, 3, 63, 64, 65, 100, 129} {
		batch := make([]eventstore.NewEvent, n)
		for i := range batch {
			batch[i] = storetest.Event(fmt.Sprintf("%d-%d", n, i))
		}
		res, err := s.Append(ctx, stream, eventstore.Exactly(version), batch)
		require.NoError(t, err, "append of %d", n)
		got, err := s.ReadStream(ctx, stream, version+1)
		require.NoError(t, err)
		assert.Equal(t, res.Events, got, "append of %d: the result is what is stored, positions included", n)
		for i := 1; i < len(got); i++ {
			assert.Equal(t, got[i-1].Position+1, got[i].Position)
		}
		version = res.Version
	}
	assert.Equal(t, int64(1+2+3+63+64+65+100+129), version)
}

// Some errors make SQLite roll back the whole transaction by itself. Then
// no request of the group may be told it committed, and the store goes on.
func TestImplicitRollbackFailsTheWholeGroup(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(ctx, Config{Path: path}, eventstore.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TRIGGER test_rollback BEFORE INSERT ON events WHEN NEW.type = 'test.other'
		BEGIN SELECT RAISE(ROLLBACK, 'simulated failure'); END`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s, err = openWithoutWriter(ctx, Config{Path: path}, eventstore.Options{})
	require.NoError(t, err)
	writerStarted := false
	t.Cleanup(func() {
		if !writerStarted {
			go s.runWriter()
		}
		assert.NoError(t, s.Close())
	})
	poison := storetest.Event("boom")
	poison.Type = "test.other"
	batches := [][]eventstore.NewEvent{
		{storetest.Event("before")},
		{poison},
		{storetest.Event("after")},
	}
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	for i, events := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Append(ctx, storetest.Stream("client"), eventstore.NoStream, events)
		}()
		require.Eventually(t, func() bool { return len(s.requests) == i+1 }, 10*time.Second, time.Millisecond)
	}
	writerStarted = true
	go s.runWriter()
	wg.Wait()
	for i, err := range errs {
		assert.ErrorContains(t, err, "simulated failure", "request %d", i)
	}
	head, err := s.HeadPosition(ctx)
	require.NoError(t, err)
	assert.Zero(t, head, "nothing of the group was committed")

	res, err := s.Append(ctx, storetest.Stream("client"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("later")})
	require.NoError(t, err, "the next group starts a fresh transaction")
	head, err = s.HeadPosition(ctx)
	require.NoError(t, err)
	assert.Equal(t, res.LastPosition(), head)
}

func TestCancelledBeforeTakenIsDropped(t *testing.T) {
	ctx := context.Background()
	s, err := openWithoutWriter(ctx, Config{Path: filepath.Join(t.TempDir(), "events.db")}, eventstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(cctx, storetest.Stream("client"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("x")})
		done <- err
	}()
	require.Eventually(t, func() bool { return len(s.requests) == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	go s.runWriter()
	assert.ErrorIs(t, <-done, context.Canceled)
	head, err := s.HeadPosition(ctx)
	require.NoError(t, err)
	assert.Zero(t, head, "a request cancelled while queued writes nothing")
}

func TestCloseFinishesQueuedAppends(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := openWithoutWriter(ctx, Config{Path: path}, eventstore.Options{})
	require.NoError(t, err)
	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.Append(ctx, storetest.Stream("client"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event(fmt.Sprint(i))})
			errs <- err
		}()
	}
	require.Eventually(t, func() bool { return len(s.requests) == n }, 10*time.Second, time.Millisecond)
	go s.runWriter()
	require.NoError(t, s.Close())
	for range n {
		assert.NoError(t, <-errs, "an append queued before Close is committed")
	}
	_, err = s.HeadPosition(ctx)
	assert.ErrorIs(t, err, eventstore.ErrClosed)
	assert.NoError(t, s.Close(), "closing twice is harmless")

	s = openTestStore(t, path, eventstore.Options{})
	head, err := s.HeadPosition(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(n), head)
}

const crashDBEnv = "CAREFLOW_SQLITE_CRASH_DB"

// TestCrashChild is the process TestCrashKeepsAcknowledgedAppends kills. It
// appends single events from several goroutines and prints one line per
// acknowledged append, after Append returned.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashDBEnv)
	if path == "" {
		t.Skip("only runs as the child of TestCrashKeepsAcknowledgedAppends")
	}
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: path}, eventstore.Options{})
	require.NoError(t, err)
	var out sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Minute) // in case the parent is gone
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			streams := []eventstore.StreamID{storetest.Stream("client"), storetest.Stream("session")}
			versions := make([]int64, len(streams))
			for i := 0; time.Now().Before(deadline); i++ {
				k := i % len(streams)
				res, err := s.Append(ctx, streams[k], eventstore.Exactly(versions[k]),
					[]eventstore.NewEvent{storetest.Event(fmt.Sprintf("w%d-%d", w, i))})
				if err != nil {
					fmt.Fprintf(os.Stderr, "append: %v\n", err)
					os.Exit(3)
				}
				versions[k] = res.Version
				out.Lock()
				// os.Stdout is unbuffered: the line is in the pipe before
				// the next append starts.
				fmt.Fprintf(os.Stdout, "ACK %s %d %s\n", streams[k], res.Version, res.Events[0].ID)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestCrashKeepsAcknowledgedAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns and kills a child process")
	}
	path := filepath.Join(t.TempDir(), "events.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDBEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())

	type ack struct {
		stream  eventstore.StreamID
		version int64
		id      uuid.UUID
	}
	var acks []ack
	scanner := bufio.NewScanner(stdout)
	for len(acks) < 400 && scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) != 4 || fields[0] != "ACK" {
			continue
		}
		stream, err := eventstore.ParseStreamID(fields[1])
		require.NoError(t, err)
		version, err := strconv.ParseInt(fields[2], 10, 64)
		require.NoError(t, err)
		acks = append(acks, ack{stream, version, uuid.MustParse(fields[3])})
	}
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no deferred cleanup, no Close
	_ = cmd.Wait()
	require.Len(t, acks, 400, "child output ended early; stderr:\n%s", stderr.String())

	ctx := context.Background()
	s := openTestStore(t, path, eventstore.Options{})
	for _, a := range acks {
		evs, err := s.ReadStream(ctx, a.stream, a.version)
		require.NoError(t, err)
		require.NotEmpty(t, evs, "acknowledged %s@%d is missing", a.stream, a.version)
		assert.Equal(t, a.id, evs[0].ID, "acknowledged %s@%d has another id", a.stream, a.version)
	}

	var all []eventstore.RecordedEvent
	for after := int64(0); ; {
		page, err := s.ReadAll(ctx, after, 1000)
		require.NoError(t, err)
		all = append(all, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Position
	}
	require.GreaterOrEqual(t, len(all), len(acks))
	last := map[eventstore.StreamID]int64{}
	for i, e := range all {
		if i > 0 {
			require.Greater(t, e.Position, all[i-1].Position)
		}
		require.Equal(t, last[e.Stream]+1, e.Version, "versions of %s are contiguous", e.Stream)
		last[e.Stream] = e.Version
	}
	require.NoError(t, s.Close())

	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	var integrity string
	require.NoError(t, db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity))
	assert.Equal(t, "ok", integrity)
	t.Logf("%d acknowledged appends checked, %d events stored in %d streams", len(acks), len(all), len(last))
}

// A read with a limit past what scan reserves at once (maxEvents) returns
// every event: the result grows past it as append grows any slice.
func TestReadsLongerThanWhatIsReservedAtOnce(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, filepath.Join(t.TempDir(), "events.db"), eventstore.Options{})
	total := maxEvents*5/4 + 2*firstEvents // past the first growth beyond maxEvents
	batch := make([]eventstore.NewEvent, 500)
	for appended := 0; appended < total; appended += len(batch) {
		for i := range batch {
			batch[i] = storetest.Event(strconv.Itoa(appended + i))
		}
		_, err := s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, batch)
		require.NoError(t, err)
	}
	all, err := s.ReadAll(ctx, 0, 2*total)
	require.NoError(t, err)
	assert.Len(t, all, total)
	bodies, err := s.ReadAllBodies(ctx, 0, 2*total)
	require.NoError(t, err)
	assert.Len(t, bodies, total)
	for i, e := range all {
		if e.Position != bodies[i].Position || e.ID != bodies[i].ID {
			t.Fatalf("event %d: ReadAll has %d %s, ReadAllBodies %d %s", i, e.Position, e.ID, bodies[i].Position, bodies[i].ID)
		}
	}
}
