package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (f *fixture) whoAmI(access string) (MeResponse, int) {
	f.t.Helper()
	rec := f.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+access)
	var me MeResponse
	if rec.Code == http.StatusOK {
		require.NoError(f.t, json.Unmarshal(rec.Body.Bytes(), &me))
	}
	return me, rec.Code
}

func TestEndSessionsRefusesOldTokensAtOnce(t *testing.T) {
	f := newFixture(t)
	alice := f.signIn("alice", alicePass)
	root := f.signIn("root", alicePass)
	me, code := f.whoAmI(alice.AccessToken)
	require.Equal(t, http.StatusOK, code)

	// Only a system admin may end someone's sessions.
	requireProblem(t, f.do("POST", "/v1/users/"+me.UserID+"/sessions/end", nil, "Authorization", "Bearer "+alice.AccessToken),
		http.StatusForbidden, SlugForbidden)

	f.clock.Advance(time.Minute)
	rec := f.do("POST", "/v1/users/"+me.UserID+"/sessions/end", nil, "Authorization", "Bearer "+root.AccessToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var ended SessionsEnded
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ended))
	assert.Equal(t, me.UserID, ended.UserID)
	assert.Equal(t, f.clock.Now().UTC(), ended.EndedAt)

	// The old access token is refused at once, although not expired.
	rec = f.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+alice.AccessToken)
	p := requireProblem(t, rec, http.StatusUnauthorized, SlugUnauthorized)
	assert.Equal(t, "session-ended", p.Code)
	// And the refresh token no longer works.
	_, rp, rcode := f.refreshWith(alice.RefreshToken)
	require.NotNil(t, rp)
	assert.Equal(t, http.StatusUnauthorized, rcode)
	// Others are untouched.
	_, code = f.whoAmI(root.AccessToken)
	assert.Equal(t, http.StatusOK, code)

	// Signing in again afterwards works.
	f.clock.Advance(time.Second)
	again := f.signIn("alice", alicePass)
	_, code = f.whoAmI(again.AccessToken)
	assert.Equal(t, http.StatusOK, code)
}

func TestSessionEndsAreDurable(t *testing.T) {
	clock := newTestClock()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "auth.db")
	s, err := OpenSQLiteRefreshTokens(ctx, path, clock.Now)
	require.NoError(t, err)
	at, err := s.SessionsEndedAt(ctx, "u1")
	require.NoError(t, err)
	assert.True(t, at.IsZero())
	end := clock.Now().UTC()
	require.NoError(t, s.EndSessions(ctx, "u1", end))
	require.NoError(t, s.EndSessions(ctx, "u1", end.Add(-time.Hour)), "an earlier instant does not move it back")
	require.NoError(t, s.Close())

	s, err = OpenSQLiteRefreshTokens(ctx, path, clock.Now)
	require.NoError(t, err)
	defer s.Close()
	at, err = s.SessionsEndedAt(ctx, "u1")
	require.NoError(t, err)
	assert.True(t, end.Equal(at), "%s != %s", end, at)
}

func TestSessionGateCachesAndSeesOwnEnds(t *testing.T) {
	clock := newTestClock()
	ends := &countingEnds{MemoryRefreshTokens: NewMemoryRefreshTokens(clock.Now)}
	g := newSessionGate(ends, clock.Now)
	p := Principal{UserID: "u1", IssuedAt: clock.Now().Truncate(time.Second)}
	ctx := context.Background()
	for range 5 {
		require.NoError(t, g.check(ctx, p))
	}
	assert.Equal(t, 1, ends.reads, "one read, then the cache")
	clock.Advance(time.Minute)
	_, err := g.end(ctx, "u1")
	require.NoError(t, err)
	require.Error(t, g.check(ctx, p), "refused at once")
	assert.Equal(t, 1, ends.reads)
	later := Principal{UserID: "u1", IssuedAt: clock.Now().Add(time.Second).Truncate(time.Second)}
	require.NoError(t, g.check(ctx, later))
}

type countingEnds struct {
	*MemoryRefreshTokens
	reads int
}

func (c *countingEnds) SessionsEndedAt(ctx context.Context, userID string) (time.Time, error) {
	c.reads++
	return c.MemoryRefreshTokens.SessionsEndedAt(ctx, userID)
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/healthz", "/v1/auth/me", "/v1/nothing-here"} {
		rec := f.do("GET", path, nil)
		h := rec.Header()
		assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), path)
		assert.Equal(t, "no-store", h.Get("Cache-Control"), path)
		assert.Equal(t, "no-referrer", h.Get("Referrer-Policy"), path)
		assert.Equal(t, "DENY", h.Get("X-Frame-Options"), path)
		assert.Equal(t, "default-src 'none'; frame-ancestors 'none'", h.Get("Content-Security-Policy"), path)
		assert.Empty(t, h.Get("Strict-Transport-Security"), "plain HTTP, no proxy: %s", path)
	}

	// Over TLS: HSTS.
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.TLS = &tls.ConnectionState{Version: tls.VersionTLS13}
	rec := httptest.NewRecorder()
	f.server.ServeHTTP(rec, req)
	assert.Equal(t, HSTSValue, rec.Header().Get("Strict-Transport-Security"))

	// Behind a TLS proxy: HSTS on plain HTTP too.
	proxied := newFixture(t, func(c *Config) { c.BehindTLSProxy = true })
	rec = proxied.do("GET", "/v1/auth/me", nil)
	assert.Equal(t, HSTSValue, rec.Header().Get("Strict-Transport-Security"))
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
}
