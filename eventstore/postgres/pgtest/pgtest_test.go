package pgtest

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewDatabaseIsFreshAndDroppedAfterwards(t *testing.T) {
	ctx := context.Background()
	var name string
	t.Run("uses", func(t *testing.T) {
		url := NewDatabase(t)
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		defer conn.Close(ctx)
		require.NoError(t, conn.QueryRow(ctx, `SELECT current_database()`).Scan(&name))
		assert.True(t, strings.HasPrefix(name, "careflow_test_"), name)
		var tables int
		require.NoError(t, conn.QueryRow(ctx, `SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables))
		assert.Zero(t, tables, "the database starts empty")
		assert.NotEqual(t, url, NewDatabase(t), "every call gets its own database")
	})
	conn, err := pgx.Connect(ctx, ServerURL(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var exists bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists))
	assert.False(t, exists, "the database is dropped when its test ends")
}

func TestWithDatabaseKeepsEverythingButThePath(t *testing.T) {
	got := withDatabase(t, "postgres://u:p@db.example:5433/postgres?sslmode=require", "careflow_test_ab")
	assert.Equal(t, "postgres://u:p@db.example:5433/careflow_test_ab?sslmode=require", got)
	assert.Equal(t, "postgres://u:xxxxx@db.example/x", redact("postgres://u:secret@db.example/x"))
}
