package api

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
)

func newTestTokens(t *testing.T, clock *testClock) *Tokens {
	t.Helper()
	tok, err := NewTokens(testTokenConfig(clock.Now))
	require.NoError(t, err)
	return tok
}

var alicePrincipal = Principal{UserID: "u1", ActorID: "p1", Role: domain.RoleProvider, Clinics: []string{"c1", "c2"}}

// validClaims are the claims a genuine token of alice carries at now.
func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "aud": []string{testAudience}, "sub": "u1", "actor": "p1", "role": "provider",
		"clinics": []string{"c1"}, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": "j1",
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	require.NoError(t, err)
	return s
}

func TestTokensRoundTrip(t *testing.T) {
	clock := newTestClock()
	tok := newTestTokens(t, clock)
	raw, err := tok.Issue(alicePrincipal)
	require.NoError(t, err)

	p, err := tok.Verify(raw)
	require.NoError(t, err)
	assert.Equal(t, alicePrincipal.UserID, p.UserID)
	assert.Equal(t, alicePrincipal.ActorID, p.ActorID)
	assert.Equal(t, alicePrincipal.Role, p.Role)
	assert.Equal(t, alicePrincipal.Clinics, p.Clinics)
	assert.NotEmpty(t, p.TokenID)

	// The claims are the documented ones, and the lifetime is 15 minutes.
	parts := strings.Split(raw, ".")
	require.Len(t, parts, 3)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	assert.Equal(t, testIssuer, claims["iss"])
	assert.Equal(t, "u1", claims["sub"])
	assert.EqualValues(t, 15*60, claims["exp"].(float64)-claims["iat"].(float64))
	for _, k := range []string{"aud", "jti", "role", "clinics", "actor"} {
		assert.Contains(t, claims, k)
	}

	other, err := tok.Issue(alicePrincipal)
	require.NoError(t, err)
	p2, err := tok.Verify(other)
	require.NoError(t, err)
	assert.NotEqual(t, p.TokenID, p2.TokenID, "every token has its own jti")
}

func TestVerifyRefusesBadTokens(t *testing.T) {
	clock := newTestClock()
	tok := newTestTokens(t, clock)
	now := clock.Now()
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := validClaims(now)
		change(c)
		return c
	}
	genuine, err := tok.Issue(alicePrincipal)
	require.NoError(t, err)
	tampered := strings.Split(genuine, ".")
	tampered[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + testIssuer + `","sub":"root","role":"system_admin"}`))

	cases := map[string]string{
		"alg none":        sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims(now)),
		"wrong algorithm": sign(t, jwt.SigningMethodHS512, testSecret, validClaims(now)),
		"EdDSA":           sign(t, jwt.SigningMethodEdDSA, edKey, validClaims(now)),
		"wrong secret":    sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!!"), validClaims(now)),
		"tampered":        strings.Join(tampered, "."),
		"wrong issuer":    sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" })),
		"wrong audience":  sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["aud"] = []string{"other-api"} })),
		"expired":         sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Second).Unix() })),
		"no expiry":       sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { delete(c, "exp") })),
		"issued later":    sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() })),
		"too long-lived":  sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["exp"] = now.Add(16 * time.Minute).Unix() })),
		"unknown role":    sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["role"] = "superuser" })),
		"no subject":      sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { delete(c, "sub") })),
		"no jti":          sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { delete(c, "jti") })),
		"no actor":        sign(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { delete(c, "actor") })),
		"garbage":         "not.a.token",
		"empty":           "",
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := tok.Verify(raw)
			require.Error(t, err)
			p := problemOf(err)
			assert.Equal(t, http.StatusUnauthorized, p.Status)
			assert.Equal(t, SlugUnauthorized, p.Slug)
			assert.Contains(t, p.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
		})
	}
	_, err = tok.Verify(sign(t, jwt.SigningMethodHS256, testSecret, validClaims(now)))
	assert.NoError(t, err, "the valid claims pass, so each case above fails for its own reason")
}

func TestTokensExpireWithTheClock(t *testing.T) {
	clock := newTestClock()
	tok := newTestTokens(t, clock)
	raw, err := tok.Issue(alicePrincipal)
	require.NoError(t, err)
	clock.Advance(15*time.Minute - time.Second)
	_, err = tok.Verify(raw)
	require.NoError(t, err)
	clock.Advance(time.Second)
	_, err = tok.Verify(raw)
	assert.Error(t, err)
}

func TestNewTokensRefusesWeakConfiguration(t *testing.T) {
	good := testTokenConfig(time.Now)
	for name, change := range map[string]func(*TokenConfig){
		"short secret": func(c *TokenConfig) { c.Secret = []byte("short") },
		"no issuer":    func(c *TokenConfig) { c.Issuer = "" },
		"no audience":  func(c *TokenConfig) { c.Audience = "" },
		"too long ttl": func(c *TokenConfig) { c.AccessTTL = time.Hour },
	} {
		c := good
		change(&c)
		_, err := NewTokens(c)
		assert.Error(t, err, name)
	}
	tok, err := NewTokens(good)
	require.NoError(t, err)
	assert.Equal(t, MaxAccessTTL, tok.TTL(), "default lifetime")
}

func TestProtectedRouteRefusesBadCredentialsWith401(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	for name, auth := range map[string]string{
		"missing":      "",
		"basic":        "Basic YWxpY2U6cGFzcw==",
		"empty bearer": "Bearer ",
		"alg none":     "Bearer " + sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims(now)),
		"wrong sig":    "Bearer " + sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!!"), validClaims(now)),
		"expired": "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, func() jwt.MapClaims {
			c := validClaims(now.Add(-time.Hour))
			return c
		}()),
	} {
		t.Run(name, func(t *testing.T) {
			var rec = f.do("GET", "/v1/auth/me", nil)
			if auth != "" {
				rec = f.do("GET", "/v1/auth/me", nil, "Authorization", auth)
			}
			p := requireProblem(t, rec, http.StatusUnauthorized, SlugUnauthorized)
			assert.True(t, strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer"), rec.Header().Get("WWW-Authenticate"))
			assert.NotEmpty(t, p.Detail)
		})
	}
}

func TestAuthenticatedRoutePutsThePrincipalInTheContext(t *testing.T) {
	f := newFixture(t)
	tr := f.signIn("alice", alicePass)
	rec := f.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+tr.AccessToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var me MeResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &me))
	assert.Equal(t, "p1", me.ActorID)
	assert.Equal(t, domain.RoleProvider, me.Role)
	assert.Equal(t, []string{"c1"}, me.Clinics)
	assert.NotEmpty(t, me.UserID)

	rec = f.do("GET", "/v1/auth/me", nil, "Authorization", "bearer "+tr.AccessToken)
	assert.Equal(t, http.StatusOK, rec.Code, "the scheme is case-insensitive")
}

// A token verified once is answered from memory while it is valid: the
// same principal (each caller its own copy), and still refused once it
// has expired.
func TestVerifiedTokensAreRemembered(t *testing.T) {
	clock := newTestClock()
	tok := newTestTokens(t, clock)
	raw, err := tok.Issue(alicePrincipal)
	require.NoError(t, err)
	first, err := tok.Verify(raw)
	require.NoError(t, err)
	first.Clinics[0] = "changed by a caller"
	again, err := tok.Verify(raw)
	require.NoError(t, err)
	assert.Equal(t, alicePrincipal.Clinics, again.Clinics)
	assert.Equal(t, first.TokenID, again.TokenID)
	assert.Len(t, tok.verified.tokens, 1)

	clock.Advance(15 * time.Minute)
	_, err = tok.Verify(raw)
	assert.Error(t, err, "expired, remembered or not")
	assert.Empty(t, tok.verified.tokens, "an expired token is forgotten")
}
