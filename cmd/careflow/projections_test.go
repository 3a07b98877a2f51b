package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/projections"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestProjectionsStatusAndOfflineRebuild(t *testing.T) {
	t.Chdir(t.TempDir())
	store := "sqlite://" + filepath.Join(t.TempDir(), "events.db")

	out, err := runCLI(t, "projections", "status", "--store", store, "--json", "--log-level", "error")
	require.NoError(t, err)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	var names []string
	for _, r := range rows {
		names = append(names, r["name"].(string))
	}
	assert.Equal(t, []string{"provider_inbox", "client_sessions", "session_view", "clinic_overview", "score_history", "audit_trail", "api_assignment_index"}, names)

	out, err = runCLI(t, "projections", "rebuild", "all", "--store", store, "--log-level", "error")
	require.NoError(t, err)
	assert.Contains(t, out, "rebuilt all")

	_, err = runCLI(t, "projections", "rebuild", "nope", "--store", store, "--log-level", "error")
	assert.ErrorContains(t, err, `no projection "nope"`)
}

func TestServeRefusesWhenAnotherProcessHoldsTheReadModels(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.StoreURL = "sqlite://" + filepath.Join(t.TempDir(), "events.db")
	views, err := cfg.viewsPath()
	require.NoError(t, err)
	release, err := projections.Lock(views)
	require.NoError(t, err)
	defer func() { _ = release() }()

	_, err = runCLI(t, "serve", "--addr", cfg.Addr, "--store", cfg.StoreURL, "--log-level", "error")
	assert.ErrorContains(t, err, "another careflow process")
}

func TestViewsPathSitsBesideTheStore(t *testing.T) {
	c := DefaultConfig()
	p, err := c.viewsPath()
	require.NoError(t, err)
	assert.Equal(t, "./data/careflow-views.db", p)
	c.ViewsURL = "sqlite:///var/lib/careflow/views.db"
	p, err = c.viewsPath()
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/careflow/views.db", p)
	c.ViewsURL = "redis://x"
	assert.ErrorContains(t, c.Validate(), "views_url")
}
