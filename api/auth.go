package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/careflow/careflow/domain"
)

// Principal is the verified caller of a request.
type Principal struct {
	// UserID is the account's user id (the token's sub).
	UserID string
	// ActorID is who the user acts as in commands: the provider or client
	// id for those roles, the user id for staff.
	ActorID string
	Role    domain.Role
	// Clinics are the clinic ids the user belonged to when the token was
	// issued. They scope tenant checks; commands re-read memberships.
	Clinics []string
	// TokenID is the access token's jti.
	TokenID string
	// IssuedAt is the access token's iat (whole seconds): a token issued
	// before its user's sessions were ended is refused (sessions.go).
	IssuedAt time.Time
}

// Actor is the domain actor of the principal.
func (p Principal) Actor() domain.Actor { return domain.Actor{ID: p.ActorID, Role: p.Role} }

// InClinic reports whether the principal belongs to the clinic.
func (p Principal) InClinic(clinicID string) bool { return slices.Contains(p.Clinics, clinicID) }

// PrincipalFrom returns the principal an authenticated route runs for.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxPrincipal).(Principal)
	return p, ok
}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxPrincipal, p)
}

// MaxAccessTTL is the longest an access token lives.
const MaxAccessTTL = 15 * time.Minute

// MinSecretBytes is the shortest HS256 secret accepted (RFC 7518 §3.2: a
// key at least as long as the hash output).
const MinSecretBytes = 32

// TokenConfig configures access tokens.
type TokenConfig struct {
	// Secret is the HS256 signing key, at least MinSecretBytes long.
	Secret   []byte
	Issuer   string
	Audience string
	// AccessTTL is the access token lifetime: default and maximum 15 min.
	AccessTTL time.Duration
	Clock     func() time.Time
}

// Tokens issues and verifies signed access tokens (JWT, HS256).
type Tokens struct {
	secret   []byte
	issuer   string
	audience string
	ttl      time.Duration
	clock    func() time.Time
	parser   *jwt.Parser
	verified verifiedTokens
}

// verifiedTokens remembers the tokens Verify accepted, with the times
// they are valid between: a client sends the same token with every
// request, and checking its signature and claims again each time was a
// few percent of a read's CPU. A token is the same string whenever it is
// the same token, so a hit is as good as a verification while its time
// holds.
type verifiedTokens struct {
	mu     sync.Mutex
	tokens map[string]verifiedToken
}

type verifiedToken struct {
	principal     Principal
	from, expires time.Time
}

// maxVerifiedTokens bounds the remembered tokens (about 1 KiB each).
const maxVerifiedTokens = 4096

func (v *verifiedTokens) get(raw string, now time.Time) (Principal, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	tok, ok := v.tokens[raw]
	if !ok {
		return Principal{}, false
	}
	if now.Before(tok.from) || !now.Before(tok.expires) {
		delete(v.tokens, raw)
		return Principal{}, false
	}
	p := tok.principal
	p.Clinics = slices.Clone(p.Clinics) // each request its own
	return p, true
}

func (v *verifiedTokens) put(raw string, tok verifiedToken) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tokens == nil || len(v.tokens) >= maxVerifiedTokens {
		v.tokens = map[string]verifiedToken{} // simpler than an LRU; a miss costs one verification
	}
	v.tokens[raw] = tok
}

// accessClaims are the claims of an access token.
type accessClaims struct {
	jwt.RegisteredClaims
	ActorID string      `json:"actor"`
	Role    domain.Role `json:"role"`
	Clinics []string    `json:"clinics"`
}

// NewTokens checks cfg and returns the token service.
func NewTokens(cfg TokenConfig) (*Tokens, error) {
	var errs []error
	if len(cfg.Secret) < MinSecretBytes {
		errs = append(errs, fmt.Errorf("token secret must be at least %d bytes", MinSecretBytes))
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		errs = append(errs, errors.New("token issuer and audience are required"))
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = MaxAccessTTL
	}
	if cfg.AccessTTL < 0 || cfg.AccessTTL > MaxAccessTTL {
		errs = append(errs, fmt.Errorf("access token lifetime %s must be positive and at most %s", cfg.AccessTTL, MaxAccessTTL))
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	t := &Tokens{secret: cfg.Secret, issuer: cfg.Issuer, audience: cfg.Audience, ttl: cfg.AccessTTL, clock: cfg.Clock}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(cfg.Clock),
		jwt.WithStrictDecoding(),
	)
	return t, nil
}

// TTL is the access token lifetime.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue signs an access token for p.
func (t *Tokens) Issue(p Principal) (string, error) {
	now := t.clock().UTC().Truncate(time.Second)
	jti, err := randomToken(16)
	if err != nil {
		return "", err
	}
	clinics := p.Clinics
	if clinics == nil {
		clinics = []string{}
	}
	claims := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: t.issuer, Subject: p.UserID, Audience: jwt.ClaimStrings{t.audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)), ID: jti,
		},
		ActorID: p.ActorID, Role: p.Role, Clinics: clinics,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
}

// Verify checks a token strictly — algorithm HS256 only (so never "none"),
// signature, issuer, audience, expiry present and not passed, issued-at
// not in the future, lifetime within MaxAccessTTL, every claim present —
// and returns its principal. Every failure is a 401 problem that does not
// say which check failed.
func (t *Tokens) Verify(raw string) (Principal, error) {
	if p, ok := t.verified.get(raw, t.clock()); ok {
		return p, nil
	}
	var claims accessClaims
	_, err := t.parser.ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
		if tok.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected signing method %v", tok.Header["alg"])
		}
		return t.secret, nil
	})
	if err != nil {
		return Principal{}, invalidToken(err)
	}
	if claims.Subject == "" || claims.ActorID == "" || claims.ID == "" || !claims.Role.Valid() || claims.IssuedAt == nil {
		return Principal{}, invalidToken(errors.New("missing claims"))
	}
	if claims.ExpiresAt.Sub(claims.IssuedAt.Time) > MaxAccessTTL {
		return Principal{}, invalidToken(errors.New("token lifetime exceeds the maximum"))
	}
	p := Principal{UserID: claims.Subject, ActorID: claims.ActorID, Role: claims.Role,
		Clinics: claims.Clinics, TokenID: claims.ID, IssuedAt: claims.IssuedAt.UTC()}
	// Valid from its issue (and not-before) time until it expires, as the
	// parser checks them (no leeway).
	from := claims.IssuedAt.Time
	if claims.NotBefore != nil && claims.NotBefore.After(from) {
		from = claims.NotBefore.Time
	}
	kept := p
	kept.Clinics = slices.Clone(p.Clinics)
	t.verified.put(raw, verifiedToken{principal: kept, from: from, expires: claims.ExpiresAt.Time})
	return p, nil
}

func invalidToken(cause error) error {
	e := Unauthorized("the access token is invalid or expired", "invalid_token")
	e.Cause = cause
	return e
}

// bearerToken extracts the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", Unauthorized("this route needs an access token (Authorization: Bearer)", "")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", Unauthorized("the Authorization header must be: Bearer <access token>", "invalid_request")
	}
	return strings.TrimSpace(token), nil
}

// authenticate verifies the request's bearer token.
func (t *Tokens) authenticate(r *http.Request) (Principal, error) {
	raw, err := bearerToken(r)
	if err != nil {
		return Principal{}, err
	}
	return t.Verify(raw)
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
