package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

func (f *fixture) bearer(username string) string {
	f.t.Helper()
	return "Bearer " + f.signIn(username, alicePass).AccessToken
}

func TestCreateAccount(t *testing.T) {
	f := newFixture(t)
	root := f.bearer("root")
	body := map[string]string{"username": "Bob", "password": "bob's long password", "role": "client", "clientId": "k1"}

	rec := f.do("POST", "/v1/accounts", body, "Authorization", root, HeaderIdempotencyKey, "create-bob")
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var res CommandResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &res))
	assert.NotEmpty(t, res.IDs["userId"])
	assert.EqualValues(t, 1, res.Version)
	assert.Equal(t, `"1"`, rec.Header().Get("ETag"))
	assert.Equal(t, "3", rec.Header().Get(HeaderPosition), "after alice and root")
	assert.NotContains(t, rec.Body.String(), "argon2")

	// The same key again is a replay, not a second account or a conflict.
	again := f.do("POST", "/v1/accounts", body, "Authorization", root, HeaderIdempotencyKey, "create-bob")
	require.Equal(t, http.StatusOK, again.Code, again.Body.String())
	assert.Equal(t, "true", again.Header().Get(HeaderReplayed))

	// Without the key, the taken username is a conflict.
	p := requireProblem(t, f.do("POST", "/v1/accounts", body, "Authorization", root), http.StatusConflict, SlugConflict)
	assert.Equal(t, "username-taken", p.Code)

	// Bob signs in and acts as his client id.
	tr := f.signIn("bob", "bob's long password")
	me := f.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+tr.AccessToken)
	assert.Contains(t, me.Body.String(), `"actorId":"k1"`)
}

func TestCreateAccountValidation(t *testing.T) {
	f := newFixture(t)
	root := f.bearer("root")
	p := requireProblem(t, f.do("POST", "/v1/accounts", map[string]string{"username": "b", "password": "short", "role": "client"},
		"Authorization", root), StatusValidation, SlugValidation)
	fields := []string{}
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	assert.ElementsMatch(t, []string{"username", "password"}, fields)

	p = requireProblem(t, f.do("POST", "/v1/accounts", map[string]string{"username": "bobby", "password": "bob's long password", "role": "client"},
		"Authorization", root), StatusValidation, SlugValidation)
	assert.Equal(t, "clientId", p.Errors[0].Field)

	requireProblem(t, f.do("POST", "/v1/accounts", map[string]string{"username": "bobby"}, "Authorization", root, HeaderIdempotencyKey, "bad\tkey"),
		http.StatusBadRequest, SlugInvalidRequest)
}

func TestOnlySystemAdminsCreateAccounts(t *testing.T) {
	f := newFixture(t)
	rec := f.do("POST", "/v1/accounts", map[string]string{"username": "mallory", "password": "mallory's password", "role": "system_admin"},
		"Authorization", f.bearer("alice"))
	requireProblem(t, rec, http.StatusForbidden, SlugForbidden)
}

func TestDisableAccountHonoursIfMatchAndRevokesRefreshTokens(t *testing.T) {
	f := newFixture(t)
	root := f.bearer("root")
	alice := f.signIn("alice", alicePass)

	rec := f.do("POST", "/v1/accounts/alice/disable", map[string]string{"reason": "left"}, "Authorization", root, "If-Match", `"2"`)
	p := requireProblem(t, rec, http.StatusPreconditionFailed, SlugPrecondition)
	assert.Contains(t, p.Detail, "version 1")
	_, pr, _ := f.refreshWith(alice.RefreshToken)
	require.Nil(t, pr, "nothing happened")
	alice = f.signIn("alice", alicePass) // the refresh above rotated; take a fresh sign-in

	rec = f.do("POST", "/v1/accounts/alice/disable", map[string]string{"reason": "left"}, "Authorization", root, "If-Match", `"1"`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, `"2"`, rec.Header().Get("ETag"))
	_, pr, _ = f.refreshWith(alice.RefreshToken)
	assert.NotNil(t, pr, "refresh tokens are revoked at once")

	requireProblem(t, f.do("POST", "/v1/accounts/nobody/disable", map[string]string{}, "Authorization", root), http.StatusNotFound, SlugNotFound)
	requireProblem(t, f.do("POST", "/v1/accounts/alice/disable", map[string]string{}, "Authorization", root), http.StatusConflict, SlugConflict)
}

func TestChangeOwnPasswordSignsOutEverywhere(t *testing.T) {
	f := newFixture(t)
	session := f.signIn("alice", alicePass)
	auth := "Bearer " + session.AccessToken

	p := requireProblem(t, f.do("POST", "/v1/auth/password",
		map[string]string{"username": "alice", "currentPassword": "not the password", "newPassword": "a brand new password"},
		"Authorization", auth), http.StatusUnauthorized, SlugUnauthorized)
	assert.Equal(t, "invalid-credentials", p.Code)

	rec := f.do("POST", "/v1/auth/password",
		map[string]string{"username": "alice", "currentPassword": alicePass, "newPassword": "a brand new password"}, "Authorization", auth)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	_, pr, _ := f.refreshWith(session.RefreshToken)
	assert.NotNil(t, pr, "the old sign-in is revoked")
	f.signIn("alice", "a brand new password")

	// Knowing root's password does not let alice change it.
	requireProblem(t, f.do("POST", "/v1/auth/password",
		map[string]string{"username": "root", "currentPassword": alicePass, "newPassword": "a brand new password"}, "Authorization", auth),
		http.StatusUnauthorized, SlugUnauthorized)
}

func TestAdminResetsAPassword(t *testing.T) {
	f := newFixture(t)
	rec := f.do("POST", "/v1/auth/password", map[string]string{"username": "alice", "newPassword": "reset by the admin"},
		"Authorization", f.bearer("root"))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	f.signIn("alice", "reset by the admin")
}

func TestPasswordChangesCountAsSignInAttempts(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.LoginLimits = LoginLimits{PerUsername: rate.Every(time.Minute), UserBurst: 3, PerAddress: rate.Every(time.Second), AddressBurst: 100, MaxKeys: 100}
	})
	auth := f.bearer("alice") // one attempt
	for range 2 {
		requireProblem(t, f.do("POST", "/v1/auth/password",
			map[string]string{"username": "alice", "currentPassword": "guess guess guess", "newPassword": "a brand new password"},
			"Authorization", auth), http.StatusUnauthorized, SlugUnauthorized)
	}
	rec := f.do("POST", "/v1/auth/password",
		map[string]string{"username": "alice", "currentPassword": alicePass, "newPassword": "a brand new password"}, "Authorization", auth)
	requireProblem(t, rec, http.StatusTooManyRequests, SlugRateLimited)
}
