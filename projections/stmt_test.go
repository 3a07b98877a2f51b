package projections

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatementHelpers(t *testing.T) {
	forEachDB(t, testStatementHelpers)
}

func testStatementHelpers(t *testing.T, viewsAt viewsFactory) {
	ctx := context.Background()
	db := openTestDB(t, viewsAt(t))
	_, err := db.write.ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`)
	require.NoError(t, err)

	for _, cached := range []bool{false, true} {
		tx, err := db.write.BeginTx(ctx, nil)
		require.NoError(t, err)
		txCtx := ctx
		if cached {
			txCtx = withStmtCache(ctx, tx)
		}
		for i := range 3 {
			_, err := Exec(txCtx, tx, `INSERT INTO kv (k, v) VALUES (?, 1) ON CONFLICT (k) DO UPDATE SET v = kv.v + 1`, "a")
			require.NoError(t, err, "round %d", i)
		}
		var v int
		require.NoError(t, QueryRow(txCtx, tx, `SELECT v FROM kv WHERE k = ?`, "a").Scan(&v))
		rows, err := Query(txCtx, tx, `SELECT k FROM kv ORDER BY k`)
		require.NoError(t, err)
		var keys []string
		for rows.Next() {
			var k string
			require.NoError(t, rows.Scan(&k))
			keys = append(keys, k)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		if cached {
			cache := txCtx.Value(stmtCacheKey{}).(*stmtCache)
			assert.Len(t, cache.stmts, 3, "each distinct statement is prepared once")
			assert.Equal(t, 6, v)
		} else {
			assert.Equal(t, 3, v)
		}
		assert.Equal(t, []string{"a"}, keys)

		require.NoError(t, tx.Commit())

		// Errors surface from Exec and from Scan. In a transaction of its
		// own: on PostgreSQL a failed statement aborts its transaction.
		bad, err := db.write.BeginTx(ctx, nil)
		require.NoError(t, err)
		badCtx := ctx
		if cached {
			badCtx = withStmtCache(ctx, bad)
		}
		_, err = Exec(badCtx, bad, `INSERT INTO missing VALUES (1)`)
		require.Error(t, err)
		require.Error(t, QueryRow(badCtx, bad, `SELECT v FROM missing`).Scan(&v))
		require.NoError(t, bad.Rollback())
	}
}

func TestStatementHelpersStopOnACancelledContext(t *testing.T) {
	// Given a batch's transaction whose context then ends
	ctx, cancel := context.WithCancel(context.Background())
	db := openTestDB(t, viewsFactories["sqlite"](t))
	_, err := db.write.ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY)`)
	require.NoError(t, err)
	tx, err := db.write.BeginTx(context.Background(), nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	txCtx := withStmtCache(ctx, tx)
	_, err = Exec(txCtx, tx, `INSERT INTO kv (k) VALUES (?)`, "a")
	require.NoError(t, err)
	cancel()

	// Then the cached statements, which run without the cancellation, still
	// refuse to start
	_, err = Exec(txCtx, tx, `INSERT INTO kv (k) VALUES (?)`, "b")
	require.ErrorIs(t, err, context.Canceled)
	_, err = Query(txCtx, tx, `SELECT k FROM kv`)
	require.ErrorIs(t, err, context.Canceled)
	var k string
	require.ErrorIs(t, QueryRow(txCtx, tx, `SELECT k FROM kv`).Scan(&k), context.Canceled)
}
