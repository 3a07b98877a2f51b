package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
)

// AccountService is what the auth and account routes need of the account
// handlers (*commands.Accounts).
type AccountService interface {
	RegisterAccount(ctx context.Context, m commands.Meta, cmd commands.RegisterAccount) (commands.AccountRegistration, error)
	ChangePassword(ctx context.Context, m commands.Meta, cmd commands.ChangePassword) (commands.Result, error)
	DisableAccount(ctx context.Context, m commands.Meta, cmd commands.DisableAccount) (commands.Result, error)
	// Authenticate returns the active account with that username and
	// password, or an unauthorized error that does not say which was wrong.
	Authenticate(ctx context.Context, username, password string) (*identity.Account, error)
	// Account returns the account with the username (not-found if none).
	Account(ctx context.Context, username string) (*identity.Account, error)
}

// Memberships tells which clinics an account belongs to, for the clinics
// claim of its access tokens (read from the organization's read model).
type Memberships interface {
	ClinicsOf(ctx context.Context, account *identity.Account) ([]string, error)
}

// MembershipsFunc adapts a function to Memberships.
type MembershipsFunc func(ctx context.Context, account *identity.Account) ([]string, error)

func (f MembershipsFunc) ClinicsOf(ctx context.Context, a *identity.Account) ([]string, error) {
	return f(ctx, a)
}

// DefaultRefreshTTL is the absolute lifetime of a sign-in: refresh tokens
// rotate within it, and after it the user signs in again.
const DefaultRefreshTTL = 12 * time.Hour

// authRoutes serve /v1/auth/*.
type authRoutes struct {
	accounts   AccountService
	tokens     *Tokens
	refresh    RefreshTokens
	members    Memberships
	limiter    *loginLimiter
	refreshTTL time.Duration
	clock      func() time.Time
}

func (a *authRoutes) register(rt *Router) {
	rt.HandleFunc("POST /v1/auth/token", a.token)
	rt.HandleFunc("POST /v1/auth/refresh", a.refreshToken)
	rt.HandleFunc("POST /v1/auth/revoke", a.revoke)
	rt.HandleFunc("GET /v1/auth/me", a.me)
}

// TokenResponse is the body of a successful sign-in or refresh (the
// OAuth 2.0 token response fields).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

type tokenRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func required(fields map[string]string) error {
	var errs domain.ValidationErrors
	for _, name := range []string{"username", "password", "refresh_token"} {
		if v, ok := fields[name]; ok && v == "" {
			errs = append(errs, domain.Validation("required", name, "%s is required", name))
		}
	}
	return errs.Err()
}

// clientAddress is the peer address without the port. Forwarded headers
// are not trusted: they are the caller's to forge.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (a *authRoutes) token(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	if err := required(map[string]string{"username": req.Username, "password": req.Password}); err != nil {
		WriteError(w, r, err)
		return
	}
	// The limiter keys on the normalized name, so "Alice" and "alice "
	// share a bucket; a name that does not normalize is keyed as given.
	key, err := identity.NormalizeUsername(req.Username)
	if err != nil {
		key = limiterKeyOf(req.Username)
	}
	if err := a.limiter.allow(key, clientAddress(r), a.clock()); err != nil {
		WriteError(w, r, err)
		return
	}
	acc, err := a.accounts.Authenticate(r.Context(), req.Username, req.Password)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	refresh, err := a.refresh.Issue(r.Context(), RefreshSubject{UserID: acc.UserID(), Username: acc.Username()},
		a.clock().Add(a.refreshTTL))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	a.answer(w, r, acc, refresh)
}

func (a *authRoutes) refreshToken(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	if err := required(map[string]string{"refresh_token": req.RefreshToken}); err != nil {
		WriteError(w, r, err)
		return
	}
	subj, next, _, err := a.refresh.Rotate(r.Context(), req.RefreshToken)
	if errors.Is(err, ErrRefreshInvalid) {
		WriteError(w, r, invalidGrant())
		return
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	acc, err := a.accounts.Account(r.Context(), subj.Username)
	if err != nil && domain.KindOf(err) != domain.KindNotFound {
		WriteError(w, r, err)
		return
	}
	if err != nil || !acc.Active() || acc.UserID() != subj.UserID {
		// Disabled (or gone): no more tokens for this user.
		if rerr := a.refresh.RevokeUser(r.Context(), subj.UserID); rerr != nil {
			WriteError(w, r, rerr)
			return
		}
		WriteError(w, r, invalidGrant())
		return
	}
	a.answer(w, r, acc, next)
}

func invalidGrant() error {
	e := Unauthorized("the refresh token is invalid, expired, revoked or was already used; sign in again", "")
	e.Code = "invalid-refresh-token"
	return e
}

// revoke signs out: the refresh token's family is revoked. Like RFC 7009
// it answers 204 whether or not the token was known.
func (a *authRoutes) revoke(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	if err := required(map[string]string{"refresh_token": req.RefreshToken}); err != nil {
		WriteError(w, r, err)
		return
	}
	if err := a.refresh.Revoke(r.Context(), req.RefreshToken); err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *authRoutes) answer(w http.ResponseWriter, r *http.Request, acc *identity.Account, refresh string) {
	var clinics []string
	if a.members != nil {
		var err error
		if clinics, err = a.members.ClinicsOf(r.Context(), acc); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	access, err := a.tokens.Issue(Principal{UserID: acc.UserID(), ActorID: acc.ActorID(), Role: acc.Role(), Clinics: clinics})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, TokenResponse{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(a.tokens.TTL() / time.Second), RefreshToken: refresh,
	})
}

// MeResponse describes the signed-in principal.
type MeResponse struct {
	UserID  string      `json:"userId"`
	ActorID string      `json:"actorId"`
	Role    domain.Role `json:"role"`
	Clinics []string    `json:"clinics"`
}

func (a *authRoutes) me(w http.ResponseWriter, r *http.Request) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		WriteError(w, r, Unauthorized("this route needs an access token", ""))
		return
	}
	clinics := p.Clinics
	if clinics == nil {
		clinics = []string{}
	}
	writeJSON(w, http.StatusOK, MeResponse{UserID: p.UserID, ActorID: p.ActorID, Role: p.Role, Clinics: clinics})
}
