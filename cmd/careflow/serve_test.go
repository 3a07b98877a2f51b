package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServeAnswersHealthAndStopsCleanly(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.StoreURL = "sqlite://" + filepath.Join(t.TempDir(), "careflow.db")
	require.NoError(t, cfg.Validate())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), ready) }()

	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve stopped at start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}

	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()

	resp, err = http.Get("http://" + addr + "/readyz")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	assert.Equal(t, "ready", body["status"])

	resp, err = http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	for _, name := range []string{"careflow_http_requests_total", "careflow_events_appended_total",
		"careflow_append_duration_seconds", "careflow_projection_backlog_events", "go_goroutines"} {
		assert.Contains(t, string(metrics), name)
	}

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "a stop signal ends serve without error")
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	_, err = http.Get("http://" + addr + "/healthz")
	assert.Error(t, err, "nothing listens after the stop")
}

func TestServeCreatesTheFirstAdminWhoCanSignIn(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	dir := t.TempDir()
	cfg.StoreURL = "sqlite://" + filepath.Join(dir, "careflow.db")
	cfg.AdminUsername, cfg.AdminPassword = "root-admin", "correct horse battery staple"

	signIn := func(addr, password string) int {
		body := strings.NewReader(`{"username":"root-admin","password":"` + password + `"}`)
		resp, err := http.Post("http://"+addr+"/v1/auth/token", "application/json", body)
		require.NoError(t, err)
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			var tok map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
			assert.NotEmpty(t, tok["access_token"])
			assert.Equal(t, "Bearer", tok["token_type"])
		}
		return resp.StatusCode
	}

	// Two starts on the same store: the second creates nothing new.
	for range 2 {
		func() {
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan string, 1)
			done := make(chan error, 1)
			go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), ready) }()
			addr := <-ready
			assert.Equal(t, http.StatusOK, signIn(addr, cfg.AdminPassword))
			assert.Equal(t, http.StatusUnauthorized, signIn(addr, "wrong password entirely"))
			cancel()
			require.NoError(t, <-done)
		}()
	}
	secret, err := os.ReadFile(filepath.Join(dir, "careflow-auth.secret"))
	require.NoError(t, err, "a generated token secret is kept beside the store")
	assert.GreaterOrEqual(t, len(strings.TrimSpace(string(secret))), minAuthSecret)
}

func TestAuthSecretIsMadeOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x-auth.secret")
	first, err := authSecret("", path)
	require.NoError(t, err)
	again, err := authSecret("", path)
	require.NoError(t, err)
	assert.Equal(t, first, again)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	configured, err := authSecret("a configured secret that is long enough!", path)
	require.NoError(t, err)
	assert.Equal(t, "a configured secret that is long enough!", string(configured))

	require.NoError(t, os.WriteFile(path, []byte("short\n"), 0o600))
	_, err = authSecret("", path)
	assert.ErrorContains(t, err, "at least 32")
}

func TestServeRefusesABadStore(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.StoreURL = "sqlite://" + filepath.Join(t.TempDir(), "not-a-dir.db", "x\x00y.db")
	err := serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	assert.ErrorContains(t, err, "open store")
}
