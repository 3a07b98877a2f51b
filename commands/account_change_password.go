package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
)

// ChangePassword sets a new password. The account holder must give the
// current password; a system admin resets without it. Anyone else is
// refused as if the current password were wrong, so the command does not
// reveal which usernames exist.
type ChangePassword struct {
	Username        string
	CurrentPassword string
	NewPassword     string
}

// ChangePassword handles ChangePassword.
func (s *Accounts) ChangePassword(ctx context.Context, m Meta, cmd ChangePassword) (Result, error) {
	if m.Actor.ID == "" {
		return Result{}, errInvalidCredentials()
	}
	hash, err := s.hashNew("newPassword", cmd.NewPassword)
	if err != nil {
		return Result{}, err
	}
	username, err := identity.NormalizeUsername(cmd.Username)
	if err != nil {
		return Result{}, errInvalidCredentials()
	}
	admin := m.Actor.Is(domain.RoleSystemAdmin)
	if !admin {
		// Checked once, outside the retry loop: verifying costs ~50 ms.
		acc, err := Load(ctx, s.d, AccountStream(username), identity.NewAccount)
		if err != nil {
			return Result{}, err
		}
		ok, err := acc.PasswordMatches(s.hasher, cmd.CurrentPassword)
		if err != nil {
			return Result{}, err
		}
		if !ok || !acc.Active() || acc.ActorID() != m.Actor.ID {
			return Result{}, errInvalidCredentials()
		}
	}
	m = s.d.prepared(m)
	res, _, err := execute(ctx, s.d, AccountStream(username), "", m, identity.NewAccount,
		func(a *identity.Account) error {
			if !a.Exists() {
				if admin {
					return accountNotFound()
				}
				return errInvalidCredentials()
			}
			if !admin && a.ActorID() != m.Actor.ID {
				return errInvalidCredentials()
			}
			return a.ChangePassword(hash, m.Actor.ID)
		})
	return res, err
}
