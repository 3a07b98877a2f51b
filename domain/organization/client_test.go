package organization_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

// staffed is clinic c1 with providers p1, p2 and p3 (p3 inactive) and
// outsider p9 of no clinic.
func staffed() (organization.Roster, *organization.Clinic) {
	c := clinic(
		organization.ClinicProviderJoined{ClinicID: "c1", ProviderID: "p1"},
		organization.ClinicProviderJoined{ClinicID: "c1", ProviderID: "p2"},
		organization.ClinicProviderJoined{ClinicID: "c1", ProviderID: "p3"},
	)
	return organization.NewRoster(c, provider("p1"), provider("p2"),
		provider("p3", organization.ProviderDeactivated{ProviderID: "p3"}), provider("p9")), c
}

func registered(events ...domain.Event) *organization.Client {
	return given(organization.NewClient(), append([]domain.Event{organization.ClientRegistered{
		ClientID: "k1", ClinicID: "c1", DisplayName: "Alex", CareTeam: []string{"p1"},
	}}, events...)...)
}

func TestRoster(t *testing.T) {
	r, _ := staffed()
	assert.True(t, r.Eligible("p1"))
	assert.False(t, r.Eligible("p3"), "inactive")
	assert.False(t, r.Eligible("p9"), "not of the clinic")
	assert.Equal(t, "c1", r.ClinicID())
}

func TestRegisterClient(t *testing.T) {
	r, _ := staffed()
	c := organization.NewClient()
	require.NoError(t, c.Register("k1", r, " Alex ", []string{"p1", "p2"}, "a1"))
	assert.Equal(t, []domain.Event{organization.ClientRegistered{
		ClientID: "k1", ClinicID: "c1", DisplayName: "Alex", CareTeam: []string{"p1", "p2"}, RegisteredBy: "a1",
	}}, c.Pending())
	assert.True(t, c.Active())
	assert.True(t, c.OnTeam("p2"))
	assert.Equal(t, "c1", c.ClinicID())
}

func TestRegisterClientRules(t *testing.T) {
	r, _ := staffed()
	cases := map[string]struct {
		id, name string
		team     []string
		kind     domain.Kind
		slug     string
	}{
		"no id":                 {"", "Alex", []string{"p1"}, domain.KindValidation, "invalid-client"},
		"no name":               {"k1", " ", []string{"p1"}, domain.KindValidation, "invalid-client"},
		"empty team":            {"k1", "Alex", nil, domain.KindValidation, "invalid-care-team"},
		"provider twice":        {"k1", "Alex", []string{"p1", "p1"}, domain.KindValidation, "invalid-care-team"},
		"provider of no clinic": {"k1", "Alex", []string{"p1", "p9"}, domain.KindValidation, "not-clinic-provider"},
		"inactive provider":     {"k1", "Alex", []string{"p3"}, domain.KindValidation, "provider-inactive"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			client := organization.NewClient()
			assertRefused(t, client.Register(c.id, r, c.name, c.team, "a1"), c.kind, c.slug)
			assert.Empty(t, client.Pending())
		})
	}
	t.Run("too large a team", func(t *testing.T) {
		team := make([]string, 21)
		assertRefused(t, organization.NewClient().Register("k1", r, "Alex", team, "a1"), domain.KindValidation, "invalid-care-team")
	})
	t.Run("twice", func(t *testing.T) {
		assertRefused(t, registered().Register("k1", r, "Alex", []string{"p1"}, "a1"), domain.KindConflict, "client-exists")
	})
	t.Run("roster of no clinic", func(t *testing.T) {
		assertRefused(t, organization.NewClient().Register("k1", organization.Roster{}, "Alex", []string{"p1"}, "a1"), domain.KindNotFound, "clinic-not-found")
	})
	t.Run("field names the offending provider", func(t *testing.T) {
		err := organization.NewClient().Register("k1", r, "Alex", []string{"p1", "p9"}, "a1")
		var de *domain.Error
		require.ErrorAs(t, err, &de)
		assert.Equal(t, "careTeam[1]", de.Field)
	})
}

func TestChangeCareTeam(t *testing.T) {
	r, _ := staffed()
	c := registered()
	require.NoError(t, c.ChangeCareTeam(r, []string{"p2", "p1"}, "a1"))
	require.NoError(t, c.ChangeCareTeam(r, []string{"p2"}, "a1"))
	assert.Equal(t, []domain.Event{
		organization.ClientCareTeamChanged{ClientID: "k1", ClinicID: "c1", CareTeam: []string{"p2", "p1"}, Added: []string{"p2"}, ChangedBy: "a1"},
		organization.ClientCareTeamChanged{ClientID: "k1", ClinicID: "c1", CareTeam: []string{"p2"}, Removed: []string{"p1"}, ChangedBy: "a1"},
	}, c.Pending())
	assert.Equal(t, []string{"p2"}, c.CareTeam())
	assert.False(t, c.OnTeam("p1"))

	t.Run("unchanged team records nothing", func(t *testing.T) {
		c := registered()
		require.NoError(t, c.ChangeCareTeam(r, []string{"p1"}, "a1"))
		assert.Empty(t, c.Pending())
	})
	t.Run("at least one provider", func(t *testing.T) {
		assertRefused(t, registered().ChangeCareTeam(r, []string{}, "a1"), domain.KindValidation, "invalid-care-team")
	})
	t.Run("providers of the clinic only", func(t *testing.T) {
		assertRefused(t, registered().ChangeCareTeam(r, []string{"p9"}, "a1"), domain.KindValidation, "not-clinic-provider")
	})
	t.Run("active providers only", func(t *testing.T) {
		assertRefused(t, registered().ChangeCareTeam(r, []string{"p1", "p3"}, "a1"), domain.KindValidation, "provider-inactive")
	})
	t.Run("roster of another clinic", func(t *testing.T) {
		other := given(organization.NewClinic(), organization.ClinicCreated{ClinicID: "c2", InstituteID: "i1", Name: "Second"},
			organization.ClinicProviderJoined{ClinicID: "c2", ProviderID: "p1"})
		r2 := organization.NewRoster(other, provider("p1"))
		assertRefused(t, registered().ChangeCareTeam(r2, []string{"p1"}, "a1"), domain.KindValidation, "not-clinic-provider")
	})
	t.Run("unknown client", func(t *testing.T) {
		assertRefused(t, organization.NewClient().ChangeCareTeam(r, []string{"p1"}, "a1"), domain.KindNotFound, "client-not-found")
	})
	t.Run("inactive client", func(t *testing.T) {
		c := registered(organization.ClientDeactivated{ClientID: "k1", ClinicID: "c1"})
		assertRefused(t, c.ChangeCareTeam(r, []string{"p2"}, "a1"), domain.KindConflict, "client-inactive")
	})
}

func TestClientActivity(t *testing.T) {
	c := registered()
	require.NoError(t, c.Deactivate(" discharged ", "a1"))
	assert.False(t, c.Active())
	assert.Equal(t, []domain.Event{organization.ClientDeactivated{ClientID: "k1", ClinicID: "c1", Reason: "discharged", By: "a1"}}, c.Pending())
	assertRefused(t, c.Deactivate("", "a1"), domain.KindConflict, "client-inactive")
	require.NoError(t, c.Reactivate("a1"))
	assert.True(t, c.Active())
	assertRefused(t, c.Reactivate("a1"), domain.KindConflict, "client-active")

	assertRefused(t, organization.NewClient().Deactivate("", "a1"), domain.KindNotFound, "client-not-found")
	assertRefused(t, organization.NewClient().Reactivate("a1"), domain.KindNotFound, "client-not-found")
	long := make([]byte, 1001)
	for i := range long {
		long[i] = 'x'
	}
	assertRefused(t, registered().Deactivate(string(long), "a1"), domain.KindValidation, "invalid-client")
}
