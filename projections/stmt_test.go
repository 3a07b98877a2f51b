package projections

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"testing"
	"time"

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

func TestDirectExecRunsInsideTheBatchsTransaction(t *testing.T) {
	// Given a batch's transaction on SQLite, whose Exec runs on the driver
	// connection
	ctx := context.Background()
	db := openTestDB(t, viewsFactories["sqlite"](t))
	_, err := db.write.ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT, n BIGINT)`)
	require.NoError(t, err)
	count := func() (n int) {
		require.NoError(t, db.read.QueryRowContext(ctx, `SELECT count(*) FROM kv`).Scan(&n))
		return n
	}

	// When two rows are written and the transaction rolled back
	tx, applyCtx, end, err := db.beginBatch(ctx)
	require.NoError(t, err)
	cache := applyCtx.Value(stmtCacheKey{}).(*stmtCache)
	require.NotNil(t, cache.direct, "SQLite batches run Exec directly")
	for _, k := range []string{"a", "b"} {
		res, err := Exec(applyCtx, tx, `INSERT INTO kv (k, v, n) VALUES (?, ?, ?)`, k, 7, nil)
		require.NoError(t, err)
		affected, err := res.RowsAffected()
		require.NoError(t, err)
		assert.Equal(t, int64(1), affected)
	}
	assert.Len(t, cache.direct.stmts, 1, "the statement is prepared once per transaction")
	var v int
	var n *int
	require.NoError(t, QueryRow(applyCtx, tx, `SELECT v, n FROM kv WHERE k = ?`, "b").Scan(&v, &n))
	require.NoError(t, tx.Rollback())
	require.NoError(t, end())

	// Then the transaction saw them, with the arguments converted, and
	// nothing of them is left
	assert.Equal(t, 7, v)
	assert.Nil(t, n)
	assert.Zero(t, count())

	// And a batch that commits keeps its rows; one that reports an error
	// from the driver says so
	tx, applyCtx, end, err = db.beginBatch(ctx)
	require.NoError(t, err)
	_, err = Exec(applyCtx, tx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "c", int64(1))
	require.NoError(t, err)
	_, err = Exec(applyCtx, tx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "c", int64(2))
	require.ErrorContains(t, err, "UNIQUE")
	_, err = Exec(applyCtx, tx, `INSERT INTO missing VALUES (1)`)
	require.ErrorContains(t, err, "missing")
	require.NoError(t, tx.Commit())
	require.NoError(t, end())
	assert.Equal(t, 1, count())

	// And after its end, a statement of that batch is refused, not run
	// outside the transaction
	_, err = Exec(applyCtx, tx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "d", 1)
	require.Error(t, err)
	assert.Equal(t, 1, count())
}

func TestDirectExecStopsOnceTheTransactionsContextEnds(t *testing.T) {
	// Given a batch's transaction on SQLite whose context then ends
	ctx, cancel := context.WithCancel(context.Background())
	db := openTestDB(t, viewsFactories["sqlite"](t))
	_, err := db.write.ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY)`)
	require.NoError(t, err)
	tx, applyCtx, end, err := db.beginBatch(ctx)
	require.NoError(t, err)
	_, err = Exec(applyCtx, tx, `INSERT INTO kv (k) VALUES (?)`, "a")
	require.NoError(t, err)
	cancel()
	// and database/sql has rolled the transaction back
	require.Eventually(t, func() bool {
		var one int
		return errors.Is(tx.QueryRowContext(context.Background(), `SELECT 1`).Scan(&one), sql.ErrTxDone)
	}, 5*time.Second, time.Millisecond)

	// Then the next statement refuses to start: on the connection it would
	// run outside any transaction
	_, err = Exec(applyCtx, tx, `INSERT INTO kv (k) VALUES (?)`, "b")
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, end())
	var n int
	require.NoError(t, db.read.QueryRowContext(context.Background(), `SELECT count(*) FROM kv`).Scan(&n))
	assert.Zero(t, n)
}

func TestDriverValueConvertsAsDatabaseSQLDoes(t *testing.T) {
	type kind string
	for _, c := range []struct {
		in   any
		want driver.Value
	}{
		{nil, nil},
		{"text", "text"},
		{7, int64(7)},
		{int64(7), int64(7)},
		{int32(7), int64(7)},
		{true, true},
		{1.5, 1.5},
		{[]byte("b"), []byte("b")},
		{kind("open"), "open"},
	} {
		got, err := driverValue(c.in)
		require.NoError(t, err, "%T", c.in)
		assert.Equal(t, c.want, got, "%T", c.in)
	}
	_, err := driverValue(struct{}{})
	assert.Error(t, err)
}
