package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
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

func TestServeRefusesABadStore(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.StoreURL = "sqlite://" + filepath.Join(t.TempDir(), "not-a-dir.db", "x\x00y.db")
	err := serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	assert.ErrorContains(t, err, "open store")
}
