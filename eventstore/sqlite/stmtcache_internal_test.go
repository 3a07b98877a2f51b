package sqlite

import (
	"context"
	"database/sql/driver"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A statement prepared, closed and prepared again on a connection is the
// one parsed the first time; while it is lent, a second prepare gets a
// statement of its own; one that failed is not lent again.
func TestPreparedStatementsAreLentFromTheCache(t *testing.T) {
	ctx := context.Background()
	db, err := OpenFile(ctx, filepath.Join(t.TempDir(), "x.db"), FileOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)
	require.NoError(t, err)
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()

	const q = `INSERT INTO kv (k, v) VALUES (?, ?)`
	require.NoError(t, conn.Raw(func(dc any) error {
		c := dc.(*cachingConn)
		first, err := c.PrepareContext(ctx, q)
		require.NoError(t, err)
		parsed := first.(*lentStmt).cs.stmt

		second, err := c.PrepareContext(ctx, q)
		require.NoError(t, err)
		_, shared := second.(*lentStmt)
		assert.False(t, shared, "a lent statement is not lent twice")
		require.NoError(t, second.Close())

		_, err = first.(driver.StmtExecContext).ExecContext(ctx, []driver.NamedValue{{Ordinal: 1, Value: "a"}, {Ordinal: 2, Value: int64(1)}})
		require.NoError(t, err)
		require.NoError(t, first.Close())
		require.NoError(t, first.Close(), "closing twice gives it back once")

		again, err := c.PrepareContext(ctx, q)
		require.NoError(t, err)
		require.IsType(t, &lentStmt{}, again)
		assert.Same(t, parsed, again.(*lentStmt).cs.stmt, "the statement parsed the first time")
		_, err = again.(driver.StmtExecContext).ExecContext(ctx, []driver.NamedValue{{Ordinal: 1, Value: "a"}, {Ordinal: 2, Value: int64(2)}})
		require.Error(t, err, "the key is taken")
		require.NoError(t, again.Close())

		fresh, err := c.PrepareContext(ctx, q)
		require.NoError(t, err)
		defer func() { _ = fresh.Close() }()
		require.IsType(t, &lentStmt{}, fresh)
		assert.NotSame(t, parsed, fresh.(*lentStmt).cs.stmt, "a statement that failed was dropped")
		return nil
	}))
	var v int
	require.NoError(t, conn.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = 'a'`).Scan(&v))
	assert.Equal(t, 1, v)
}
