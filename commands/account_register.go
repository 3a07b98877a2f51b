package commands

import (
	"context"
	"errors"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
)

// RegisterAccount creates a user account. Only a system admin may: staff
// and client accounts are provisioned centrally (the first system admin is
// bootstrapped by the operator with a system actor).
type RegisterAccount struct {
	Username   string
	Password   string
	Role       domain.Role
	ProviderID string // for the provider role
	ClientID   string // for the client role
}

// AccountRegistration is what RegisterAccount wrote.
type AccountRegistration struct {
	UserID string
	Result Result
}

// RegisterAccount handles RegisterAccount. A username already taken is a
// conflict ("username-taken"), decided by the store: the account stream
// must not exist yet.
func (s *Accounts) RegisterAccount(ctx context.Context, m Meta, cmd RegisterAccount) (AccountRegistration, error) {
	if err := requireRole(m.Actor, "register accounts", domain.RoleSystemAdmin); err != nil {
		return AccountRegistration{}, err
	}
	var errs domain.ValidationErrors
	collect := func(err error) {
		var de *domain.Error
		if errors.As(err, &de) {
			errs = append(errs, de)
		}
	}
	username, err := identity.NormalizeUsername(cmd.Username)
	collect(err)
	collect(identity.CheckPassword("password", cmd.Password))
	if err := errs.Err(); err != nil {
		return AccountRegistration{}, err
	}
	hash, err := s.hasher.Hash(cmd.Password)
	if err != nil {
		return AccountRegistration{}, err
	}
	m = s.d.prepared(m)
	userID := newAggregateID(m, StreamAccount)
	res, _, err := execute(ctx, s.d, AccountStream(username), "", m, identity.NewAccount,
		func(a *identity.Account) error {
			return a.Register(identity.Registration{
				UserID: userID, Username: username, Role: cmd.Role, PasswordHash: hash,
				ProviderID: cmd.ProviderID, ClientID: cmd.ClientID, By: m.Actor.ID,
			})
		})
	if err != nil {
		return AccountRegistration{}, err
	}
	return AccountRegistration{UserID: userID, Result: res}, nil
}
