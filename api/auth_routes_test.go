package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
)

func (f *fixture) refreshWith(token string) (TokenResponse, *Problem, int) {
	f.t.Helper()
	rec := f.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": token})
	if rec.Code != http.StatusOK {
		p := decodeProblem(f.t, rec)
		return TokenResponse{}, &p, rec.Code
	}
	var tr TokenResponse
	require.NoError(f.t, json.Unmarshal(rec.Body.Bytes(), &tr))
	return tr, nil, rec.Code
}

func TestSignIn(t *testing.T) {
	f := newFixture(t)
	rec := f.do("POST", "/v1/auth/token", map[string]string{"username": "Alice", "password": alicePass})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	var tr TokenResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &tr))
	assert.Equal(t, "Bearer", tr.TokenType)
	assert.EqualValues(t, 900, tr.ExpiresIn)
	assert.NotEmpty(t, tr.RefreshToken)
	assert.GreaterOrEqual(t, len(tr.RefreshToken), 43, "256 bits")
	assert.NotContains(t, rec.Body.String(), "argon2", "no hash ever leaves")
	assert.NotContains(t, f.logs.String(), alicePass)
	assert.NotContains(t, f.logs.String(), "argon2")
	assert.NotContains(t, f.logs.String(), tr.RefreshToken)
}

func TestSignInFailuresAreAllTheSame(t *testing.T) {
	f := newFixture(t)
	var details []string
	for _, creds := range []map[string]string{
		{"username": "alice", "password": "wrong password here"},
		{"username": "nobody", "password": alicePass},
		{"username": "x", "password": alicePass},
	} {
		p := requireProblem(t, f.do("POST", "/v1/auth/token", creds), http.StatusUnauthorized, SlugUnauthorized)
		assert.Equal(t, "invalid-credentials", p.Code)
		details = append(details, p.Detail)
	}
	assert.Equal(t, details[0], details[1])
	assert.Equal(t, details[0], details[2])
}

func TestSignInValidatesTheBody(t *testing.T) {
	f := newFixture(t)
	p := requireProblem(t, f.do("POST", "/v1/auth/token", map[string]string{"username": "", "password": ""}), StatusValidation, SlugValidation)
	assert.Len(t, p.Errors, 2)
	p = requireProblem(t, f.do("POST", "/v1/auth/token", `{"username":"alice","password":"x","remember":true}`), http.StatusBadRequest, SlugInvalidJSON)
	assert.Equal(t, "remember", p.Errors[0].Field)
	requireProblem(t, f.do("POST", "/v1/auth/token", ""), http.StatusBadRequest, SlugInvalidJSON)
	requireProblem(t, f.do("GET", "/v1/auth/token", nil), http.StatusMethodNotAllowed, SlugMethodNotAllowed)
}

func TestRefreshRotatesAndRefusesReuse(t *testing.T) {
	f := newFixture(t)
	first := f.signIn("alice", alicePass)

	second, p, code := f.refreshWith(first.RefreshToken)
	require.Nil(t, p)
	require.Equal(t, http.StatusOK, code)
	assert.NotEqual(t, first.RefreshToken, second.RefreshToken, "rotated")
	assert.NotEmpty(t, second.AccessToken)
	me := f.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+second.AccessToken)
	assert.Equal(t, http.StatusOK, me.Code)

	// The first token again: refused, and the whole sign-in is revoked.
	_, p, code = f.refreshWith(first.RefreshToken)
	require.NotNil(t, p)
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "invalid-refresh-token", p.Code)
	_, p, _ = f.refreshWith(second.RefreshToken)
	require.NotNil(t, p, "the successor of a reused token is revoked too")

	// Another sign-in is unaffected.
	other := f.signIn("alice", alicePass)
	_, p, _ = f.refreshWith(other.RefreshToken)
	assert.Nil(t, p)
}

func TestRefreshTokensExpire(t *testing.T) {
	f := newFixture(t)
	tr := f.signIn("alice", alicePass)
	f.clock.Advance(DefaultRefreshTTL)
	_, p, code := f.refreshWith(tr.RefreshToken)
	require.NotNil(t, p)
	assert.Equal(t, http.StatusUnauthorized, code)
}

func TestRevokeSignsOut(t *testing.T) {
	f := newFixture(t)
	tr := f.signIn("alice", alicePass)
	rec := f.do("POST", "/v1/auth/revoke", map[string]string{"refresh_token": tr.RefreshToken})
	assert.Equal(t, http.StatusNoContent, rec.Code)
	_, p, _ := f.refreshWith(tr.RefreshToken)
	assert.NotNil(t, p)

	rec = f.do("POST", "/v1/auth/revoke", map[string]string{"refresh_token": "never-issued"})
	assert.Equal(t, http.StatusNoContent, rec.Code, "unknown tokens are not revealed")
}

func TestADisabledAccountCannotRefresh(t *testing.T) {
	f := newFixture(t)
	tr := f.signIn("alice", alicePass)
	_, err := f.accounts.DisableAccount(context.Background(), commands.Meta{Actor: domain.Actor{ID: "boot", Role: domain.RoleSystemAdmin}},
		commands.DisableAccount{Username: "alice"})
	require.NoError(t, err)
	_, p, code := f.refreshWith(tr.RefreshToken)
	require.NotNil(t, p)
	assert.Equal(t, http.StatusUnauthorized, code)
	requireProblem(t, f.do("POST", "/v1/auth/token", map[string]string{"username": "alice", "password": alicePass}),
		http.StatusUnauthorized, SlugUnauthorized)
}

func TestSignInIsRateLimitedPerUsername(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.LoginLimits = LoginLimits{PerUsername: rate.Every(time.Minute), UserBurst: 3, PerAddress: rate.Every(time.Second), AddressBurst: 100, MaxKeys: 100}
	})
	for range 3 {
		requireProblem(t, f.do("POST", "/v1/auth/token", map[string]string{"username": "alice", "password": "wrong password here"}),
			http.StatusUnauthorized, SlugUnauthorized)
	}
	rec := f.do("POST", "/v1/auth/token", map[string]string{"username": "ALICE", "password": alicePass})
	p := requireProblem(t, rec, http.StatusTooManyRequests, SlugRateLimited)
	assert.NotEmpty(t, p.Detail)
	secs, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err)
	assert.InDelta(t, 60, secs, 1)

	// Other usernames are not affected; alice is again after the refill.
	f.signIn("root", alicePass)
	f.clock.Advance(time.Minute)
	f.signIn("alice", alicePass)
}

func TestSignInIsRateLimitedPerAddress(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.LoginLimits = LoginLimits{PerUsername: rate.Every(time.Second), UserBurst: 100, PerAddress: rate.Every(10 * time.Second), AddressBurst: 4, MaxKeys: 100}
	})
	for i := range 4 {
		requireProblem(t, f.do("POST", "/v1/auth/token", map[string]string{"username": "user" + strconv.Itoa(i), "password": "whatever it is"}),
			http.StatusUnauthorized, SlugUnauthorized)
	}
	rec := f.do("POST", "/v1/auth/token", map[string]string{"username": "alice", "password": alicePass})
	requireProblem(t, rec, http.StatusTooManyRequests, SlugRateLimited)
	assert.Equal(t, "10", rec.Header().Get("Retry-After"))
}

func TestKeyedLimiterStaysBounded(t *testing.T) {
	k := newKeyedLimiter(rate.Every(time.Second), 1, 10)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		ok, _ := k.take("key"+strconv.Itoa(i), now)
		assert.True(t, ok)
		assert.LessOrEqual(t, len(k.buckets), 10)
	}
	ok, wait := k.take("key99", now)
	assert.False(t, ok)
	assert.Equal(t, time.Second, wait)
	// Idle buckets are dropped first: a refilled key behaves like a new one.
	later := now.Add(time.Hour)
	ok, _ = k.take("fresh", later)
	assert.True(t, ok)
	assert.Len(t, k.buckets, 1)
}

func TestAccessTokenCarriesOnlyTheDocumentedClaims(t *testing.T) {
	f := newFixture(t)
	tr := f.signIn("alice", alicePass)
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tr.AccessToken, ".")[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	keys := make([]string, 0, len(claims))
	for k := range claims {
		keys = append(keys, k)
	}
	assert.ElementsMatch(t, []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "actor", "role", "clinics"}, keys)
}
