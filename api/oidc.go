package api

// External access tokens (ADR 0012): a clinic may sign its staff in with
// its own OpenID Connect identity provider. A bearer token whose iss is
// that issuer is verified against the issuer's JWKS (go-oidc's
// RemoteKeySet: cached keys, refetched when a kid is unknown) and mapped to
// the careflow account its username claim names. The external identity
// never brings roles or clinics: those, and whether the account is enabled,
// come from careflow on every request. Every other token goes to Tokens.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
)

// OIDCConfig configures verification of access tokens from an external
// OpenID Connect issuer. The zero value is off.
type OIDCConfig struct {
	// Issuer is the iss accepted, compared exactly. It must differ from
	// careflow's own token issuer: iss decides which verifier a token goes to.
	Issuer string
	// JWKSURL is the issuer's key set (its jwks_uri): https, or http to a
	// loopback host (tests). No discovery is made.
	JWKSURL string
	// Audience must be one of the token's aud values (the client id the
	// issuer gives careflow).
	Audience string
	// UsernameClaim names the careflow account (default
	// preferred_username). Choose a claim the identity provider controls,
	// not one its users may edit.
	UsernameClaim string
	// Leeway tolerates clock skew with the issuer on exp, nbf and iat
	// (default 30s, at most 5 min).
	Leeway time.Duration
	// FetchTimeout bounds one key set request (default 10s).
	FetchTimeout time.Duration
	// MinRefreshInterval is the shortest time between two key set requests
	// (default 10s): a token with an unknown kid makes go-oidc refetch the
	// keys, and without a bound every such token would cost a request to
	// the issuer.
	MinRefreshInterval time.Duration
	// Clock defaults to Config.Clock.
	Clock func() time.Time
}

// DefaultUsernameClaim is the claim that names the careflow account.
const DefaultUsernameClaim = "preferred_username"

const (
	defaultOIDCLeeway        = 30 * time.Second
	maxOIDCLeeway            = 5 * time.Minute
	defaultOIDCFetchTimeout  = 10 * time.Second
	defaultOIDCRefreshPeriod = 10 * time.Second
	// maxJWKSBytes caps a key set response: a handful of keys is a few KiB.
	maxJWKSBytes = 1 << 20
)

// oidcAlgorithms are the only signature algorithms accepted: asymmetric,
// so never "none" nor HS* (an HS256 token "signed" with the issuer's
// public key must not verify).
var oidcAlgorithms = []string{oidc.RS256, oidc.ES256, oidc.PS256}

// Enabled reports whether any of the issuer settings is set.
func (c OIDCConfig) Enabled() bool { return c.Issuer != "" || c.JWKSURL != "" || c.Audience != "" }

func (c *OIDCConfig) setDefaults() {
	if c.UsernameClaim == "" {
		c.UsernameClaim = DefaultUsernameClaim
	}
	if c.Leeway == 0 {
		c.Leeway = defaultOIDCLeeway
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = defaultOIDCFetchTimeout
	}
	if c.MinRefreshInterval == 0 {
		c.MinRefreshInterval = defaultOIDCRefreshPeriod
	}
}

// Validate reports everything wrong with an enabled configuration (after
// defaults), at once.
func (c OIDCConfig) Validate() error {
	var errs []error
	if c.Issuer == "" || c.JWKSURL == "" || c.Audience == "" {
		errs = append(errs, errors.New("oidc: Issuer, JWKSURL and Audience go together"))
	}
	if c.JWKSURL != "" {
		if err := CheckJWKSURL(c.JWKSURL); err != nil {
			errs = append(errs, fmt.Errorf("oidc: JWKSURL: %w", err))
		}
	}
	if c.UsernameClaim == "" {
		errs = append(errs, errors.New("oidc: UsernameClaim must not be empty"))
	}
	if c.Leeway < 0 || c.Leeway > maxOIDCLeeway {
		errs = append(errs, fmt.Errorf("oidc: Leeway %s must be between 0 and %s", c.Leeway, maxOIDCLeeway))
	}
	if c.FetchTimeout <= 0 {
		errs = append(errs, fmt.Errorf("oidc: FetchTimeout %s must be positive", c.FetchTimeout))
	}
	if c.MinRefreshInterval < 0 {
		errs = append(errs, fmt.Errorf("oidc: MinRefreshInterval %s must not be negative", c.MinRefreshInterval))
	}
	return errors.Join(errs...)
}

// CheckJWKSURL accepts https://host/… and, for tests, http:// to a
// loopback host: keys fetched in clear could be swapped on the way.
func CheckJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL without credentials or fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("%q: http is only allowed to a loopback host; use https", raw)
	default:
		return fmt.Errorf("%q: the scheme must be https", raw)
	}
}

// externalTokens verifies access tokens of the external issuer and maps
// them to careflow principals.
type externalTokens struct {
	issuer        string
	usernameClaim string
	leeway        time.Duration
	clock         func() time.Time
	verifier      *oidc.IDTokenVerifier
	accounts      AccountService
	members       Memberships
	peek          *jwt.Parser
}

// newExternalTokens builds the verifier of a validated, enabled cfg. No
// request is made until the first external token arrives.
func newExternalTokens(cfg OIDCConfig, accounts AccountService, members Memberships, log *slog.Logger) *externalTokens {
	client := &http.Client{
		Timeout: cfg.FetchTimeout,
		Transport: &jwksTransport{next: http.DefaultTransport, clock: cfg.Clock, every: cfg.MinRefreshInterval,
			log: log.With(slog.String("jwks_url", cfg.JWKSURL))},
		// A jwks_uri is canonical: a redirect could lead off https.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	keys := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), client), cfg.JWKSURL)
	leeway, clock := cfg.Leeway, cfg.Clock
	verifier := oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: oidcAlgorithms,
		// go-oidc checks exp against Now with no leeway: shifting Now back
		// gives exp the leeway. Its own nbf check (5 min leeway, from this
		// shifted Now) is looser than ours, which follows in Verify.
		Now: func() time.Time { return clock().Add(-leeway) },
	})
	return &externalTokens{
		issuer: cfg.Issuer, usernameClaim: cfg.UsernameClaim, leeway: leeway, clock: clock,
		verifier: verifier, accounts: accounts, members: members, peek: jwt.NewParser(),
	}
}

// issuedBy reports whether raw claims to come from the external issuer.
// The claim is not trusted: it only picks the verifier.
func (x *externalTokens) issuedBy(raw string) bool {
	var claims jwt.RegisteredClaims
	if _, _, err := x.peek.ParseUnverified(raw, &claims); err != nil {
		return false
	}
	return claims.Issuer == x.issuer
}

// Verify checks an external token — signature by a key of the issuer's
// JWKS (kid lookup) with RS256, ES256 or PS256 only, iss and aud exact,
// exp, nbf and iat within the leeway — and returns the principal of the
// enabled careflow account its username claim names. Every failure a
// caller could cause is the same 401 as for careflow's own tokens.
func (x *externalTokens) Verify(ctx context.Context, raw string) (Principal, error) {
	tok, err := x.verifier.Verify(ctx, raw)
	if err != nil {
		return Principal{}, invalidToken(err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, invalidToken(err)
	}
	now := x.clock()
	if tok.IssuedAt.IsZero() || tok.IssuedAt.After(now.Add(x.leeway)) {
		return Principal{}, invalidToken(errors.New("iat missing or in the future"))
	}
	if nbf, ok := claims["nbf"]; ok {
		sec, isNumber := nbf.(float64)
		if !isNumber || time.Unix(int64(sec), 0).After(now.Add(x.leeway)) {
			return Principal{}, invalidToken(errors.New("nbf malformed or in the future"))
		}
	}
	name, _ := claims[x.usernameClaim].(string)
	username, err := identity.NormalizeUsername(name)
	if err != nil {
		return Principal{}, invalidToken(fmt.Errorf("claim %s names no valid username", x.usernameClaim))
	}
	acc, err := x.accounts.Account(ctx, username)
	if domain.KindOf(err) == domain.KindNotFound {
		return Principal{}, invalidToken(fmt.Errorf("no careflow account %q", username))
	}
	if err != nil {
		return Principal{}, err
	}
	if !acc.Active() {
		return Principal{}, invalidToken(fmt.Errorf("careflow account %q is disabled", username))
	}
	var clinics []string
	if x.members != nil {
		if clinics, err = x.members.ClinicsOf(ctx, acc); err != nil {
			return Principal{}, err
		}
	}
	jti, _ := claims["jti"].(string)
	return Principal{UserID: acc.UserID(), ActorID: acc.ActorID(), Role: acc.Role(), Clinics: clinics,
		TokenID: jti, IssuedAt: tok.IssuedAt.UTC()}, nil
}

// errJWKSTooSoon refuses a key set request made within the minimum
// interval of the previous one.
var errJWKSTooSoon = errors.New("oidc: key set was fetched moments ago; not fetching again yet")

// jwksTransport is the transport of the key set requests: at most one per
// interval, and a capped body. It logs failed requests: the 401 a token
// then gets does not say why, and the operator needs to know.
type jwksTransport struct {
	next  http.RoundTripper
	clock func() time.Time
	every time.Duration
	log   *slog.Logger

	mu   sync.Mutex
	last time.Time
}

func (t *jwksTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	now := t.clock()
	t.mu.Lock()
	if !t.last.IsZero() && now.Sub(t.last) < t.every && !now.Before(t.last) {
		t.mu.Unlock()
		return nil, errJWKSTooSoon
	}
	t.last = now
	t.mu.Unlock()
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.log.Warn("oidc: fetching the key set failed", "err", err)
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		t.log.Warn("oidc: fetching the key set failed", "status", resp.StatusCode)
	}
	resp.Body = &cappedBody{r: io.LimitReader(resp.Body, maxJWKSBytes+1), c: resp.Body}
	return resp, nil
}

// cappedBody fails a read past maxJWKSBytes rather than truncate quietly.
type cappedBody struct {
	r io.Reader
	c io.Closer
	n int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > maxJWKSBytes {
		return n, fmt.Errorf("oidc: key set larger than %d bytes", maxJWKSBytes)
	}
	return n, err
}

func (b *cappedBody) Close() error { return b.c.Close() }
