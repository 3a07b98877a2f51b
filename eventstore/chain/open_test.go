package chain

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/postgres/pgtest"
)

func TestOpenByKind(t *testing.T) {
	ctx := context.Background()
	table, err := Open(ctx, "sqlite", filepath.Join(t.TempDir(), "events.db"))
	require.NoError(t, err)
	head, err := table.Head(ctx)
	require.NoError(t, err)
	assert.Equal(t, GenesisLink, head)
	require.NoError(t, table.Close())

	table, err = Open(ctx, "postgres", pgtest.NewDatabase(t))
	require.NoError(t, err)
	require.NoError(t, table.Close())

	table, err = Open(ctx, "mysql", "x")
	assert.Error(t, err)
	assert.Nil(t, table)
	table, err = Open(ctx, "sqlite", ":memory:")
	assert.Error(t, err)
	assert.Nil(t, table, "a failed open gives a nil Table, not a typed nil")
	_, err = Open(ctx, "postgres", "postgres://[bad")
	assert.Error(t, err)
}

func TestOpeningTwiceKeepsTheChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		events := appendScript(t, f.store)
		head := chainAll(t, f)
		var again Table
		var err error
		switch tbl := f.table.(type) {
		case *SQLiteTable:
			var path string
			require.NoError(t, tbl.db.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path))
			again, err = OpenSQLite(context.Background(), path)
		case *PostgresTable:
			again, err = OpenPostgres(context.Background(), tbl.pool.Config().ConnString())
		}
		require.NoError(t, err)
		defer again.Close()
		got, err := again.Head(context.Background())
		require.NoError(t, err)
		assert.Equal(t, head, got)
		assert.Equal(t, events[len(events)-1].Position, got.Position)
	})
}
