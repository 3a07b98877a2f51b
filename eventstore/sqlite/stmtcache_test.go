package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/sqlite"
)

func openCachingFile(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sqlite.OpenFile(context.Background(), filepath.Join(t.TempDir(), "x.db"), sqlite.FileOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL); CREATE TABLE log (n INTEGER)`)
	require.NoError(t, err)
	return db
}

// The same statement run again and again (it is cached) binds its new
// arguments every time.
func TestCachedStatementsBindFreshArguments(t *testing.T) {
	db := openCachingFile(t)
	for i := range 100 {
		_, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint("k", i), i)
		require.NoError(t, err)
	}
	for _, i := range []int{0, 42, 99, 42} {
		var v int
		require.NoError(t, db.QueryRow(`SELECT v FROM kv WHERE k = ?`, fmt.Sprint("k", i)).Scan(&v))
		assert.Equal(t, i, v)
	}
	var n int
	err := db.QueryRow(`SELECT v FROM kv WHERE k = ?`, "none").Scan(&n)
	assert.ErrorIs(t, err, sql.ErrNoRows, "no row left over from the last run")
}

// A statement whose rows are still open is not handed out again: the same
// query inside the loop over its own rows runs on a statement of its own.
func TestABusyStatementIsNotShared(t *testing.T) {
	db := openCachingFile(t)
	for i := range 3 {
		_, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint("k", i), i)
		require.NoError(t, err)
	}
	tx, err := db.Begin() // one connection for the outer and inner query
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	const q = `SELECT k, v FROM kv WHERE v >= ? ORDER BY v`
	outer, err := tx.Query(q, 0)
	require.NoError(t, err)
	var pairs []string
	for outer.Next() {
		var k string
		var v int
		require.NoError(t, outer.Scan(&k, &v))
		inner, err := tx.Query(q, v)
		require.NoError(t, err)
		count := 0
		for inner.Next() {
			count++
		}
		require.NoError(t, inner.Close())
		pairs = append(pairs, fmt.Sprintf("%s:%d", k, count))
	}
	require.NoError(t, outer.Err())
	require.NoError(t, outer.Close())
	assert.Equal(t, []string{"k0:3", "k1:2", "k2:1"}, pairs)
}

// A table dropped and made again with other columns does not leave a
// stale statement behind; nor do more distinct statements than the cache
// holds.
func TestCachedStatementsFollowSchemaChangesAndEviction(t *testing.T) {
	db := openCachingFile(t)
	_, err := db.Exec(`INSERT INTO log (n) VALUES (?)`, 1)
	require.NoError(t, err)
	var n int
	require.NoError(t, db.QueryRow(`SELECT * FROM log`).Scan(&n))
	assert.Equal(t, 1, n)

	_, err = db.Exec(`DROP TABLE log`)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO log (n) VALUES (?)`, 2)
	require.Error(t, err, "no such table")
	_, err = db.Exec(`CREATE TABLE log (label TEXT, n INTEGER)`)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO log (n) VALUES (?)`, 3)
	require.NoError(t, err)
	var label sql.NullString
	require.NoError(t, db.QueryRow(`SELECT * FROM log`).Scan(&label, &n), "the star expands to the new columns")
	assert.Equal(t, 3, n)

	for i := range 200 {
		var got int
		require.NoError(t, db.QueryRow(fmt.Sprintf(`SELECT %d + ?`, i), 1).Scan(&got))
		assert.Equal(t, i+1, got)
	}
}

// BenchmarkStatementCache runs a read model's kind of query — a join with
// an index lookup — through a cached connection and through a plain one.
func BenchmarkStatementCache(b *testing.B) {
	const q = `SELECT a.k, a.v, b.v FROM kv a JOIN kv b ON b.k = a.k WHERE a.k = ? AND a.v >= ? ORDER BY a.v`
	setup := func(b *testing.B, db *sql.DB) {
		_, err := db.Exec(`CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)
		require.NoError(b, err)
		for i := range 100 {
			_, err := db.Exec(`INSERT OR IGNORE INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint("k", i), i)
			require.NoError(b, err)
		}
	}
	run := func(b *testing.B, db *sql.DB) {
		setup(b, db)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			var k string
			var v1, v2 int
			if err := db.QueryRow(q, fmt.Sprint("k", i%100), 0).Scan(&k, &v1, &v2); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("cached", func(b *testing.B) {
		db, err := sqlite.OpenFile(context.Background(), filepath.Join(b.TempDir(), "x.db"), sqlite.FileOptions{})
		require.NoError(b, err)
		defer db.Close()
		run(b, db)
	})
	b.Run("plain", func(b *testing.B) {
		db, err := sql.Open("sqlite", filepath.Join(b.TempDir(), "x.db"))
		require.NoError(b, err)
		db.SetMaxOpenConns(1)
		defer db.Close()
		run(b, db)
	})
}
