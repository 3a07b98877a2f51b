package organization_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

var erasedAt = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestForgetClient(t *testing.T) {
	c := registered()
	require.NoError(t, c.Forget(" request 42 under GDPR art. 17 ", "admin-1", erasedAt))
	assert.Equal(t, []domain.Event{organization.ClientForgotten{
		ClientID: "k1", ClinicID: "c1", By: "admin-1", Reason: "request 42 under GDPR art. 17", At: erasedAt,
	}}, c.Pending())
	assert.True(t, c.Forgotten())
	assert.False(t, c.Active(), "a forgotten client is out of care for good")
}

func TestForgetClientRules(t *testing.T) {
	t.Run("no such client", func(t *testing.T) {
		assertRefused(t, organization.NewClient().Forget("request", "a1", erasedAt), domain.KindNotFound, "client-not-found")
	})
	t.Run("reason required", func(t *testing.T) {
		c := registered()
		assertRefused(t, c.Forget("  ", "a1", erasedAt), domain.KindValidation, "invalid-erasure")
		assert.Empty(t, c.Pending())
	})
	t.Run("reason too long", func(t *testing.T) {
		long := make([]byte, 1001)
		for i := range long {
			long[i] = 'x'
		}
		assertRefused(t, registered().Forget(string(long), "a1", erasedAt), domain.KindValidation, "invalid-erasure")
	})
	t.Run("twice", func(t *testing.T) {
		c := registered(organization.ClientForgotten{ClientID: "k1", ClinicID: "c1", By: "a1", Reason: "r"})
		assertRefused(t, c.Forget("again", "a1", erasedAt), domain.KindConflict, "client-forgotten")
	})
}

func TestForgottenClientTakesNoChange(t *testing.T) {
	r, _ := staffed()
	forgotten := func() *organization.Client {
		return registered(organization.ClientForgotten{ClientID: "k1", ClinicID: "c1", By: "a1", Reason: "r"})
	}
	assertRefused(t, forgotten().ChangeCareTeam(r, []string{"p2"}, "a1"), domain.KindConflict, "client-forgotten")
	assertRefused(t, forgotten().Deactivate("", "a1"), domain.KindConflict, "client-forgotten")
	assertRefused(t, forgotten().Reactivate("a1"), domain.KindConflict, "client-forgotten")
	assertRefused(t, forgotten().GrantEmergencyAccess("g1", domain.Actor{ID: "a1", Role: domain.RoleClinicAdmin}, "crisis", time.Hour, erasedAt),
		domain.KindConflict, "client-forgotten")
}
