package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/sqlite"
)

// TestOverRealHTTPWithDurableStores runs sign-in, a command and refresh
// over a real listener, the SQLite event store and the SQLite refresh
// token store, the way careflow serve wires them.
func TestOverRealHTTPWithDurableStores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "careflow.db")}, eventstore.Options{Types: reg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	refresh, err := OpenSQLiteRefreshTokens(ctx, filepath.Join(dir, "careflow-auth.db"), time.Now)
	require.NoError(t, err)
	t.Cleanup(func() { _ = refresh.Close() })
	hasher, err := identity.NewHasher(identity.TestArgon2Params())
	require.NoError(t, err)
	accounts := commands.NewAccounts(commands.Deps{Store: store, Codec: reg, Clock: time.Now,
		NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }}, hasher)
	_, err = accounts.RegisterAccount(ctx, commands.Meta{Actor: domain.Actor{ID: "operator", Role: domain.RoleSystemAdmin}},
		commands.RegisterAccount{Username: "root", Password: alicePass, Role: domain.RoleSystemAdmin})
	require.NoError(t, err)

	srv, err := NewServer(Config{Store: store, Accounts: accounts, Refresh: refresh,
		Tokens: TokenConfig{Secret: testSecret, Issuer: testIssuer, Audience: testAudience}})
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)

	post := func(path, auth, body string) *http.Response {
		req, err := http.NewRequestWithContext(ctx, "POST", ts.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := ts.Client().Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	resp := post("/v1/auth/token", "", `{"username":"root","password":"`+alicePass+`"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var tr TokenResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tr))

	resp = post("/v1/accounts", "Bearer "+tr.AccessToken, `{"username":"carol","password":"carol's password!","role":"auditor"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, `"1"`, resp.Header.Get("ETag"))
	assert.NotEmpty(t, resp.Header.Get(HeaderRequestID))

	resp = post("/v1/auth/refresh", "", `{"refresh_token":"`+tr.RefreshToken+`"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp = post("/v1/auth/refresh", "", `{"refresh_token":"`+tr.RefreshToken+`"}`)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))

	resp = post("/v1/auth/token", "", strings.Repeat(" ", MaxBodyBytes)+`{"username":"root","password":"x"}`)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}
