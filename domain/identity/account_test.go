package identity

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
)

func registration(t *testing.T, h *Hasher) Registration {
	t.Helper()
	hash, err := h.Hash("correct horse battery")
	require.NoError(t, err)
	return Registration{UserID: "u1", Username: "alice", Role: domain.RoleProvider, PasswordHash: hash, ProviderID: "p1", By: "admin"}
}

func TestNormalizeUsername(t *testing.T) {
	u, err := NormalizeUsername("  Alice.Smith+x@Example.org ")
	require.NoError(t, err)
	assert.Equal(t, "alice.smith+x@example.org", u)

	for _, bad := range []string{"", "ab", "al ice", "alíce", "a/b/c", string(make([]byte, 200))} {
		_, err := NormalizeUsername(bad)
		assert.Equal(t, domain.KindValidation, domain.KindOf(err), "%q", bad)
	}
}

func TestRegisterRecordsTheAccount(t *testing.T) {
	h := testHasher(t)
	r := registration(t, h)
	a := NewAccount()
	require.NoError(t, a.Register(r))

	require.Len(t, a.Pending(), 1)
	assert.Equal(t, AccountRegistered{UserID: "u1", Username: "alice", Role: domain.RoleProvider, PasswordHash: r.PasswordHash,
		ProviderID: "p1", RegisteredBy: "admin"}, a.Pending()[0])
	assert.True(t, a.Active())
	assert.Equal(t, domain.Actor{ID: "p1", Role: domain.RoleProvider}, a.Actor(), "a provider acts as its provider id")

	ok, err := a.PasswordMatches(h, "correct horse battery")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = a.PasswordMatches(h, "wrong horse battery")
	require.NoError(t, err)
	assert.False(t, ok)

	assert.Equal(t, domain.KindConflict, domain.KindOf(a.Register(r)), "a second registration")
}

func TestRegisterValidatesEveryField(t *testing.T) {
	h := testHasher(t)
	r := registration(t, h)
	r.UserID, r.Username, r.Role, r.PasswordHash, r.ProviderID, r.ClientID = "", "Alice", "doctor", "plain", "", "k1"
	err := NewAccount().Register(r)
	var v domain.ValidationErrors
	require.ErrorAs(t, err, &v)
	fields := map[string]bool{}
	for _, e := range v {
		fields[e.Field] = true
	}
	assert.Equal(t, map[string]bool{"userId": true, "username": true, "role": true, "password": true, "clientId": true}, fields)
}

func TestSubjectIDsFollowTheRole(t *testing.T) {
	h := testHasher(t)
	r := registration(t, h)
	r.ProviderID = ""
	assert.Equal(t, domain.KindValidation, domain.KindOf(NewAccount().Register(r)), "a provider account needs a provider id")

	r = registration(t, h)
	r.Role, r.ProviderID, r.ClientID = domain.RoleClient, "", "k1"
	a := NewAccount()
	require.NoError(t, a.Register(r))
	assert.Equal(t, "k1", a.ActorID())

	r = registration(t, h)
	r.Role, r.ProviderID = domain.RoleClinicAdmin, ""
	a = NewAccount()
	require.NoError(t, a.Register(r))
	assert.Equal(t, "u1", a.ActorID(), "staff act as their user id")
}

func TestChangePasswordAndDisable(t *testing.T) {
	h := testHasher(t)
	a := NewAccount()
	assert.Equal(t, domain.KindNotFound, domain.KindOf(a.ChangePassword("x", "u1")))
	require.NoError(t, a.Register(registration(t, h)))

	newHash, err := h.Hash("a brand new password")
	require.NoError(t, err)
	assert.Equal(t, domain.KindValidation, domain.KindOf(a.ChangePassword("not a hash", "u1")))
	require.NoError(t, a.ChangePassword(newHash, "u1"))
	ok, err := a.PasswordMatches(h, "a brand new password")
	require.NoError(t, err)
	assert.True(t, ok)

	require.NoError(t, a.Disable("left", "admin"))
	assert.False(t, a.Active())
	assert.Equal(t, domain.KindConflict, domain.KindOf(a.Disable("again", "admin")))
	assert.Equal(t, domain.KindConflict, domain.KindOf(a.ChangePassword(newHash, "u1")))
	assert.Equal(t, []string{"account.registered", "account.password_changed", "account.disabled"}, eventTypes(a.Pending()))
}

func TestReplayRebuildsTheAccount(t *testing.T) {
	h := testHasher(t)
	src := NewAccount()
	require.NoError(t, src.Register(registration(t, h)))
	require.NoError(t, src.Disable("", "admin"))

	a := NewAccount()
	for _, e := range src.Pending() {
		a.Replay(e)
	}
	assert.Equal(t, int64(2), a.Version())
	assert.Empty(t, a.Pending())
	assert.Equal(t, "alice", a.Username())
	assert.True(t, a.Disabled())
}

func TestPasswordMatchesOnAMissingAccountFails(t *testing.T) {
	ok, err := NewAccount().PasswordMatches(testHasher(t), "correct horse battery")
	require.NoError(t, err)
	assert.False(t, ok)
}

func eventTypes(es []domain.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.EventType()
	}
	return out
}
