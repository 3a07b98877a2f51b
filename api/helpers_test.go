package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

const (
	testIssuer   = "https://careflow.test"
	testAudience = "careflow-api"
	alicePass    = "correct horse battery"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type fixture struct {
	t        *testing.T
	clock    *testClock
	store    *memory.Store
	accounts *commands.Accounts
	refresh  *MemoryRefreshTokens
	server   *Server
	logs     *logBuffer
	cfg      Config
}

func testTokenConfig(clock func() time.Time) TokenConfig {
	return TokenConfig{Secret: testSecret, Issuer: testIssuer, Audience: testAudience, Clock: clock}
}

// newFixture serves the API over an in-memory store with accounts
// alice (provider p1, clinic c1) and root (system admin).
func newFixture(t *testing.T, adjust ...func(*Config)) *fixture {
	t.Helper()
	clock := newTestClock()
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	store := memory.New(eventstore.Options{Types: reg})
	t.Cleanup(func() { _ = store.Close() })
	hasher, err := identity.NewHasher(identity.TestArgon2Params())
	require.NoError(t, err)
	deps := commands.Deps{Store: store, Codec: reg, Clock: clock.Now, NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }}
	accounts := commands.NewAccounts(deps, hasher)
	admin := commands.Meta{Actor: domain.Actor{ID: "boot", Role: domain.RoleSystemAdmin}}
	ctx := context.Background()
	_, err = accounts.RegisterAccount(ctx, admin, commands.RegisterAccount{Username: "alice", Password: alicePass, Role: domain.RoleProvider, ProviderID: "p1"})
	require.NoError(t, err)
	_, err = accounts.RegisterAccount(ctx, admin, commands.RegisterAccount{Username: "root", Password: alicePass, Role: domain.RoleSystemAdmin})
	require.NoError(t, err)

	logs := &logBuffer{}
	refresh := NewMemoryRefreshTokens(clock.Now)
	cfg := Config{
		Store: store, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Accounts: accounts, Refresh: refresh,
		Memberships: MembershipsFunc(func(_ context.Context, a *identity.Account) ([]string, error) {
			if a.Role() == domain.RoleProvider {
				return []string{"c1"}, nil
			}
			return nil, nil
		}),
		Tokens: testTokenConfig(clock.Now), Clock: clock.Now,
	}
	for _, f := range adjust {
		f(&cfg)
	}
	srv, err := NewServer(cfg)
	require.NoError(t, err)
	return &fixture{t: t, clock: clock, store: store, accounts: accounts, refresh: refresh, server: srv, logs: logs, cfg: cfg}
}

// do sends a request through the whole server.
func (f *fixture) do(method, path string, body any, header ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	return serve(f.t, f.server, method, path, body, header...)
}

func serve(t *testing.T, h http.Handler, method, path string, body any, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "192.0.2.1:5555"
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func (f *fixture) signIn(username, password string) TokenResponse {
	f.t.Helper()
	rec := f.do("POST", "/v1/auth/token", map[string]string{"username": username, "password": password})
	require.Equal(f.t, http.StatusOK, rec.Code, rec.Body.String())
	var tr TokenResponse
	require.NoError(f.t, json.Unmarshal(rec.Body.Bytes(), &tr))
	return tr
}

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) Problem {
	t.Helper()
	require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), rec.Body.String())
	var p Problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	require.Equal(t, rec.Code, p.Status)
	return p
}

// requireProblem asserts status and type slug and returns the problem.
func requireProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, slug string) Problem {
	t.Helper()
	require.Equal(t, status, rec.Code, rec.Body.String())
	p := decodeProblem(t, rec)
	require.Equal(t, ProblemTypeBase+slug, p.Type)
	return p
}
