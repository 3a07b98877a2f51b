package pgsql_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/projections/pgsql"
)

func TestRebind(t *testing.T) {
	cases := map[string]string{
		`SELECT 1`:                                                `SELECT 1`,
		`SELECT a FROM t WHERE b = ? AND c = ?`:                   `SELECT a FROM t WHERE b = $1 AND c = $2`,
		`SELECT '?', "a?b", ? FROM t`:                             `SELECT '?', "a?b", $1 FROM t`,
		`SELECT 'it''s ?', ?`:                                     `SELECT 'it''s ?', $1`,
		"SELECT ? -- why?\n, ?":                                   "SELECT $1 -- why?\n, $2",
		`SELECT /* ? */ ?`:                                        `SELECT /* ? */ $1`,
		`SELECT $$ ? $$, $tag$ ? $tag$, ?`:                        `SELECT $$ ? $$, $tag$ ? $tag$, $1`,
		`INSERT INTO t (a) VALUES (?) ON CONFLICT (a) DO NOTHING`: `INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO NOTHING`,
	}
	for in, want := range cases {
		assert.Equal(t, want, pgsql.Rebind(in), in)
	}
}

func TestIsURL(t *testing.T) {
	assert.True(t, pgsql.IsURL("postgres://u@h/db"))
	assert.True(t, pgsql.IsURL("postgresql://u@h/db"))
	assert.False(t, pgsql.IsURL("/var/lib/careflow/views.db"))
	assert.False(t, pgsql.IsURL("postgres.db"))
}

func TestOpenRunsQuestionMarkStatements(t *testing.T) {
	ctx := context.Background()
	db, err := pgsql.Open(pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })

	_, err = db.ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`)
	require.NoError(t, err)
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`)
	require.NoError(t, err)
	for i, k := range []string{"a", "b", "a"} {
		_, err := stmt.ExecContext(ctx, k, int64(i))
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())

	var v int64
	require.NoError(t, db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ? AND v >= ?`, "a", 0).Scan(&v))
	assert.Equal(t, int64(2), v)
	var literal string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT '?' || ?::text`, "x").Scan(&literal))
	assert.Equal(t, "?x", literal)
}

func TestOpenRefusesABadURLWithoutEchoingIt(t *testing.T) {
	_, err := pgsql.Open("postgres://user:secret@host:notaport/db")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret")
}

func TestDDLAdaptsSQLiteTablesToPostgreSQL(t *testing.T) {
	ctx := context.Background()
	db, err := pgsql.Open(pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.True(t, pgsql.Is(db))

	stmt := `CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY, at INTEGER NOT NULL, hash BLOB) STRICT`
	assert.Equal(t, `CREATE TABLE t (id TEXT NOT NULL PRIMARY KEY, at BIGINT NOT NULL, hash BYTEA)`, pgsql.DDL(db, stmt))
	_, err = db.ExecContext(ctx, pgsql.DDL(db, stmt))
	require.NoError(t, err)
	// Unix nanoseconds do not fit a PostgreSQL INTEGER.
	_, err = db.ExecContext(ctx, `INSERT INTO t (id, at, hash) VALUES (?, ?, ?)`, "a", int64(1)<<62, []byte{1})
	require.NoError(t, err)

	auto := pgsql.DDL(db, `CREATE TABLE seqs (seq INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT NOT NULL) WITHOUT ROWID`)
	assert.Equal(t, `CREATE TABLE seqs (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v TEXT NOT NULL)`, auto)
	_, err = db.ExecContext(ctx, auto)
	require.NoError(t, err)
	var seq int64
	require.NoError(t, db.QueryRowContext(ctx, `INSERT INTO seqs (v) VALUES (?) RETURNING seq`, "x").Scan(&seq))
	assert.Equal(t, int64(1), seq)
}
