package commands_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

func TestClientFacts(t *testing.T) {
	w := newOrgWorld(t)
	facts, err := w.org.ClientFacts(w.ctx, "k1")
	require.NoError(t, err)
	assert.Equal(t, commands.ClientFacts{ClientID: "k1", ClinicID: "c1", Team: []string{"p1"}, Active: true}, facts)
	assert.True(t, facts.OnTeam("p1"))

	_, err = w.org.ClientFacts(w.ctx, "nobody")
	assert.Equal(t, domain.KindNotFound, domain.KindOf(err))
	assert.ErrorIs(t, err, &domain.Error{Slug: "client-not-found"})
	_, err = w.org.ClientFacts(w.ctx, "")
	assert.ErrorIs(t, err, &domain.Error{Slug: "client-not-found"})
}

func TestClientFactsTeamIsWhoMayActNow(t *testing.T) {
	w := newOrgWorld(t)
	w.given(commands.StreamClient, "k1", organization.ClientCareTeamChanged{ClientID: "k1", ClinicID: "c1", CareTeam: []string{"p1", "p2"}})

	w.given(commands.StreamClinic, "c1", organization.ClinicProviderLeft{ClinicID: "c1", ProviderID: "p1"})
	facts, err := w.org.ClientFacts(w.ctx, "k1")
	require.NoError(t, err)
	assert.Equal(t, []string{"p2"}, facts.Team, "a provider who left the clinic loses access")

	w.given(commands.StreamProvider, "p2", organization.ProviderDeactivated{ProviderID: "p2"})
	facts, err = w.org.ClientFacts(w.ctx, "k1")
	require.NoError(t, err)
	assert.Empty(t, facts.Team, "an inactive provider loses access")

	w.given(commands.StreamClient, "k1", organization.ClientDeactivated{ClientID: "k1", ClinicID: "c1"})
	facts, err = w.org.ClientFacts(w.ctx, "k1")
	require.NoError(t, err)
	assert.False(t, facts.Active)
}

func TestClinicRoles(t *testing.T) {
	w := newOrgWorld(t)
	w.given(commands.StreamClinic, "c1", organization.ClinicStaffAdded{ClinicID: "c1", UserID: "p1", Role: domain.RoleClinicAdmin})
	cases := map[string][]domain.Role{
		"ca1": {domain.RoleClinicAdmin},
		"p1":  {domain.RoleClinicAdmin, domain.RoleProvider},
		"au1": {domain.RoleAuditor},
		"ia1": {domain.RoleInstituteAdmin},
		"ia2": nil,
		"p4":  nil,
	}
	for user, want := range cases {
		roles, err := w.org.ClinicRoles(w.ctx, "c1", user)
		require.NoError(t, err)
		assert.Equal(t, want, roles, user)
	}
	_, err := w.org.ClinicRoles(w.ctx, "nope", "ca1")
	assert.ErrorIs(t, err, &domain.Error{Slug: "clinic-not-found"})
}
