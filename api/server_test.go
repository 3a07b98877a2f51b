package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/careflow/careflow/eventstore"
)

func TestNewServerChecksItsConfiguration(t *testing.T) {
	good := newFixture(t).cfg
	for name, change := range map[string]func(*Config){
		"no store":        func(c *Config) { c.Store = nil },
		"no accounts":     func(c *Config) { c.Accounts = nil },
		"no refresh":      func(c *Config) { c.Refresh = nil },
		"weak secret":     func(c *Config) { c.Tokens.Secret = []byte("0123456789") },
		"negative ttl":    func(c *Config) { c.RefreshTTL = -1 },
		"half the limits": func(c *Config) { c.LoginLimits = LoginLimits{PerUsername: rate.Every(1)} },
	} {
		c := good
		change(&c)
		_, err := NewServer(c)
		assert.Error(t, err, name)
	}
}

func TestHealthThroughTheServer(t *testing.T) {
	f := newFixture(t)
	rec := f.do("GET", "/healthz", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"status":"ok"}`, rec.Body.String())

	rec = f.do("GET", "/readyz", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	var ready map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ready))
	assert.Equal(t, "ready", ready["status"])

	down := newFixture(t, func(c *Config) { c.Store = unreachableStore{c.Store} })
	rec = down.do("GET", "/readyz", nil)
	requireProblem(t, rec, http.StatusServiceUnavailable, "not-ready")
	assert.NotContains(t, rec.Body.String(), "disk I/O")
}

// unreachableStore fails its health probe.
type unreachableStore struct{ eventstore.Store }

func (unreachableStore) HeadPosition(context.Context) (int64, error) {
	return 0, errors.New("disk I/O error")
}

func TestServerWorksWithTheSQLiteRefreshStore(t *testing.T) {
	f := newFixture(t)
	store, err := OpenSQLiteRefreshTokens(context.Background(), t.TempDir()+"/auth.db", f.clock.Now)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	f = newFixture(t, func(c *Config) { c.Refresh = store })
	tr := f.signIn("alice", alicePass)
	next, p, _ := f.refreshWith(tr.RefreshToken)
	require.Nil(t, p)
	_, p, _ = f.refreshWith(tr.RefreshToken)
	require.NotNil(t, p, "reuse refused")
	_, p, _ = f.refreshWith(next.RefreshToken)
	assert.NotNil(t, p, "the family is revoked")
}
