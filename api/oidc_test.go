package api

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
)

const (
	idpIssuer   = "https://idp.clinic.test/realms/north"
	idpAudience = "careflow-north"
)

// testIdP is an identity provider's key set endpoint with fresh keys.
type testIdP struct {
	t       *testing.T
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
	srv     *httptest.Server
	fetches atomic.Int32

	mu   sync.Mutex
	keys []map[string]string // the published JWKS
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	idp := &testIdP{t: t, rsa: rk, ec: ek}
	idp.publish("rsa-1", &rk.PublicKey)
	idp.publish("ec-1", &ek.PublicKey)
	idp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idp.fetches.Add(1)
		idp.mu.Lock()
		body, err := json.Marshal(map[string]any{"keys": idp.keys})
		idp.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(idp.srv.Close)
	return idp
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// publish adds a public key to the key set under kid.
func (idp *testIdP) publish(kid string, pub crypto.PublicKey) {
	jwk := map[string]string{"kid": kid, "use": "sig"}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		jwk["kty"], jwk["n"], jwk["e"] = "RSA", b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		point, err := k.Bytes() // 0x04 || X || Y
		require.NoError(idp.t, err)
		jwk["kty"], jwk["crv"], jwk["x"], jwk["y"] = "EC", "P-256", b64(point[1:33]), b64(point[33:])
	default:
		idp.t.Fatalf("unexpected key %T", pub)
	}
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.keys = append(idp.keys, jwk)
}

func (idp *testIdP) config() OIDCConfig {
	return OIDCConfig{Issuer: idpIssuer, JWKSURL: idp.srv.URL + "/protocol/openid-connect/certs", Audience: idpAudience}
}

// claims are a valid external token's claims for username at now.
func idpClaims(now time.Time, username string) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": idpIssuer, "aud": []string{idpAudience, "account"}, "sub": "f3a1c2d4-external-subject",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "ext-1",
		"preferred_username": username,
	}
}

func signKid(t *testing.T, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	raw, err := tok.SignedString(key)
	require.NoError(t, err)
	return raw
}

func newOIDCFixture(t *testing.T) (*fixture, *testIdP) {
	t.Helper()
	idp := newTestIdP(t)
	f := newFixture(t, func(c *Config) { c.OIDC = idp.config() })
	return f, idp
}

func TestExternalTokensActAsTheirCareflowAccount(t *testing.T) {
	f, idp := newOIDCFixture(t)
	own, code := f.whoAmI(f.signIn("alice", alicePass).AccessToken)
	require.Equal(t, http.StatusOK, code, "careflow's own tokens still work with OIDC on")
	now := f.clock.Now()

	for name, raw := range map[string]string{
		"RS256": signKid(t, jwt.SigningMethodRS256, "rsa-1", idp.rsa, idpClaims(now, "alice")),
		"PS256": signKid(t, jwt.SigningMethodPS256, "rsa-1", idp.rsa, idpClaims(now, "alice")),
		"ES256": signKid(t, jwt.SigningMethodES256, "ec-1", idp.ec, idpClaims(now, "alice")),
		// The claim is normalized as at sign-in.
		"username case": signKid(t, jwt.SigningMethodRS256, "rsa-1", idp.rsa, idpClaims(now, " Alice")),
	} {
		me, code := f.whoAmI(raw)
		require.Equal(t, http.StatusOK, code, name)
		assert.Equal(t, own, me, "%s: role, actor and clinics come from careflow", name)
	}
	assert.Equal(t, MeResponse{UserID: own.UserID, ActorID: "p1", Role: domain.RoleProvider, Clinics: []string{"c1"}}, own)

	// Roles claimed by the external token are ignored.
	claims := idpClaims(now, "alice")
	claims["role"], claims["clinics"] = "system_admin", []string{"c9"}
	me, code := f.whoAmI(signKid(t, jwt.SigningMethodRS256, "rsa-1", idp.rsa, claims))
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, own, me)
	assert.Equal(t, int32(1), idp.fetches.Load(), "the key set is fetched once and cached")
}

func TestExternalTokensAreRefusedUnlessEverythingChecksOut(t *testing.T) {
	f, idp := newOIDCFixture(t)
	now := f.clock.Now()
	rogue, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	pubDER, err := x509.MarshalPKIXPublicKey(&idp.rsa.PublicKey)
	require.NoError(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := idpClaims(now, "alice")
		change(c)
		return c
	}
	rs := func(c jwt.MapClaims) string { return signKid(t, jwt.SigningMethodRS256, "rsa-1", idp.rsa, c) }
	// Just within the leeway (30s) is still fine: the cases below are not
	// refused for a near miss.
	_, code := f.whoAmI(rs(with(func(c jwt.MapClaims) { c["exp"] = now.Add(-20 * time.Second).Unix() })))
	require.Equal(t, http.StatusOK, code)

	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, idpClaims(now, "alice")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	_, err = f.accounts.RegisterAccount(context.Background(), commands.Meta{Actor: domain.Actor{ID: "boot", Role: domain.RoleSystemAdmin}},
		commands.RegisterAccount{Username: "bob", Password: alicePass, Role: domain.RoleProvider, ProviderID: "p2"})
	require.NoError(t, err)
	_, err = f.accounts.DisableAccount(context.Background(), commands.Meta{Actor: domain.Actor{ID: "boot", Role: domain.RoleSystemAdmin}},
		commands.DisableAccount{Username: "bob", Reason: "left the clinic"})
	require.NoError(t, err)

	cases := map[string]string{
		"wrong issuer":   rs(with(func(c jwt.MapClaims) { c["iss"] = "https://idp.elsewhere.test" })),
		"wrong audience": rs(with(func(c jwt.MapClaims) { c["aud"] = "another-app" })),
		"expired":        rs(with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })),
		"no exp":         rs(with(func(c jwt.MapClaims) { delete(c, "exp") })),
		"not yet valid":  rs(with(func(c jwt.MapClaims) { c["nbf"] = now.Add(2 * time.Minute).Unix() })),
		"issued later":   rs(with(func(c jwt.MapClaims) { c["iat"] = now.Add(2 * time.Minute).Unix() })),
		"no iat":         rs(with(func(c jwt.MapClaims) { delete(c, "iat") })),
		"unknown kid":    signKid(t, jwt.SigningMethodRS256, "rogue-1", rogue, idpClaims(now, "alice")),
		"wrong key":      signKid(t, jwt.SigningMethodRS256, "rsa-1", rogue, idpClaims(now, "alice")),
		"alg none":       none,
		// The classic confusion: HS256 "signed" with the issuer's public key.
		"HS256 with the public key PEM": signKid(t, jwt.SigningMethodHS256, "rsa-1", pubPEM, idpClaims(now, "alice")),
		"HS256 with the modulus":        signKid(t, jwt.SigningMethodHS256, "rsa-1", idp.rsa.N.Bytes(), idpClaims(now, "alice")),
		"unknown account":               rs(idpClaims(now, "mallory")),
		"disabled account":              rs(idpClaims(now, "bob")),
		"no username claim":             rs(with(func(c jwt.MapClaims) { delete(c, "preferred_username") })),
		"username not a string":         rs(with(func(c jwt.MapClaims) { c["preferred_username"] = []string{"alice"} })),
		"signed by careflow's secret":   signKid(t, jwt.SigningMethodHS256, "", testSecret, idpClaims(now, "alice")),
	}
	want := requireProblem(t, f.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+cases["wrong key"]),
		http.StatusUnauthorized, SlugUnauthorized)
	for name, raw := range cases {
		rec := f.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+raw)
		p := requireProblem(t, rec, http.StatusUnauthorized, SlugUnauthorized)
		assert.Equal(t, want.Detail, p.Detail, "%s: the body does not say which check failed", name)
		assert.Equal(t, want.Code, p.Code, name)
		assert.NotContains(t, rec.Body.String(), "mallory", name)
		assert.NotContains(t, rec.Body.String(), "bob", name)
	}
}

func TestEndedSessionsApplyToExternalTokens(t *testing.T) {
	f, idp := newOIDCFixture(t)
	before := signKid(t, jwt.SigningMethodES256, "ec-1", idp.ec, idpClaims(f.clock.Now(), "alice"))
	me, code := f.whoAmI(before)
	require.Equal(t, http.StatusOK, code)

	f.clock.Advance(time.Minute)
	root := f.signIn("root", alicePass)
	rec := f.do("POST", "/v1/users/"+me.UserID+"/sessions/end", nil, "Authorization", "Bearer "+root.AccessToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	p := requireProblem(t, f.do("GET", "/v1/auth/me", nil, "Authorization", "Bearer "+before), http.StatusUnauthorized, SlugUnauthorized)
	assert.Equal(t, "session-ended", p.Code)

	f.clock.Advance(2 * time.Second)
	_, code = f.whoAmI(signKid(t, jwt.SigningMethodES256, "ec-1", idp.ec, idpClaims(f.clock.Now(), "alice")))
	assert.Equal(t, http.StatusOK, code, "a token issued after the end works")
}

func TestExternalKeyRotationIsFetchedButNotOnEveryUnknownKid(t *testing.T) {
	f, idp := newOIDCFixture(t)
	_, code := f.whoAmI(signKid(t, jwt.SigningMethodRS256, "rsa-1", idp.rsa, idpClaims(f.clock.Now(), "alice")))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, int32(1), idp.fetches.Load())

	rotated, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	idp.publish("rsa-2", &rotated.PublicKey)
	fresh := func() string {
		return signKid(t, jwt.SigningMethodRS256, "rsa-2", rotated, idpClaims(f.clock.Now(), "alice"))
	}
	// Within the minimum refresh interval, unknown kids cost no request.
	for range 5 {
		_, code = f.whoAmI(fresh())
		assert.Equal(t, http.StatusUnauthorized, code)
	}
	assert.Equal(t, int32(1), idp.fetches.Load(), "unknown kids within the interval make no request")

	f.clock.Advance(defaultOIDCRefreshPeriod)
	// go-oidc clears its finished key-set request in a goroutine after
	// handing out the result, so a verification right after the refused
	// ones can still get their answer (a 401) once; the next one fetches.
	// Seen once in CI under -race.
	assert.Eventually(t, func() bool {
		_, code = f.whoAmI(fresh())
		return code == http.StatusOK
	}, 5*time.Second, 10*time.Millisecond, "after the interval the new key is fetched")
	assert.Equal(t, int32(2), idp.fetches.Load())
	_, code = f.whoAmI(signKid(t, jwt.SigningMethodRS256, "rsa-1", idp.rsa, idpClaims(f.clock.Now(), "alice")))
	assert.Equal(t, http.StatusOK, code, "the old key, still published, keeps working")
}

func TestOIDCConfigValidation(t *testing.T) {
	f, idp := newOIDCFixture(t) // the valid configuration builds
	for name, tc := range map[string]struct {
		change func(*OIDCConfig)
		want   string
	}{
		"issuer without key set":    {func(c *OIDCConfig) { c.JWKSURL = "" }, "go together"},
		"key set without issuer":    {func(c *OIDCConfig) { c.Issuer = "" }, "go together"},
		"no audience":               {func(c *OIDCConfig) { c.Audience = "" }, "go together"},
		"plain http off loopback":   {func(c *OIDCConfig) { c.JWKSURL = "http://idp.clinic.test/certs" }, "loopback"},
		"not a URL":                 {func(c *OIDCConfig) { c.JWKSURL = "idp.clinic.test/certs" }, "not an absolute URL"},
		"other scheme":              {func(c *OIDCConfig) { c.JWKSURL = "ftp://idp.clinic.test/certs" }, "https"},
		"credentials in key set":    {func(c *OIDCConfig) { c.JWKSURL = "https://u:p@idp.clinic.test/certs" }, "credentials"},
		"careflow's own issuer":     {func(c *OIDCConfig) { c.Issuer = testIssuer }, "differ"},
		"leeway beyond five mins":   {func(c *OIDCConfig) { c.Leeway = time.Hour }, "Leeway"},
		"negative refresh interval": {func(c *OIDCConfig) { c.MinRefreshInterval = -time.Second }, "MinRefreshInterval"},
	} {
		cfg := f.cfg
		cfg.OIDC = idp.config()
		tc.change(&cfg.OIDC)
		_, err := NewServer(cfg)
		require.Error(t, err, name)
		assert.ErrorContains(t, err, tc.want, name)
	}
	assert.NoError(t, CheckJWKSURL("https://idp.clinic.test/realms/north/protocol/openid-connect/certs"))
	assert.NoError(t, CheckJWKSURL("http://[::1]:8081/certs"))
	assert.False(t, OIDCConfig{UsernameClaim: "email"}.Enabled(), "a claim name alone does not turn it on")
	assert.True(t, strings.HasPrefix(idp.config().JWKSURL, "http://127.0.0.1:"))
}

func TestAnUnreachableKeySetRefusesExternalTokensOnly(t *testing.T) {
	f, idp := newOIDCFixture(t)
	idp.srv.Close()
	_, code := f.whoAmI(signKid(t, jwt.SigningMethodRS256, "rsa-1", idp.rsa, idpClaims(f.clock.Now(), "alice")))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, f.logs.String(), "oidc: fetching the key set failed", "the operator learns why")
	_, code = f.whoAmI(f.signIn("alice", alicePass).AccessToken)
	assert.Equal(t, http.StatusOK, code, "careflow's own tokens do not depend on the issuer")
}
