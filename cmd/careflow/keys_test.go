package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/keyring"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// writeKEK generates a KEK into a 0600 file in dir.
func writeKEK(t *testing.T, dir, name string) (keyring.KEK, string) {
	t.Helper()
	root := newRootCmd()
	var out, hint bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&hint)
	root.SetArgs([]string{"keys", "generate"})
	require.NoError(t, root.ExecuteContext(context.Background()))
	k, err := keyring.ParseKEK(out.String())
	require.NoError(t, err, "stdout holds the key alone")
	assert.Contains(t, hint.String(), k.ID())
	assert.Contains(t, hint.String(), "chmod 600")
	assert.NotContains(t, hint.String(), strings.TrimSpace(out.String()), "the hint does not repeat the key")
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, out.Bytes(), 0o600))
	return k, path
}

func TestConfigKeySettings(t *testing.T) {
	t.Chdir(t.TempDir())
	kek, _, err := keyring.GenerateKEK(strings.NewReader(strings.Repeat("k", 32)))
	require.NoError(t, err)

	c, err := loadConfig(flags(t, "--kek-file", "/etc/careflow/kek", "--kek-previous-files", "/a,/b", "--keys", "sqlite:///var/keys.db"), env(nil))
	require.NoError(t, err)
	assert.Equal(t, "/etc/careflow/kek", c.KEKFile)
	assert.Equal(t, []string{"/a", "/b"}, c.KEKPreviousFiles)
	assert.Equal(t, "sqlite:///var/keys.db", c.KeysURL)

	c, err = loadConfig(flags(t), env(map[string]string{"CAREFLOW_KEK": kek.Text(), "CAREFLOW_KEK_PREVIOUS_FILES": "/c,/d"}))
	require.NoError(t, err)
	assert.Equal(t, kek.Text(), c.KEK)
	assert.Equal(t, []string{"/c", "/d"}, c.KEKPreviousFiles)

	require.NoError(t, os.WriteFile("careflow.yaml", []byte("kek_previous_files:\n  - /e\n  - /f\n"), 0o600))
	c, err = loadConfig(flags(t), env(nil))
	require.NoError(t, err)
	assert.Equal(t, []string{"/e", "/f"}, c.KEKPreviousFiles)
	require.NoError(t, os.Remove("careflow.yaml"))

	_, err = loadConfig(flags(t, "--kek-file", "/x", "--keys", "mysql://x"),
		env(map[string]string{"CAREFLOW_KEK": "not-a-key-but-secret-text"}))
	require.Error(t, err)
	assert.ErrorContains(t, err, "kek_file and kek (CAREFLOW_KEK) are both set")
	assert.ErrorContains(t, err, "kek (CAREFLOW_KEK)")
	assert.ErrorContains(t, err, "keys_url")
	assert.NotContains(t, err.Error(), "not-a-key-but-secret-text", "a bad KEK is not echoed")
}

func TestKeysLocation(t *testing.T) {
	c := DefaultConfig()
	loc, err := c.keysLocation()
	require.NoError(t, err)
	assert.Equal(t, storeLocation{Kind: "sqlite", Path: "./data/careflow-keys.db"}, loc, "beside the SQLite store")

	c.StoreURL = "postgres://careflow@db.example/careflow"
	loc, err = c.keysLocation()
	require.NoError(t, err)
	assert.Equal(t, storeLocation{Kind: "postgres", URL: c.StoreURL}, loc, "in the PostgreSQL store's database")

	c.KeysURL = "sqlite:///srv/keys.db"
	loc, err = c.keysLocation()
	require.NoError(t, err)
	assert.Equal(t, storeLocation{Kind: "sqlite", Path: "/srv/keys.db"}, loc)
}

func TestOpenKeyringMakesALocalKEKForTheEmbeddedStoreOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.StoreURL = "sqlite://" + filepath.Join(dir, "careflow.db")
	var logs bytes.Buffer
	k, closer, err := openKeyring(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	sealed, err := k.Seal("client-1", []byte("x"), nil)
	require.NoError(t, err)
	id := k.CurrentKEKID()
	require.NoError(t, closer.Close())
	assert.Contains(t, logs.String(), "beside the data", "a local KEK is warned about")

	kekPath := filepath.Join(dir, "careflow-kek")
	info, err := os.Stat(kekPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	_, err = os.Stat(filepath.Join(dir, "careflow-keys.db"))
	require.NoError(t, err)

	k, closer, err = openKeyring(ctx, cfg, quietLog())
	require.NoError(t, err)
	defer closer.Close()
	assert.Equal(t, id, k.CurrentKEKID(), "the same KEK on the next start")
	got, err := k.Open("client-1", sealed, nil)
	require.NoError(t, err)
	assert.Equal(t, "x", string(got))

	pg := DefaultConfig()
	pg.StoreURL = "postgres://careflow@127.0.0.1:1/careflow"
	_, _, err = openKeyring(ctx, pg, quietLog())
	assert.ErrorContains(t, err, "no key-encryption key configured", "no guessing with PostgreSQL")
	pg.StoreURL, pg.KeysURL = cfg.StoreURL, "postgres://careflow@127.0.0.1:1/careflow"
	_, _, err = openKeyring(ctx, pg, quietLog())
	assert.ErrorContains(t, err, "no key-encryption key configured")
}

func TestLocalKEKIsOneKeyUnderARace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek")
	const n = 8
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := localKEK(path)
			ids[i], errs[i] = k.ID(), err
		})
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, ids[0], ids[i])
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")
}

func TestKeysRotateAndStatusCommands(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx := context.Background()
	dir := t.TempDir()
	oldKEK, oldPath := writeKEK(t, dir, "old.kek")
	newKEK, newPath := writeKEK(t, dir, "new.kek")
	store := "sqlite://" + filepath.Join(dir, "careflow.db")

	cfg := DefaultConfig()
	cfg.StoreURL, cfg.KEKFile = store, oldPath
	k, closer, err := openKeyring(ctx, cfg, quietLog())
	require.NoError(t, err)
	sealed := map[string][]byte{}
	for _, s := range []string{"client-1", "client-2", "client-3"} {
		sealed[s], err = k.Seal(s, []byte(s), nil)
		require.NoError(t, err)
	}
	require.NoError(t, k.Destroy(ctx, "client-3", time.Now()))
	delete(sealed, "client-3")
	require.NoError(t, closer.Close())

	out, err := runCLI(t, "keys", "status", "--store", store, "--kek-file", oldPath, "--log-level", "error")
	require.NoError(t, err, out)
	assert.Regexp(t, oldKEK.ID()+` \(current\)\s+2\n`, out)
	assert.Regexp(t, `destroyed\s+1\n`, out)

	out, err = runCLI(t, "keys", "rotate", "--store", store, "--kek-file", newPath, "--log-level", "error")
	require.Error(t, err, "without the old KEK rotation cannot unwrap")
	assert.ErrorContains(t, err, oldKEK.ID())
	assert.Contains(t, out, "rewrapped 0 data keys")

	out, err = runCLI(t, "keys", "rotate", "--store", store, "--kek-file", newPath, "--kek-previous-files", oldPath, "--log-level", "error")
	require.NoError(t, err, out)
	assert.Contains(t, out, "rewrapped 2 data keys under KEK "+newKEK.ID())

	out, err = runCLI(t, "keys", "status", "--store", store, "--kek-file", newPath, "--log-level", "error")
	require.NoError(t, err, out)
	assert.Regexp(t, newKEK.ID()+` \(current\)\s+2\n`, out)
	assert.NotContains(t, out, oldKEK.ID(), "no key is left under the old KEK")

	cfg.KEKFile = newPath
	k, closer, err = openKeyring(ctx, cfg, quietLog())
	require.NoError(t, err)
	defer closer.Close()
	for s, v := range sealed {
		got, err := k.Open(s, v, nil)
		require.NoError(t, err, "%s opens with the new KEK alone", s)
		assert.Equal(t, s, string(got))
	}
}
