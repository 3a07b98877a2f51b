package projections

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/sqlite"
)

func TestOpenDBRefusesPathsReadersCannotShare(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=memory"} {
		_, err := OpenDB(context.Background(), path)
		require.Error(t, err, path)
	}
}

func TestOpenDBIsDurableAndPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "read.db")
	db := openTestDB(t, path)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "read models hold PHI")

	var mode string
	require.NoError(t, db.read.QueryRow(`PRAGMA journal_mode`).Scan(&mode))
	assert.Equal(t, "wal", mode)
	var syncLevel int
	require.NoError(t, db.write.QueryRow(`PRAGMA synchronous`).Scan(&syncLevel))
	assert.Equal(t, 1, syncLevel, "NORMAL: read models are derived data (ADR 0004)")
	_, err = db.read.Exec(`CREATE TABLE t (x TEXT)`)
	require.Error(t, err, "the read pool is read-only")
	assert.Equal(t, "sqlite", db.Dialect().Name())
}

func TestRegisterChecksOwnership(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "read.db"))
	require.NoError(t, db.Register(tablesProjection{"a", []string{"x", "y"}}))
	require.NoError(t, db.Register(tablesProjection{"a", []string{"x", "y"}}), "registering again is harmless")
	require.Error(t, db.Register(tablesProjection{"a", []string{"x"}}), "same name, other tables")
	require.Error(t, db.Register(tablesProjection{"b", []string{"y"}}), "y belongs to a")
	require.Error(t, db.Register(tablesProjection{"c", []string{"Bad"}}))
}

func TestTableNames(t *testing.T) {
	tn := newTableNames("inbox", 3, []string{"inbox_items", "inbox_counts"})
	assert.Equal(t, "inbox_items_g3", tn.Of("inbox_items"))
	assert.Equal(t, []string{"inbox_items_g3", "inbox_counts_g3"}, tn.Physical())
	assert.Equal(t, []string{"inbox_items", "inbox_counts"}, tn.Logical())
	assert.Equal(t, int64(3), tn.Generation())
	assert.Equal(t, "inbox", tn.Projection())
	assert.Panics(t, func() { tn.Of("other") })
}

func TestTableHash(t *testing.T) {
	forEachDB(t, testTableHash)
}

func testTableHash(t *testing.T, viewsAt viewsFactory) {
	ctx := context.Background()
	db := openTestDB(t, viewsAt(t))
	blob := "BLOB"
	if db.Dialect().Name() == "postgres" {
		blob = "BYTEA"
	}
	exec := func(q string, args ...any) {
		t.Helper()
		_, err := db.write.ExecContext(ctx, q, args...)
		require.NoError(t, err)
	}
	for _, table := range []string{"a", "b", "c", "d"} {
		exec(`CREATE TABLE ` + table + ` (k1 TEXT, k2 BIGINT, v TEXT, f REAL, blob ` + blob + `, PRIMARY KEY (k1, k2))`)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Format(time.RFC3339Nano)
	rows := [][]any{
		{"x", 1, "one", 1.5, []byte{1, 2}},
		{"x", 2, nil, nil, nil},
		{"y", 1, at, -0.25, []byte{}},
	}
	// a and b hold the same rows inserted in other orders.
	for _, i := range []int{0, 1, 2} {
		exec(`INSERT INTO a VALUES (?, ?, ?, ?, ?)`, rows[i]...)
	}
	for _, i := range []int{2, 0, 1} {
		exec(`INSERT INTO b VALUES (?, ?, ?, ?, ?)`, rows[i]...)
	}
	// c differs in one value: NULL against an empty string.
	exec(`INSERT INTO c VALUES (?, ?, ?, ?, ?)`, rows[0]...)
	exec(`INSERT INTO c VALUES (?, ?, ?, ?, ?)`, "x", 2, "", nil, nil)
	exec(`INSERT INTO c VALUES (?, ?, ?, ?, ?)`, rows[2]...)

	hash := func(table string) string {
		t.Helper()
		h, err := TableHash(ctx, db, table)
		require.NoError(t, err)
		return h
	}
	assert.Equal(t, hash("a"), hash("b"))
	assert.NotEqual(t, hash("a"), hash("c"))
	assert.NotEqual(t, hash("a"), hash("d"), "an empty table differs")

	exec(`CREATE TABLE nokey (v TEXT)`)
	exec(`CREATE TABLE nokey2 (v TEXT)`)
	exec(`INSERT INTO nokey VALUES ('b'), ('a')`)
	exec(`INSERT INTO nokey2 VALUES ('a'), ('b')`)
	assert.Equal(t, hash("nokey"), hash("nokey2"), "without a key rows are ordered by every column")

	_, err := TableHash(ctx, db, "missing")
	require.Error(t, err)
	_, err = TableHash(ctx, db, "a; DROP TABLE a")
	require.Error(t, err)
}

func TestReadHoldsTheGenerationUntilItReturns(t *testing.T) {
	forEachDB(t, testReadHoldsTheGeneration)
}

func testReadHoldsTheGeneration(t *testing.T, viewsAt viewsFactory) {
	ctx := context.Background()
	db := openTestDB(t, viewsAt(t))
	store := newStoreMemory(t)
	p := newCounting("p1")
	r, err := NewRunner(store, db, nil, p)
	require.NoError(t, err)
	require.NoError(t, r.Prepare(ctx))

	err = db.Read(ctx, "p1", func(tx *sql.Tx, tn TableNames) error {
		assert.Equal(t, int64(1), tn.Generation())
		var n int
		return tx.QueryRow(`SELECT COUNT(*) FROM ` + tn.Of("p1_streams")).Scan(&n)
	})
	require.NoError(t, err)
	require.ErrorIs(t, db.Read(ctx, "nope", func(*sql.Tx, TableNames) error { return nil }), ErrUnknownProjection)
}

// Checkpoint tells, inside a Read, how far the generation being read has
// applied the log, and refuses a generation the projection does not have.
func TestCheckpointIsTheReadGenerationsPosition(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, filepath.Join(t.TempDir(), "views.db"))
	store := newStoreMemory(t)
	head := appendEvents(t, store, 3)
	p := newCounting("p1")
	r, err := NewRunner(store, db, nil, p)
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	require.Eventually(t, func() bool {
		reached, err := r.WaitFor(ctx, "p1", head, time.Second)
		return err == nil && reached
	}, 30*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	err = db.Read(ctx, "p1", func(tx *sql.Tx, tn TableNames) error {
		position, err := db.Checkpoint(ctx, tx, tn)
		assert.Equal(t, head, position)
		if err != nil {
			return err
		}
		_, err = db.Checkpoint(ctx, tx, newTableNames("p1", tn.Generation()+1, tn.Logical()))
		assert.ErrorContains(t, err, "generation 2 is neither active nor being rebuilt")
		return nil
	})
	require.NoError(t, err)
}

// On SQLite the DB's checkpointer copies the WAL into the file beside the
// writer and makes a long WAL start over; the writer's commits checkpoint
// only once the WAL is far longer than that, and nothing is lost on the way.
func TestCheckpointsRunBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "read.db")
	db := openTestDB(t, path)
	var auto int
	require.NoError(t, db.write.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&auto))
	require.Equal(t, sqlite.BackgroundCheckpointPages, auto, "commits leave checkpoints to the checkpointer while the WAL is short")
	require.Less(t, restartFrames, sqlite.BackgroundCheckpointPages, "the checkpointer restarts the WAL before a commit would checkpoint it")
	_, err := db.write.ExecContext(ctx, `CREATE TABLE kv (k INTEGER PRIMARY KEY, v BLOB NOT NULL)`)
	require.NoError(t, err)
	insert := func(from, n int) {
		t.Helper()
		// In a turn at the writer, as the runner's commits are.
		end, err := db.takeTurn(ctx)
		require.NoError(t, err)
		defer end()
		tx, err := db.write.BeginTx(ctx, nil)
		require.NoError(t, err)
		for i := from; i < from+n; i++ {
			_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, zeroblob(3000))`, i)
			require.NoError(t, err)
		}
		require.NoError(t, tx.Commit())
	}

	// Given the checkpointer stopped and a few hundred commits
	require.NoError(t, db.checkpoints.close())
	before, err := os.Stat(path)
	require.NoError(t, err)
	for i := range 300 {
		insert(i, 1)
	}
	// Then they are all in the WAL, none in the file yet
	stillBefore, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, before.Size(), stillBefore.Size(), "no commit checkpointed")

	// When a checkpointer runs (a pass every 10 ms, not every second, so
	// that passes come while the writer below writes)
	conn, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{Synchronous: "NORMAL"})
	require.NoError(t, err)
	db.checkpoints = startCheckpoints(conn, 10*time.Millisecond, db.takeTurn)

	// Then the file gets every commit
	require.Eventually(t, func() bool {
		info, err := os.Stat(path)
		return err == nil && info.Size() > 300*3000
	}, 10*time.Second, 5*time.Millisecond)

	// And a writer that never pauses (a rebuild) still has its WAL start
	// over: three times the length at which the checkpointer restarts it
	// written (a row a page), the WAL never that long
	written := 3 * restartFrames / 100 * 100
	for i := 300; i < 300+written; i += 100 {
		insert(i, 100)
	}
	frames, err := db.checkpoints.checkpoint(ctx, "PASSIVE")
	require.NoError(t, err)
	assert.Less(t, frames, written, "the WAL started over")
	var n int
	require.NoError(t, db.read.QueryRow(`SELECT COUNT(*) FROM kv`).Scan(&n))
	assert.Equal(t, 300+written, n)
}

// A writer that commits without a break never lets a PASSIVE checkpoint
// from another connection reset the WAL; the checkpointer's RESTART, once
// the WAL is long, does.
func TestCheckpointerRestartsALongWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wal.db")
	writer, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{Synchronous: "NORMAL"})
	require.NoError(t, err)
	defer writer.Close()
	_, err = writer.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`) // the writer leaves it all to the checkpointer
	require.NoError(t, err)
	_, err = writer.ExecContext(ctx, `CREATE TABLE kv (k INTEGER PRIMARY KEY, v BLOB NOT NULL)`)
	require.NoError(t, err)
	conn, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{Synchronous: "NORMAL"})
	require.NoError(t, err)
	// The writer's turns, as DB.takeTurn gives them to the projections.
	turns := make(chan struct{}, 1)
	turn := func(context.Context) (func(), error) {
		turns <- struct{}{}
		return func() { <-turns }, nil
	}
	c := &checkpointer{conn: conn, turn: turn, stop: func() {}, done: make(chan struct{})}
	close(c.done)
	defer c.close()

	// Given a writer committing without a break, a turn per commit
	stop := make(chan struct{})
	written := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				written <- nil
				return
			default:
			}
			end, _ := turn(ctx)
			_, err := writer.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, zeroblob(3000))`, i)
			end()
			if err != nil {
				written <- err
				return
			}
		}
	}()
	// When the checkpointer makes passes until one finds the WAL long
	long := 0
	deadline := time.Now().Add(30 * time.Second)
	for long < restartFrames && time.Now().Before(deadline) {
		long, err = c.pass(ctx)
		require.NoError(t, err)
		time.Sleep(10 * time.Millisecond)
	}
	require.GreaterOrEqual(t, long, restartFrames, "the writer wrote too slowly for the test")
	time.Sleep(10 * time.Millisecond)
	next, err := c.pass(ctx)
	require.NoError(t, err)
	close(stop)
	require.NoError(t, <-written)

	// Then the WAL started over at that pass
	assert.Less(t, next, long, "the WAL went on from %d to %d frames", long, next)
}
