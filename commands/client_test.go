package commands_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

func TestRegisterClient(t *testing.T) {
	for _, a := range []domain.Actor{orgCA1, orgP2} {
		t.Run(string(a.Role), func(t *testing.T) {
			w := newOrgWorld(t)
			res, err := w.org.RegisterClient(w.ctx, orgMeta(a), commands.RegisterClient{ClinicID: "c1", DisplayName: "Sam", CareTeam: []string{"p2", "p1"}})
			require.NoError(t, err)
			assert.Equal(t, commands.StreamClient, res.Stream.Type)
			assert.Equal(t, []domain.Event{organization.ClientRegistered{
				ClientID: res.Stream.ID, ClinicID: "c1", DisplayName: "Sam", CareTeam: []string{"p2", "p1"}, RegisteredBy: a.ID,
			}}, w.eventsSince(commands.StreamClient, res.Stream.ID, 0))
		})
	}
}

func TestRegisterClientRefusals(t *testing.T) {
	w := newOrgWorld(t)
	before := w.head()
	reg := func(a domain.Actor, cmd commands.RegisterClient) error {
		_, err := w.org.RegisterClient(w.ctx, orgMeta(a), cmd)
		return err
	}
	ok := commands.RegisterClient{ClinicID: "c1", DisplayName: "Sam", CareTeam: []string{"p1"}}
	for _, a := range []domain.Actor{orgSys, orgIA1, orgAuditor1, orgClient} {
		w.requireRefused(reg(a, ok), before, domain.KindForbidden, "forbidden")
	}
	w.requireRefused(reg(orgCA2, ok), before, domain.KindNotFound, "clinic-not-found")
	w.requireRefused(reg(orgP4, ok), before, domain.KindNotFound, "clinic-not-found")

	err := reg(orgCA1, commands.RegisterClient{ClinicID: "c1", DisplayName: "Sam"})
	w.requireRefused(err, before, domain.KindValidation, "invalid-care-team")
	requireField(t, err, "careTeam")
	err = reg(orgCA1, commands.RegisterClient{ClinicID: "c1", DisplayName: "Sam", CareTeam: []string{"p1", "p4"}})
	w.requireRefused(err, before, domain.KindValidation, "not-clinic-provider")
	requireField(t, err, "careTeam[1]")
	err = reg(orgCA1, commands.RegisterClient{ClinicID: "c1", DisplayName: "Sam", CareTeam: []string{"p3"}})
	w.requireRefused(err, before, domain.KindValidation, "provider-inactive")
	err = reg(orgCA1, commands.RegisterClient{ClinicID: "c1", CareTeam: []string{"p1"}})
	w.requireRefused(err, before, domain.KindValidation, "invalid-client")
	requireField(t, err, "displayName")
}

func TestChangeCareTeam(t *testing.T) {
	for _, a := range []domain.Actor{orgCA1, orgP1} {
		t.Run(string(a.Role), func(t *testing.T) {
			w := newOrgWorld(t)
			v := w.version(commands.StreamClient, "k1")
			_, err := w.org.ChangeCareTeam(w.ctx, orgMeta(a), commands.ChangeCareTeam{ClientID: "k1", CareTeam: []string{"p2"}})
			require.NoError(t, err)
			assert.Equal(t, []domain.Event{organization.ClientCareTeamChanged{
				ClientID: "k1", ClinicID: "c1", CareTeam: []string{"p2"}, Added: []string{"p2"}, Removed: []string{"p1"}, ChangedBy: a.ID,
			}}, w.eventsSince(commands.StreamClient, "k1", v))
		})
	}
}

func TestChangeCareTeamRefusals(t *testing.T) {
	w := newOrgWorld(t)
	before := w.head()
	change := func(a domain.Actor, client string, team ...string) error {
		_, err := w.org.ChangeCareTeam(w.ctx, orgMeta(a), commands.ChangeCareTeam{ClientID: client, CareTeam: team})
		return err
	}
	for _, a := range []domain.Actor{orgSys, orgIA1, orgAuditor1, orgClient} {
		w.requireRefused(change(a, "k1", "p2"), before, domain.KindForbidden, "forbidden")
	}
	w.requireRefused(change(orgP2, "k1", "p2"), before, domain.KindForbidden, "not-on-care-team")
	w.requireRefused(change(orgCA2, "k1", "p4"), before, domain.KindNotFound, "client-not-found")
	w.requireRefused(change(orgP4, "k1", "p4"), before, domain.KindNotFound, "client-not-found")
	w.requireRefused(change(orgCA1, "nobody", "p1"), before, domain.KindNotFound, "client-not-found")
	w.requireRefused(change(orgCA1, "k1"), before, domain.KindValidation, "invalid-care-team")
	w.requireRefused(change(orgCA1, "k1", "p4"), before, domain.KindValidation, "not-clinic-provider")
	w.requireRefused(change(orgCA1, "k1", "p1", "p3"), before, domain.KindValidation, "provider-inactive")

	w.given(commands.StreamClient, "k1", organization.ClientDeactivated{ClientID: "k1", ClinicID: "c1"})
	before = w.head()
	w.requireRefused(change(orgCA1, "k1", "p2"), before, domain.KindConflict, "client-inactive")
}

func TestChangeCareTeamUnchangedWritesNothing(t *testing.T) {
	w := newOrgWorld(t)
	before := w.head()
	_, err := w.org.ChangeCareTeam(w.ctx, orgMeta(orgCA1), commands.ChangeCareTeam{ClientID: "k1", CareTeam: []string{"p1"}})
	require.NoError(t, err)
	assert.Equal(t, before, w.head())
}

func TestDeactivateAndReactivateClient(t *testing.T) {
	for _, a := range []domain.Actor{orgCA1, orgP1} {
		t.Run(string(a.Role), func(t *testing.T) {
			w := newOrgWorld(t)
			v := w.version(commands.StreamClient, "k1")
			_, err := w.org.DeactivateClient(w.ctx, orgMeta(a), commands.DeactivateClient{ClientID: "k1", Reason: "discharged"})
			require.NoError(t, err)
			_, err = w.org.ReactivateClient(w.ctx, orgMeta(a), commands.ReactivateClient{ClientID: "k1"})
			require.NoError(t, err)
			assert.Equal(t, []domain.Event{
				organization.ClientDeactivated{ClientID: "k1", ClinicID: "c1", Reason: "discharged", By: a.ID},
				organization.ClientReactivated{ClientID: "k1", ClinicID: "c1", By: a.ID},
			}, w.eventsSince(commands.StreamClient, "k1", v))
		})
	}

	w := newOrgWorld(t)
	before := w.head()
	deactivate := func(a domain.Actor, client string) error {
		_, err := w.org.DeactivateClient(w.ctx, orgMeta(a), commands.DeactivateClient{ClientID: client})
		return err
	}
	reactivate := func(a domain.Actor, client string) error {
		_, err := w.org.ReactivateClient(w.ctx, orgMeta(a), commands.ReactivateClient{ClientID: client})
		return err
	}
	w.requireRefused(deactivate(orgAuditor1, "k1"), before, domain.KindForbidden, "forbidden")
	w.requireRefused(reactivate(orgSys, "k1"), before, domain.KindForbidden, "forbidden")
	w.requireRefused(deactivate(orgP2, "k1"), before, domain.KindForbidden, "not-on-care-team")
	w.requireRefused(reactivate(orgP2, "k1"), before, domain.KindForbidden, "not-on-care-team")
	w.requireRefused(deactivate(orgCA2, "k1"), before, domain.KindNotFound, "client-not-found")
	w.requireRefused(reactivate(orgCA2, "k1"), before, domain.KindNotFound, "client-not-found")
	w.requireRefused(reactivate(orgCA1, "k1"), before, domain.KindConflict, "client-active")
}

// A provider deactivated while on a care team can no longer manage the
// client, though the team still lists them.
func TestDeactivatedProviderMayNotManageClients(t *testing.T) {
	w := newOrgWorld(t)
	_, err := w.org.ChangeCareTeam(w.ctx, orgMeta(orgCA1), commands.ChangeCareTeam{ClientID: "k1", CareTeam: []string{"p1", "p2"}})
	require.NoError(t, err)
	w.given(commands.StreamProvider, "p2", organization.ProviderDeactivated{ProviderID: "p2"})
	before := w.head()

	_, err = w.org.ChangeCareTeam(w.ctx, orgMeta(orgP2), commands.ChangeCareTeam{ClientID: "k1", CareTeam: []string{"p2"}})
	w.requireRefused(err, before, domain.KindForbidden, "provider-inactive")
	_, err = w.org.DeactivateClient(w.ctx, orgMeta(orgP2), commands.DeactivateClient{ClientID: "k1"})
	w.requireRefused(err, before, domain.KindForbidden, "provider-inactive")

	_, err = w.org.ChangeCareTeam(w.ctx, orgMeta(orgP1), commands.ChangeCareTeam{ClientID: "k1", CareTeam: []string{"p1"}})
	require.NoError(t, err, "an active provider on the team still may")
}
