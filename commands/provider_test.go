package commands_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

func TestRegisterProvider(t *testing.T) {
	for _, a := range []domain.Actor{orgSys, orgIA1, orgCA1} {
		t.Run(string(a.Role), func(t *testing.T) {
			w := newOrgWorld(t)
			v := w.version(commands.StreamClinic, "c1")
			m := commands.Meta{Actor: a, CommandID: "register-1"}
			reg, err := w.org.RegisterProvider(w.ctx, m, commands.RegisterProvider{ClinicID: "c1", DisplayName: "Dr New"})
			require.NoError(t, err)
			assert.Equal(t, reg.ProviderID, reg.Provider.Stream.ID)
			assert.Equal(t, []domain.Event{organization.ProviderRegistered{ProviderID: reg.ProviderID, DisplayName: "Dr New", RegisteredBy: a.ID}},
				w.eventsSince(commands.StreamProvider, reg.ProviderID, 0))
			assert.Equal(t, []domain.Event{organization.ClinicProviderJoined{ClinicID: "c1", ProviderID: reg.ProviderID}},
				w.eventsSince(commands.StreamClinic, "c1", v))

			again, err := w.org.RegisterProvider(w.ctx, m, commands.RegisterProvider{ClinicID: "c1", DisplayName: "Dr New"})
			require.NoError(t, err)
			assert.Equal(t, reg.ProviderID, again.ProviderID)
			assert.True(t, again.Provider.Duplicate)
			assert.True(t, again.Membership.Duplicate)
			assert.Len(t, w.eventsSince(commands.StreamClinic, "c1", v), 1, "the retry joined nothing twice")
		})
	}
}

func TestRegisterProviderRefusals(t *testing.T) {
	w := newOrgWorld(t)
	before := w.head()
	reg := func(a domain.Actor, cmd commands.RegisterProvider) error {
		_, err := w.org.RegisterProvider(w.ctx, orgMeta(a), cmd)
		return err
	}
	ok := commands.RegisterProvider{ClinicID: "c1", DisplayName: "Dr New"}
	w.requireRefused(reg(orgP1, ok), before, domain.KindForbidden, "forbidden")
	w.requireRefused(reg(orgAuditor1, ok), before, domain.KindForbidden, "forbidden")
	w.requireRefused(reg(orgCA2, ok), before, domain.KindNotFound, "clinic-not-found")
	w.requireRefused(reg(orgIA2, ok), before, domain.KindNotFound, "clinic-not-found")
	w.requireRefused(reg(orgSys, commands.RegisterProvider{ClinicID: "nope", DisplayName: "Dr"}), before, domain.KindNotFound, "clinic-not-found")
	err := reg(orgCA1, commands.RegisterProvider{ClinicID: "c1"})
	w.requireRefused(err, before, domain.KindValidation, "invalid-provider")
	requireField(t, err, "displayName")
}

func TestJoinClinic(t *testing.T) {
	w := newOrgWorld(t)
	v := w.version(commands.StreamClinic, "c1")
	_, err := w.org.JoinClinic(w.ctx, orgMeta(orgCA1), commands.JoinClinic{ClinicID: "c1", ProviderID: "p4"})
	require.NoError(t, err, "a provider of c2 can also join c1")
	assert.Equal(t, []domain.Event{organization.ClinicProviderJoined{ClinicID: "c1", ProviderID: "p4"}},
		w.eventsSince(commands.StreamClinic, "c1", v))

	before := w.head()
	join := func(a domain.Actor, clinic, provider string) error {
		_, err := w.org.JoinClinic(w.ctx, orgMeta(a), commands.JoinClinic{ClinicID: clinic, ProviderID: provider})
		return err
	}
	w.requireRefused(join(orgP1, "c1", "p5"), before, domain.KindForbidden, "forbidden")
	w.requireRefused(join(domain.Actor{ID: "p5", Role: domain.RoleProvider}, "c1", "p5"), before, domain.KindForbidden, "forbidden")
	w.requireRefused(join(orgCA2, "c1", "p5"), before, domain.KindNotFound, "clinic-not-found")
	w.requireRefused(join(orgCA1, "c1", "nobody"), before, domain.KindNotFound, "provider-not-found")
	w.requireRefused(join(orgCA1, "c1", "p1"), before, domain.KindConflict, "already-clinic-provider")
	w.requireRefused(join(orgCA2, "c2", "p3"), before, domain.KindConflict, "provider-inactive")
}

func TestLeaveClinic(t *testing.T) {
	for _, a := range []domain.Actor{orgSys, orgIA1, orgCA1, orgP2} {
		t.Run(string(a.Role), func(t *testing.T) {
			w := newOrgWorld(t)
			v := w.version(commands.StreamClinic, "c1")
			_, err := w.org.LeaveClinic(w.ctx, orgMeta(a), commands.LeaveClinic{ClinicID: "c1", ProviderID: "p2"})
			require.NoError(t, err)
			assert.Equal(t, []domain.Event{organization.ClinicProviderLeft{ClinicID: "c1", ProviderID: "p2"}},
				w.eventsSince(commands.StreamClinic, "c1", v))
		})
	}

	w := newOrgWorld(t)
	before := w.head()
	leave := func(a domain.Actor, clinic, provider string) error {
		_, err := w.org.LeaveClinic(w.ctx, orgMeta(a), commands.LeaveClinic{ClinicID: clinic, ProviderID: provider})
		return err
	}
	w.requireRefused(leave(orgP1, "c1", "p2"), before, domain.KindForbidden, "forbidden")
	w.requireRefused(leave(orgAuditor1, "c1", "p2"), before, domain.KindForbidden, "forbidden")
	w.requireRefused(leave(orgP4, "c1", "p4"), before, domain.KindNotFound, "clinic-not-found")
	w.requireRefused(leave(orgCA2, "c1", "p2"), before, domain.KindNotFound, "clinic-not-found")
	w.requireRefused(leave(orgCA1, "c1", "p4"), before, domain.KindConflict, "not-clinic-provider")
}

func TestDeactivateAndReactivateProvider(t *testing.T) {
	w := newOrgWorld(t)
	v := w.version(commands.StreamProvider, "p2")
	_, err := w.org.DeactivateProvider(w.ctx, orgMeta(orgSys), commands.DeactivateProvider{ProviderID: "p2", Reason: "left"})
	require.NoError(t, err)
	_, err = w.org.ReactivateProvider(w.ctx, orgMeta(orgSys), commands.ReactivateProvider{ProviderID: "p2"})
	require.NoError(t, err)
	assert.Equal(t, []domain.Event{
		organization.ProviderDeactivated{ProviderID: "p2", Reason: "left"},
		organization.ProviderReactivated{ProviderID: "p2"},
	}, w.eventsSince(commands.StreamProvider, "p2", v))

	before := w.head()
	for _, a := range []domain.Actor{orgIA1, orgCA1, orgP2} {
		_, err = w.org.DeactivateProvider(w.ctx, orgMeta(a), commands.DeactivateProvider{ProviderID: "p2"})
		w.requireRefused(err, before, domain.KindForbidden, "forbidden")
		_, err = w.org.ReactivateProvider(w.ctx, orgMeta(a), commands.ReactivateProvider{ProviderID: "p3"})
		w.requireRefused(err, before, domain.KindForbidden, "forbidden")
	}
	_, err = w.org.DeactivateProvider(w.ctx, orgMeta(orgSys), commands.DeactivateProvider{ProviderID: "nobody"})
	w.requireRefused(err, before, domain.KindNotFound, "provider-not-found")
	_, err = w.org.ReactivateProvider(w.ctx, orgMeta(orgSys), commands.ReactivateProvider{ProviderID: "nobody"})
	w.requireRefused(err, before, domain.KindNotFound, "provider-not-found")
	_, err = w.org.DeactivateProvider(w.ctx, orgMeta(orgSys), commands.DeactivateProvider{ProviderID: "p3"})
	w.requireRefused(err, before, domain.KindConflict, "provider-inactive")
	_, err = w.org.ReactivateProvider(w.ctx, orgMeta(orgSys), commands.ReactivateProvider{ProviderID: "p1"})
	w.requireRefused(err, before, domain.KindConflict, "provider-active")
}
