package keyring

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawFiles is the database file and its WAL as they lie on disk.
func rawFiles(t *testing.T, path string) []byte {
	t.Helper()
	db, err := os.ReadFile(path)
	require.NoError(t, err)
	wal, err := os.ReadFile(path + "-wal")
	if err != nil {
		require.ErrorIs(t, err, os.ErrNotExist)
	}
	return append(db, wal...)
}

func TestSQLiteDestroyLeavesNoKeyBytesOnDisk(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.db")
	b, err := OpenSQLite(ctx, path)
	require.NoError(t, err)
	k, err := New(Config{Current: newKEK(t), Backend: b})
	require.NoError(t, err)
	defer k.Close()
	// Enough keys for several pages, so erased cells sit between live ones
	// (a page SQLite defragments would hide a missing secure_delete).
	var subjects []string
	for i := range 200 {
		s := fmt.Sprintf("client-%03d", i)
		subjects = append(subjects, s)
		_, err := k.Seal(s, []byte("x"), nil)
		require.NoError(t, err)
	}
	records := map[string]Record{}
	for _, s := range subjects {
		records[s], err = b.Get(ctx, s)
		require.NoError(t, err)
		require.Len(t, records[s].Wrapped, 60)
	}
	raw := rawFiles(t, path)
	for _, s := range subjects {
		require.True(t, bytes.Contains(raw, records[s].Wrapped), "the wrapped key of %s is on disk before Destroy", s)
	}

	for i, s := range subjects {
		if i%7 == 3 {
			require.NoError(t, k.Destroy(ctx, s, time.Now()))
		}
	}
	raw = rawFiles(t, path)
	for i, s := range subjects {
		// Even 16 bytes of the wrapped key would be part of the key's
		// ciphertext left behind.
		part := records[s].Wrapped[nonceSize : nonceSize+16]
		if i%7 == 3 {
			assert.False(t, bytes.Contains(raw, part), "no copy of the destroyed key of %s in the file or its WAL", s)
		} else {
			assert.True(t, bytes.Contains(raw, records[s].Wrapped), "the key of %s is still there", s)
		}
	}
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "keys.db")
	b, err := OpenSQLite(context.Background(), path)
	require.NoError(t, err)
	defer b.Close()
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	_, err = OpenSQLite(context.Background(), "file:x.db")
	assert.Error(t, err)
	_, err = OpenSQLite(context.Background(), ":memory:")
	assert.Error(t, err)
}
