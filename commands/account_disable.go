package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
)

// DisableAccount stops an account signing in or refreshing tokens. Only a
// system admin may. Access tokens already issued stay valid until they
// expire (at most 15 minutes).
type DisableAccount struct {
	Username string
	Reason   string
	// IfVersion, when above 0, is the account version the caller last saw
	// (HTTP If-Match): the command is refused with a *StaleVersionError if
	// the account has moved on, checked on the state the decision is made on.
	IfVersion int64
}

// DisableAccount handles DisableAccount.
func (s *Accounts) DisableAccount(ctx context.Context, m Meta, cmd DisableAccount) (Result, error) {
	if err := requireRole(m.Actor, "disable accounts", domain.RoleSystemAdmin); err != nil {
		return Result{}, err
	}
	username, err := identity.NormalizeUsername(cmd.Username)
	if err != nil {
		return Result{}, accountNotFound()
	}
	m = s.d.prepared(m)
	res, _, err := execute(ctx, s.d, AccountStream(username), "", m, identity.NewAccount,
		func(a *identity.Account) error {
			if err := checkVersion(AccountStream(username), cmd.IfVersion, a.Version()); err != nil {
				return err
			}
			return a.Disable(cmd.Reason, m.Actor.ID)
		})
	return res, err
}
