package main

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/keyring"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
)

// careflow serve --store postgres://… runs the whole service on PostgreSQL:
// the schema is migrated, the first admin is created and can sign in, and
// a second start on the same database finds everything in place.
func TestServeOnPostgreSQL(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	t.Chdir(t.TempDir())
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.StoreURL = dbURL
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.AdminUsername, cfg.AdminPassword = "pg-admin", "a long enough password"
	_, kek, err := keyring.GenerateKEK(rand.Reader)
	require.NoError(t, err)
	cfg.KEK = kek // a PostgreSQL store needs a configured key-encryption key
	t.Setenv("CAREFLOW_KEK", kek)
	require.NoError(t, cfg.Validate())

	out, err := runCLI(t, "migrate", "--store", dbURL)
	require.NoError(t, err, out)
	assert.Contains(t, out, "schema is up to date")

	for range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), ready) }()
		var addr string
		select {
		case addr = <-ready:
		case err := <-done:
			t.Fatalf("serve stopped at start: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("serve did not start")
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)

		resp, err = http.Post("http://"+addr+"/v1/auth/token", "application/json",
			strings.NewReader(`{"username":"pg-admin","password":"a long enough password"}`))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the admin stored in PostgreSQL signs in")
		cancel()
		require.NoError(t, <-done)
	}

	out, err = runCLI(t, "verify", "--store", dbURL, "--data-dir", cfg.DataDir, "--log-level", "error")
	require.NoError(t, err, out)
	assert.Contains(t, out, "OK: 1 events match the chain", "the chain covers the PostgreSQL log")
}
