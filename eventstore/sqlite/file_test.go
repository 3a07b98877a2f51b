package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/sqlite"
)

func TestOpenFileIsOwnerOnlyWALAndDurable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "new", "dir", "x.db")
	db, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{SecureDelete: true, ForeignKeys: true})
	require.NoError(t, err)
	defer db.Close()

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the file holds PHI: owner only")
	dir, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), dir.Mode().Perm())

	pragma := func(name string) int {
		var v int
		require.NoError(t, db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v))
		return v
	}
	assert.Equal(t, 2, pragma("synchronous"), "FULL by default")
	assert.Equal(t, 1, pragma("secure_delete"))
	assert.Equal(t, 1, pragma("foreign_keys"))
	var mode string
	require.NoError(t, db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "wal", mode)

	normal, err := sqlite.OpenFile(ctx, filepath.Join(t.TempDir(), "views.db"), sqlite.FileOptions{Synchronous: "NORMAL"})
	require.NoError(t, err)
	defer normal.Close()
	var sync int
	require.NoError(t, normal.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
	assert.Equal(t, 1, sync, "NORMAL when asked")
	var auto int
	require.NoError(t, normal.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto))
	assert.Equal(t, 1000, auto, "commits checkpoint by default")

	background, err := sqlite.OpenFile(ctx, filepath.Join(t.TempDir(), "background.db"), sqlite.FileOptions{BackgroundCheckpoints: true})
	require.NoError(t, err)
	defer background.Close()
	require.NoError(t, background.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto))
	assert.Equal(t, sqlite.BackgroundCheckpointPages, auto, "the owner checkpoints; commits only once the WAL is long")
	var limit int
	require.NoError(t, background.QueryRowContext(ctx, "PRAGMA journal_size_limit").Scan(&limit))
	assert.Equal(t, 128<<20, limit)
}

func TestOpenFileRefusesWhatIsNotAPlainPath(t *testing.T) {
	for _, bad := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro", "x#y.db"} {
		_, err := sqlite.OpenFile(context.Background(), bad, sqlite.FileOptions{})
		assert.ErrorContains(t, err, "plain file path", bad)
	}
	_, err := sqlite.OpenFile(context.Background(), filepath.Join(t.TempDir(), "x.db"), sqlite.FileOptions{Synchronous: "OFF"})
	assert.ErrorContains(t, err, "neither FULL nor NORMAL")
}
