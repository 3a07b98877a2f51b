package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/eventstore/storetest"
)

// concurrentAppends gives a store several append workers, for tests that
// hold one append open while others go on.
func concurrentAppends(s *Store) { s.cfg.AppendWorkers = 4 }

func openTestStore(t *testing.T, url string, opts eventstore.Options, options ...option) *Store {
	t.Helper()
	s, err := open(context.Background(), Config{URL: url, Migrate: true}, opts, options...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts eventstore.Options) eventstore.Store {
		return openTestStore(t, pgtest.NewDatabase(t), opts)
	})
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{URL: "postgres://u@localhost/db"}
	cfg.setDefaults()
	require.NoError(t, cfg.Validate())
	assert.Equal(t, int32(defaultMaxConns), cfg.MaxConns)
	assert.Equal(t, defaultRecheckInterval, cfg.RecheckInterval)

	bad := Config{URL: "", MaxConns: -1, RecheckInterval: -time.Second}
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"URL is empty", "MaxConns -1", "RecheckInterval -1s"} {
		assert.Contains(t, err.Error(), want)
	}
	err = Config{URL: "postgres://u:secret@localhost:notaport/db", MaxConns: 1}.Validate()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret", "the password is not repeated in errors")

	_, err = Open(context.Background(), Config{}, eventstore.Options{})
	assert.ErrorContains(t, err, "URL is empty", "Open validates")
}

func TestOpenWithoutMigrateRefusesAnEmptyDatabase(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	_, err := Open(ctx, Config{URL: url}, eventstore.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "schema version is 0")
	assert.Contains(t, err.Error(), "Migrate")

	s, err := Open(ctx, Config{URL: url, Migrate: true}, eventstore.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	s, err = Open(ctx, Config{URL: url}, eventstore.Options{})
	require.NoError(t, err, "a migrated database opens without Migrate")
	require.NoError(t, s.Close())
}

// Several processes starting at once all migrate: the advisory lock makes
// them take turns, so each migration runs once and nobody fails.
func TestConcurrentMigrationsDoNotRace(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	const starters = 6
	var wg sync.WaitGroup
	errs := make([]error, starters)
	for i := range starters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			errs[i] = Migrate(ctx, pool)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	conn := connect(t, url)
	var versions, applied int
	require.NoError(t, conn.QueryRow(ctx, `SELECT COUNT(*), COALESCE(MAX(version), 0) FROM eventstore_schema`).Scan(&applied, &versions))
	assert.Equal(t, SchemaVersion(), versions)
	assert.Equal(t, SchemaVersion(), applied, "each migration is recorded once")
}

func TestMigrateRefusesANewerSchema(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	s := openTestStore(t, url, eventstore.Options{})
	require.NoError(t, s.Close())
	conn := connect(t, url)
	_, err := conn.Exec(ctx, `INSERT INTO eventstore_schema (version, name) VALUES ($1, 'from_the_future.sql')`, SchemaVersion()+1)
	require.NoError(t, err)
	_, err = Open(ctx, Config{URL: url, Migrate: true}, eventstore.Options{})
	assert.ErrorContains(t, err, "newer than this build knows")
}

func TestOpenRefusesAsyncCommit(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	conn := connect(t, url)
	_, err := conn.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{conn.Config().Database}.Sanitize()+` SET synchronous_commit = off`)
	require.NoError(t, err)

	_, err = Open(ctx, Config{URL: url, Migrate: true}, eventstore.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "synchronous_commit")
	assert.Contains(t, err.Error(), "AllowAsyncCommit")

	s, err := Open(ctx, Config{URL: url, Migrate: true, AllowAsyncCommit: true}, eventstore.Options{})
	require.NoError(t, err, "AllowAsyncCommit accepts the risk")
	_, err = s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("x")})
	assert.NoError(t, err)
	require.NoError(t, s.Close())
}

func TestEventsAreAppendOnly(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	s := openTestStore(t, url, eventstore.Options{})
	_, err := s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("x")})
	require.NoError(t, err)
	conn := connect(t, url)
	for _, stmt := range []string{`UPDATE events SET type = 'forged'`, `DELETE FROM events`, `TRUNCATE events`} {
		_, err := conn.Exec(ctx, stmt)
		assert.ErrorContains(t, err, "append-only", stmt)
	}
	head, err := s.HeadPosition(ctx)
	require.NoError(t, err)
	assert.NotZero(t, head)
}

func TestReusedEventIDIsInvalid(t *testing.T) {
	s := openTestStore(t, pgtest.NewDatabase(t), eventstore.Options{})
	ctx := context.Background()
	e := storetest.Event("x")
	e.ID = uuid.Must(uuid.NewV7())
	_, err := s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{e})
	require.NoError(t, err)
	_, err = s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{e})
	assert.ErrorIs(t, err, eventstore.ErrInvalidEvent)
	assert.ErrorContains(t, err, e.ID.String())
}

func TestUnstorableValuesAreInvalidEvents(t *testing.T) {
	s := openTestStore(t, pgtest.NewDatabase(t), eventstore.Options{})
	ctx := context.Background()
	nul := storetest.Event("x")
	nul.Data = []byte(`{"body":"a\u0000b"}`)
	_, err := s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{nul})
	assert.ErrorIs(t, err, eventstore.ErrInvalidEvent, "jsonb cannot hold \\u0000")

	nulMeta := storetest.Event("x")
	nulMeta.Metadata.ActorID = "a\x00b"
	_, err = s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{nulMeta})
	assert.ErrorIs(t, err, eventstore.ErrInvalidEvent, "text cannot hold NUL")

	ancient := storetest.Event("x")
	ancient.Metadata.OccurredAt = time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err = s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{ancient})
	assert.ErrorIs(t, err, eventstore.ErrInvalidEvent)

	head, err := s.HeadPosition(ctx)
	require.NoError(t, err)
	assert.Zero(t, head)
}

func TestTimesRoundTrip(t *testing.T) {
	recorded := time.Date(2026, 11, 22, 9, 30, 0, 123456789, time.FixedZone("CET", 3600))
	s := openTestStore(t, pgtest.NewDatabase(t), eventstore.Options{Clock: func() time.Time { return recorded }})
	ctx := context.Background()
	given := storetest.Event("given")
	given.Metadata.OccurredAt = time.Date(2026, 11, 21, 8, 0, 0, 987654321, time.FixedZone("EST", -5*3600))
	none := storetest.Event("none")
	none.Metadata.OccurredAt = time.Time{}
	stream := storetest.Stream("session")
	res, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{given, none})
	require.NoError(t, err)
	got, err := s.ReadStream(ctx, stream, 1)
	require.NoError(t, err)
	require.Len(t, got, 2)
	for i := range got {
		assert.Equal(t, res.Events[i].RecordedAt, got[i].RecordedAt, "Append reports the stored time")
		assert.Equal(t, res.Events[i].Metadata.OccurredAt, got[i].Metadata.OccurredAt)
		assert.Equal(t, time.UTC, got[i].RecordedAt.Location())
	}
	assert.True(t, got[0].RecordedAt.Equal(recorded.Truncate(time.Microsecond)), "microseconds are kept")
	assert.True(t, got[0].Metadata.OccurredAt.Equal(given.Metadata.OccurredAt.Truncate(time.Microsecond)))
	assert.True(t, got[1].Metadata.OccurredAt.IsZero(), "no occurred-at stays zero")
}

// A position is the writing transaction's id shifted left, plus the
// event's index in the transaction.
func TestPositionsCarryTheTransactionID(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openTestStore(t, url, eventstore.Options{})
	ctx := context.Background()
	var batch []eventstore.NewEvent
	for range 3 {
		batch = append(batch, storetest.Event("x"))
	}
	res, err := s.Append(ctx, storetest.Stream("session"), eventstore.NoStream, batch)
	require.NoError(t, err)
	conn := connect(t, url)
	var xmax int64
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&xmax))
	xid := res.Events[0].Position >> positionShift
	assert.Positive(t, xid)
	assert.Less(t, xid, xmax, "the transaction id is a real, past one")
	for i, e := range res.Events {
		assert.Equal(t, xid<<positionShift+int64(i), e.Position)
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// A log restored into a cluster whose transaction counter is behind it
// would hide the restored events and sort new ones before them: Open
// refuses it.
func TestOpenRefusesEventsFromTheFuture(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	s := openTestStore(t, url, eventstore.Options{})
	require.NoError(t, s.Close())
	conn := connect(t, url)
	_, err := conn.Exec(ctx, `INSERT INTO events (position, event_id, stream_type, stream_id, version, type,
		schema_version, data, actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, recorded_at,
		first_of_command)
		VALUES (((pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 1000000) << 16), gen_random_uuid(),
		'session', 'restored', 1, 'test.happened', 1, '{}', '', '', '', '', '', '', now(), true)`)
	require.NoError(t, err)
	_, err = Open(ctx, Config{URL: url, Migrate: true}, eventstore.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pg_resetwal")
}

// Migration 2 marks the first event of every command stored before it, so
// a retry of a command written under schema 1 is still answered as a
// duplicate, and the database refuses to store it twice.
func TestMigrationMarksCommandsStoredBefore(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, migrateTo(ctx, pool, 1))
	insert := func(position int64, streamID string, version int64, commandID string) {
		t.Helper()
		_, err := pool.Exec(ctx, `INSERT INTO events (position, event_id, stream_type, stream_id, version, type,
			schema_version, data, actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, recorded_at)
			VALUES ($1, gen_random_uuid(), 'session', $2, $3, 'e', 1, '{}', '', '', $4, '', '', '', now())`,
			position, streamID, version, commandID)
		require.NoError(t, err)
	}
	insert(1<<16, "a", 1, "cmd-1")
	insert(1<<16+1, "a", 2, "cmd-1")
	insert(2<<16, "a", 3, "")
	insert(3<<16, "a", 4, "cmd-2")
	insert(4<<16, "b", 1, "cmd-1") // the same command in another stream
	require.NoError(t, Migrate(ctx, pool))

	rows, err := pool.Query(ctx, `SELECT stream_id || ':' || version FROM events WHERE first_of_command ORDER BY position`)
	require.NoError(t, err)
	marked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"a:1", "a:4", "b:1"}, marked)

	s, err := Open(ctx, Config{URL: url}, eventstore.Options{})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	retry := storetest.Event("x")
	retry.Metadata.CommandID = "cmd-1"
	again, err := s.Append(ctx, eventstore.StreamID{Type: "session", ID: "a"}, eventstore.Exactly(4), []eventstore.NewEvent{retry})
	require.NoError(t, err)
	assert.True(t, again.Duplicate)
	assert.Equal(t, int64(2), again.Version)
	require.Len(t, again.Events, 2)
	assert.Equal(t, int64(1<<16+1), again.Events[1].Position)

	// A build from before the migration, still running, inserts without
	// the column: refused, rather than storing a command no retry finds.
	_, err = pool.Exec(ctx, `INSERT INTO events (position, event_id, stream_type, stream_id, version, type,
		schema_version, data, actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, recorded_at)
		VALUES (9 << 16, gen_random_uuid(), 'session', 'c', 1, 'e', 1, '{}', '', '', 'cmd-9', '', '', '', now())`)
	assert.ErrorContains(t, err, "first_of_command")
}
