package api

import (
	"net/http"
	"time"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
)

// accountRoutes serve account administration and password changes.
type accountRoutes struct {
	accounts AccountService
	refresh  RefreshTokens
	// limiter is the sign-in limiter: proving a current password here is
	// a password guess like a sign-in, and counts against the same buckets.
	limiter *loginLimiter
	clock   func() time.Time
}

func (a *accountRoutes) register(rt *Router) {
	rt.HandleFunc("POST /v1/accounts", a.create)
	rt.HandleFunc("POST /v1/accounts/{username}/disable", a.disable)
	rt.HandleFunc("POST /v1/auth/password", a.changePassword)
}

type createAccountRequest struct {
	Username   string      `json:"username"`
	Password   string      `json:"password"`
	Role       domain.Role `json:"role"`
	ProviderID string      `json:"providerId"`
	ClientID   string      `json:"clientId"`
}

func (a *accountRoutes) create(w http.ResponseWriter, r *http.Request) {
	m, err := CommandMeta(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var req createAccountRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	reg, err := a.accounts.RegisterAccount(r.Context(), m, commands.RegisterAccount{
		Username: req.Username, Password: req.Password, Role: req.Role, ProviderID: req.ProviderID, ClientID: req.ClientID,
	})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteCommandResult(w, http.StatusCreated, map[string]string{"userId": reg.UserID}, reg.Result)
}

type disableAccountRequest struct {
	Reason string `json:"reason"`
}

// disable stops the account signing in and revokes its refresh tokens.
// If-Match, when sent, must name the account's current version; the
// command checks it on the state it decides on, so there is no window
// between the check and the write.
func (a *accountRoutes) disable(w http.ResponseWriter, r *http.Request) {
	m, err := CommandMeta(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	ifMatch, err := ParseIfMatch(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var req disableAccountRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	username := r.PathValue("username")
	cmd := commands.DisableAccount{Username: username, Reason: req.Reason}
	if ifMatch.Set && !ifMatch.Any {
		cmd.IfVersion = ifMatch.Version // "*" adds nothing: disabling needs the account anyway
	}
	res, err := a.accounts.DisableAccount(r.Context(), m, cmd)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	acc, err := a.accounts.Account(r.Context(), username)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if err := a.refresh.RevokeUser(r.Context(), acc.UserID()); err != nil {
		WriteError(w, r, err)
		return
	}
	WriteCommandResult(w, http.StatusOK, nil, res)
}

type changePasswordRequest struct {
	Username        string `json:"username"`
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// changePassword sets a new password (the holder with the current one, or
// a system admin) and signs the account out everywhere: every refresh
// token of the account is revoked.
func (a *accountRoutes) changePassword(w http.ResponseWriter, r *http.Request) {
	m, err := CommandMeta(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var req changePasswordRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	if !m.Actor.Is(domain.RoleSystemAdmin) {
		key, err := identity.NormalizeUsername(req.Username)
		if err != nil {
			key = limiterKeyOf(req.Username)
		}
		if err := a.limiter.allow(key, clientAddress(r), a.clock()); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	res, err := a.accounts.ChangePassword(r.Context(), m, commands.ChangePassword{
		Username: req.Username, CurrentPassword: req.CurrentPassword, NewPassword: req.NewPassword,
	})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	acc, err := a.accounts.Account(r.Context(), req.Username)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if err := a.refresh.RevokeUser(r.Context(), acc.UserID()); err != nil {
		WriteError(w, r, err)
		return
	}
	WriteCommandResult(w, http.StatusOK, nil, res)
}
