package commands_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
)

var accountAdmin = domain.Actor{ID: "sys", Role: domain.RoleSystemAdmin}

func newAccounts(t *testing.T) (*commands.Accounts, *memory.Store) {
	t.Helper()
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	store := memory.New(eventstore.Options{Types: reg})
	t.Cleanup(func() { _ = store.Close() })
	hasher, err := identity.NewHasher(identity.TestArgon2Params())
	require.NoError(t, err)
	d := commands.Deps{Store: store, Codec: reg,
		Clock: func() time.Time { return time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) },
		NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }}
	return commands.NewAccounts(d, hasher), store
}

func registerAlice(t *testing.T, accts *commands.Accounts) commands.AccountRegistration {
	t.Helper()
	reg, err := accts.RegisterAccount(context.Background(), commands.Meta{Actor: accountAdmin}, commands.RegisterAccount{
		Username: "Alice", Password: "correct horse battery", Role: domain.RoleProvider, ProviderID: "p1"})
	require.NoError(t, err)
	return reg
}

func TestRegisterAccountStoresAHashNeverThePassword(t *testing.T) {
	accts, store := newAccounts(t)
	reg := registerAlice(t, accts)
	assert.NotEmpty(t, reg.UserID)
	assert.Equal(t, commands.AccountStream("alice"), reg.Result.Stream)
	assert.NotContains(t, reg.Result.Stream.String(), "alice", "the username is not in the stream id")

	recs, err := store.ReadStream(context.Background(), reg.Result.Stream, 1)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "account.registered", recs[0].Type)
	assert.NotContains(t, string(recs[0].Data), "correct horse")
	assert.Contains(t, string(recs[0].Data), `"passwordHash":"$argon2id$`)
	assert.Contains(t, string(recs[0].Data), `"username":"alice"`)
}

func TestRegisterAccountIsOnlyForSystemAdmins(t *testing.T) {
	accts, _ := newAccounts(t)
	_, err := accts.RegisterAccount(context.Background(), commands.Meta{Actor: domain.Actor{ID: "ca1", Role: domain.RoleClinicAdmin}},
		commands.RegisterAccount{Username: "bob", Password: "correct horse battery", Role: domain.RoleAuditor})
	assert.Equal(t, domain.KindForbidden, domain.KindOf(err))
}

func TestRegisterAccountReportsEveryInvalidField(t *testing.T) {
	accts, _ := newAccounts(t)
	_, err := accts.RegisterAccount(context.Background(), commands.Meta{Actor: accountAdmin},
		commands.RegisterAccount{Username: "a b", Password: "short", Role: domain.RoleAuditor})
	var v domain.ValidationErrors
	require.ErrorAs(t, err, &v)
	require.Len(t, v, 2)
	assert.Equal(t, "username", v[0].Field)
	assert.Equal(t, "password", v[1].Field)
}

func TestUsernamesAreUniqueEvenUnderConcurrentRegistration(t *testing.T) {
	accts, _ := newAccounts(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = accts.RegisterAccount(context.Background(), commands.Meta{Actor: accountAdmin}, commands.RegisterAccount{
				Username: []string{"Carol", "carol ", "CAROL"}[i%3], Password: "correct horse battery", Role: domain.RoleAuditor})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		var de *domain.Error
		require.ErrorAs(t, err, &de)
		assert.Equal(t, "username-taken", de.Slug)
	}
	assert.Equal(t, 1, ok)
}

func TestRegisterAccountRetriedWithTheSameCommandIDIsADuplicate(t *testing.T) {
	accts, _ := newAccounts(t)
	m := commands.Meta{Actor: accountAdmin, CommandID: "cmd-1"}
	cmd := commands.RegisterAccount{Username: "dave", Password: "correct horse battery", Role: domain.RoleAuditor}
	first, err := accts.RegisterAccount(context.Background(), m, cmd)
	require.NoError(t, err)
	again, err := accts.RegisterAccount(context.Background(), m, cmd)
	require.NoError(t, err)
	assert.True(t, again.Result.Duplicate)
	assert.Equal(t, first.UserID, again.UserID)
}

func TestAuthenticate(t *testing.T) {
	accts, _ := newAccounts(t)
	reg := registerAlice(t, accts)
	ctx := context.Background()

	acc, err := accts.Authenticate(ctx, " ALICE", "correct horse battery")
	require.NoError(t, err)
	assert.Equal(t, reg.UserID, acc.UserID())
	assert.Equal(t, domain.Actor{ID: "p1", Role: domain.RoleProvider}, acc.Actor())

	wrong, err := accts.Authenticate(ctx, "alice", "wrong horse battery")
	assert.Nil(t, wrong)
	unknown, err2 := accts.Authenticate(ctx, "nobody", "correct horse battery")
	assert.Nil(t, unknown)
	_, err3 := accts.Authenticate(ctx, "x", "correct horse battery")
	for _, e := range []error{err, err2, err3} {
		var de *domain.Error
		require.ErrorAs(t, e, &de)
		assert.Equal(t, domain.KindUnauthorized, de.Kind)
		assert.Equal(t, err.Error(), e.Error(), "every failure reads the same")
	}

	_, err = accts.DisableAccount(ctx, commands.Meta{Actor: accountAdmin}, commands.DisableAccount{Username: "alice", Reason: "left"})
	require.NoError(t, err)
	_, err = accts.Authenticate(ctx, "alice", "correct horse battery")
	assert.Equal(t, domain.KindUnauthorized, domain.KindOf(err), "a disabled account cannot sign in")
}

func TestChangePassword(t *testing.T) {
	accts, _ := newAccounts(t)
	registerAlice(t, accts)
	ctx := context.Background()
	self := commands.Meta{Actor: domain.Actor{ID: "p1", Role: domain.RoleProvider}}

	_, err := accts.ChangePassword(ctx, self, commands.ChangePassword{Username: "alice", CurrentPassword: "wrong horse battery", NewPassword: "a brand new password"})
	assert.Equal(t, domain.KindUnauthorized, domain.KindOf(err))

	other := commands.Meta{Actor: domain.Actor{ID: "p2", Role: domain.RoleProvider}}
	_, err = accts.ChangePassword(ctx, other, commands.ChangePassword{Username: "alice", CurrentPassword: "correct horse battery", NewPassword: "a brand new password"})
	assert.Equal(t, domain.KindUnauthorized, domain.KindOf(err), "knowing the password is not enough to change someone else's")

	_, err = accts.ChangePassword(ctx, self, commands.ChangePassword{Username: "alice", CurrentPassword: "correct horse battery", NewPassword: "short"})
	var de *domain.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "newPassword", de.Field)

	_, err = accts.ChangePassword(ctx, self, commands.ChangePassword{Username: "alice", CurrentPassword: "correct horse battery", NewPassword: "a brand new password"})
	require.NoError(t, err)
	_, err = accts.Authenticate(ctx, "alice", "correct horse battery")
	assert.Error(t, err)
	_, err = accts.Authenticate(ctx, "alice", "a brand new password")
	assert.NoError(t, err)

	_, err = accts.ChangePassword(ctx, commands.Meta{Actor: accountAdmin}, commands.ChangePassword{Username: "alice", NewPassword: "reset by the admin"})
	require.NoError(t, err, "a system admin resets without the current password")
	_, err = accts.Authenticate(ctx, "alice", "reset by the admin")
	assert.NoError(t, err)

	_, err = accts.ChangePassword(ctx, commands.Meta{Actor: accountAdmin}, commands.ChangePassword{Username: "nobody", NewPassword: "reset by the admin"})
	assert.Equal(t, domain.KindNotFound, domain.KindOf(err))
}

func TestAccountLookup(t *testing.T) {
	accts, _ := newAccounts(t)
	reg := registerAlice(t, accts)
	acc, err := accts.Account(context.Background(), "Alice")
	require.NoError(t, err)
	assert.Equal(t, reg.UserID, acc.UserID())
	for _, name := range []string{"bob", strings.Repeat("x", 500)} {
		_, err = accts.Account(context.Background(), name)
		assert.True(t, errors.Is(err, &domain.Error{Slug: "account-not-found"}), name)
	}
}

func TestDisableAccountChecksTheExpectedVersion(t *testing.T) {
	accts, _ := newAccounts(t)
	registerAlice(t, accts)
	ctx := context.Background()
	_, err := accts.DisableAccount(ctx, commands.Meta{Actor: accountAdmin}, commands.DisableAccount{Username: "alice", IfVersion: 2})
	var stale *commands.StaleVersionError
	require.ErrorAs(t, err, &stale)
	assert.Equal(t, int64(2), stale.Expected)
	assert.Equal(t, int64(1), stale.Actual)
	assert.Equal(t, commands.AccountStream("alice"), stale.Stream)

	res, err := accts.DisableAccount(ctx, commands.Meta{Actor: accountAdmin}, commands.DisableAccount{Username: "alice", IfVersion: 1})
	require.NoError(t, err)
	assert.Equal(t, int64(2), res.Version)
}
