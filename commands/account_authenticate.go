package commands

import (
	"context"

	"github.com/careflow/careflow/domain/identity"
)

// Authenticate returns the active account whose username and password
// match. Every failure (no such user, disabled, wrong password, malformed
// username) is the same unauthorized error, and an unknown username costs
// one password verification like a known one, so neither the answer nor
// its timing says whether the user exists.
func (s *Accounts) Authenticate(ctx context.Context, username, password string) (*identity.Account, error) {
	u, err := identity.NormalizeUsername(username)
	if err != nil {
		s.hasher.VerifyNothing(password)
		return nil, errInvalidCredentials()
	}
	acc, err := Load(ctx, s.d, AccountStream(u), identity.NewAccount)
	if err != nil {
		return nil, err
	}
	ok, err := acc.PasswordMatches(s.hasher, password)
	if err != nil {
		return nil, err
	}
	if !ok || !acc.Active() {
		return nil, errInvalidCredentials()
	}
	return acc, nil
}
