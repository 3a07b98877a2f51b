package projections

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
)

// A generation is filled without its indexes and gets them once it has
// caught up: at a first start and in a rebuild, whether the log ends
// inside a batch (the catching-up batch builds them) or exactly at a full
// one (built on their own).
func TestGenerationsAreIndexedOnceCaughtUp(t *testing.T) {
	forEachDB(t, func(t *testing.T, viewsAt viewsFactory) {
		ctx := context.Background()
		store := newStoreMemory(t)
		db := openTestDB(t, viewsAt(t))
		p := newCounting("p1")
		var unindexedWhileFilling atomic.Int32
		p.setHook(func(_ context.Context, tn TableNames, e eventstore.RecordedEvent) error {
			if e.Position == 3 && !indexExists(t, db, tn.Of(p.applied())+"_by_event") {
				unindexedWhileFilling.Add(1)
			}
			return nil
		})
		// Two full batches: the read after them is empty.
		head := appendEvents(t, store, 10)
		r, err := NewRunnerWithOptions(store, db, nil, Options{BatchSize: 5}, p)
		require.NoError(t, err)
		require.NoError(t, r.Prepare(ctx))
		assert.True(t, tableExists(t, db, "p1_applied_g1"))
		assert.False(t, indexExists(t, db, "p1_applied_g1_by_event"), "created without its index")

		startRunner(t, r)
		waitFor(t, r, "p1", head)
		require.Eventually(t, func() bool { return indexExists(t, db, "p1_applied_g1_by_event") }, generous, time.Millisecond)
		assert.Equal(t, int32(1), unindexedWhileFilling.Load())

		// The rebuild's last batch is not full: it builds the index, and
		// the swap happens only after.
		head = appendEvents(t, store, 13)
		waitFor(t, r, "p1", head)
		require.NoError(t, r.Rebuild(ctx, "p1"))
		assert.Equal(t, int64(2), statusOf(t, r, "p1").Generation)
		assert.True(t, indexExists(t, db, "p1_applied_g2_by_event"))
		assert.False(t, indexExists(t, db, "p1_applied_g1_by_event"))
		assert.Equal(t, int32(2), unindexedWhileFilling.Load())
		requireEachAppliedOnce(t, db, p, head)
	})
}

// A restart finds an indexed generation and indexes it again harmlessly.
func TestRestartKeepsIndexes(t *testing.T) {
	forEachDB(t, func(t *testing.T, viewsAt viewsFactory) {
		store := newStoreMemory(t)
		db := openTestDB(t, viewsAt(t))
		p := newCounting("p1")
		head := appendEvents(t, store, 7)
		r, err := NewRunner(store, db, nil, p)
		require.NoError(t, err)
		run := startRunner(t, r)
		waitFor(t, r, "p1", head)
		require.NoError(t, run.stop())
		require.True(t, indexExists(t, db, "p1_applied_g1_by_event"))

		startRunner(t, r)
		head = appendEvents(t, store, 3)
		waitFor(t, r, "p1", head)
		assert.True(t, indexExists(t, db, "p1_applied_g1_by_event"))
		assert.Equal(t, StateRunning, statusOf(t, r, "p1").State)
		requireEachAppliedOnce(t, db, p, head)
	})
}

func TestIndexStatements(t *testing.T) {
	for stmt, want := range map[string]bool{
		"CREATE INDEX a_g1_x ON a_g1 (x)":              true,
		"\n\t\tcreate unique index a_g1_x ON a_g1 (x)": true,
		"CREATE TABLE a_g1 (x TEXT PRIMARY KEY)":       false,
		"CREATE UNIQUE TABLE":                          false,
		"INSERT INTO a VALUES ('CREATE INDEX')":        false,
	} {
		assert.Equal(t, want, isIndex(stmt), stmt)
	}
	assert.Equal(t, "CREATE INDEX IF NOT EXISTS a_x ON a (x)", ifNotExists("CREATE INDEX a_x ON a (x)"))
	assert.Equal(t, "create unique index IF NOT EXISTS a_x ON a (x)", ifNotExists("create unique index a_x ON a (x)"))
	assert.Equal(t, "CREATE INDEX IF NOT EXISTS a_x ON a (x)", ifNotExists("CREATE INDEX IF NOT EXISTS a_x ON a (x)"))
}

func indexExists(t *testing.T, db *DB, index string) bool {
	t.Helper()
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?`
	if db.url != "" {
		q = `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1`
	}
	var n int
	require.NoError(t, db.read.QueryRow(q, index).Scan(&n))
	return n == 1
}

// WITHOUT ROWID is SQLite's; PostgreSQL gets the same table without it.
func TestCreateTableDropsWithoutRowidOnPostgres(t *testing.T) {
	stmt := "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)\n\t\tWITHOUT ROWID "
	assert.Equal(t, stmt, sqliteDialect{}.CreateTable(stmt))
	assert.Equal(t, "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)", postgresDialect{}.CreateTable(stmt))
	plain := "CREATE TABLE t (k TEXT PRIMARY KEY)"
	assert.Equal(t, plain, postgresDialect{}.CreateTable(plain))
	assert.Equal(t, plain, postgresDialect{}.CreateTable(plain+" without rowid"), "keywords in any case")
}
