package main

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"
)

// A scripted history, then `careflow verify` says OK; one byte changed in
// the stored log makes it fail and name the position.
func TestVerifyCommandFindsATamperedEvent(t *testing.T) {
	t.Chdir(t.TempDir())
	dir := t.TempDir()
	storePath := filepath.Join(dir, "careflow.db")
	cfg := DefaultConfig()
	cfg.StoreURL = "sqlite://" + storePath
	for _, user := range []string{"admin-one", "admin-two", "admin-three"} {
		cfg.AdminUsername, cfg.AdminPassword = user, "a long enough password"
		a, err := openApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		require.NoError(t, err)
		require.NoError(t, a.bootstrapAdmin(context.Background()))
		require.NoError(t, a.Close())
	}
	key := filepath.Join(dir, "chain.key")
	out, err := runCLI(t, "chain", "keygen", key)
	require.NoError(t, err, out)

	out, err = runCLI(t, "verify", "--store", cfg.StoreURL, "--log-level", "error")
	require.NoError(t, err, out)
	assert.Contains(t, out, "OK: 3 events match the chain")

	raw, err := sql.Open("sqlite", storePath)
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.Exec(`DROP TRIGGER events_no_update`)
	require.NoError(t, err)
	_, err = raw.Exec(`UPDATE events SET data = CAST(replace(CAST(data AS TEXT), 'admin-two', 'admin-twO') AS BLOB) WHERE position = 2`)
	require.NoError(t, err)

	out, err = runCLI(t, "verify", "--store", cfg.StoreURL, "--log-level", "error")
	assert.ErrorIs(t, err, errVerifyFailed)
	assert.Contains(t, out, "TAMPERED")
	assert.Contains(t, out, "altered at position 2", "the report names the position")
}
