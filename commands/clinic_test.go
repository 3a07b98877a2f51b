package commands_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

func TestCreateClinic(t *testing.T) {
	for _, a := range []domain.Actor{orgSys, orgIA1} {
		t.Run(string(a.Role), func(t *testing.T) {
			w := newOrgWorld(t)
			res, err := w.org.CreateClinic(w.ctx, orgMeta(a), commands.CreateClinic{InstituteID: "i1", Name: "New"})
			require.NoError(t, err)
			assert.Equal(t, commands.StreamClinic, res.Stream.Type)
			assert.Equal(t, []domain.Event{organization.ClinicCreated{ClinicID: res.Stream.ID, InstituteID: "i1", Name: "New", CreatedBy: a.ID}},
				w.eventsSince(commands.StreamClinic, res.Stream.ID, 0))
			recs, err := w.store.ReadStream(w.ctx, res.Stream, 1)
			require.NoError(t, err)
			assert.Equal(t, res.Stream.ID, recs[0].Metadata.ClinicID, "the clinic's events carry its id")
			assert.Equal(t, a.ID, recs[0].Metadata.ActorID)
		})
	}
}

func TestCreateClinicRefusals(t *testing.T) {
	w := newOrgWorld(t)
	before := w.head()
	cases := []struct {
		name  string
		actor domain.Actor
		cmd   commands.CreateClinic
		kind  domain.Kind
		slug  string
	}{
		{"clinic admin", orgCA1, commands.CreateClinic{InstituteID: "i1", Name: "X"}, domain.KindForbidden, "forbidden"},
		{"provider", orgP1, commands.CreateClinic{InstituteID: "i1", Name: "X"}, domain.KindForbidden, "forbidden"},
		{"client", orgClient, commands.CreateClinic{InstituteID: "i1", Name: "X"}, domain.KindForbidden, "forbidden"},
		{"admin of another institute", orgIA2, commands.CreateClinic{InstituteID: "i1", Name: "X"}, domain.KindNotFound, "institute-not-found"},
		{"unknown institute", orgSys, commands.CreateClinic{InstituteID: "nope", Name: "X"}, domain.KindNotFound, "institute-not-found"},
		{"no name", orgSys, commands.CreateClinic{InstituteID: "i1", Name: " "}, domain.KindValidation, "invalid-clinic"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := w.org.CreateClinic(w.ctx, orgMeta(c.actor), c.cmd)
			w.requireRefused(err, before, c.kind, c.slug)
		})
	}
}

func TestAddAndRemoveStaff(t *testing.T) {
	for _, a := range []domain.Actor{orgSys, orgIA1, orgCA1} {
		t.Run(string(a.Role), func(t *testing.T) {
			w := newOrgWorld(t)
			v := w.version(commands.StreamClinic, "c1")
			_, err := w.org.AddStaff(w.ctx, orgMeta(a), commands.AddStaff{ClinicID: "c1", UserID: "u9", Role: domain.RoleClinicAdmin})
			require.NoError(t, err)
			_, err = w.org.RemoveStaff(w.ctx, orgMeta(a), commands.RemoveStaff{ClinicID: "c1", UserID: "au1", Role: domain.RoleAuditor})
			require.NoError(t, err)
			assert.Equal(t, []domain.Event{
				organization.ClinicStaffAdded{ClinicID: "c1", UserID: "u9", Role: domain.RoleClinicAdmin},
				organization.ClinicStaffRemoved{ClinicID: "c1", UserID: "au1", Role: domain.RoleAuditor},
			}, w.eventsSince(commands.StreamClinic, "c1", v))
		})
	}
}

func TestStaffRefusals(t *testing.T) {
	w := newOrgWorld(t)
	before := w.head()
	add := func(a domain.Actor, clinic, user string, role domain.Role) error {
		_, err := w.org.AddStaff(w.ctx, orgMeta(a), commands.AddStaff{ClinicID: clinic, UserID: user, Role: role})
		return err
	}
	remove := func(a domain.Actor, clinic, user string, role domain.Role) error {
		_, err := w.org.RemoveStaff(w.ctx, orgMeta(a), commands.RemoveStaff{ClinicID: clinic, UserID: user, Role: role})
		return err
	}
	w.requireRefused(add(orgP1, "c1", "u9", domain.RoleAuditor), before, domain.KindForbidden, "forbidden")
	w.requireRefused(add(orgAuditor1, "c1", "u9", domain.RoleAuditor), before, domain.KindForbidden, "forbidden")
	w.requireRefused(add(orgClient, "c1", "u9", domain.RoleAuditor), before, domain.KindForbidden, "forbidden")
	w.requireRefused(remove(orgP1, "c1", "au1", domain.RoleAuditor), before, domain.KindForbidden, "forbidden")
	w.requireRefused(add(orgCA2, "c1", "u9", domain.RoleAuditor), before, domain.KindNotFound, "clinic-not-found")
	w.requireRefused(add(orgIA2, "c1", "u9", domain.RoleAuditor), before, domain.KindNotFound, "clinic-not-found")
	w.requireRefused(remove(orgCA2, "c1", "au1", domain.RoleAuditor), before, domain.KindNotFound, "clinic-not-found")
	w.requireRefused(add(orgSys, "nope", "u9", domain.RoleAuditor), before, domain.KindNotFound, "clinic-not-found")
	err := add(orgCA1, "c1", "u9", domain.RoleProvider)
	w.requireRefused(err, before, domain.KindValidation, "invalid-staff-role")
	requireField(t, err, "role")
	w.requireRefused(add(orgCA1, "c1", "", domain.RoleAuditor), before, domain.KindValidation, "invalid-staff")
	w.requireRefused(add(orgCA1, "c1", "au1", domain.RoleAuditor), before, domain.KindConflict, "staff-role-held")
	w.requireRefused(remove(orgCA1, "c1", "u9", domain.RoleAuditor), before, domain.KindConflict, "staff-role-not-held")
	w.requireRefused(remove(orgCA1, "c1", "ca1", domain.RoleClinicAdmin), before, domain.KindConflict, "last-clinic-admin")
}

func TestConcurrentStaffChangesAllLand(t *testing.T) {
	w := newOrgWorld(t)
	v := w.version(commands.StreamClinic, "c1")
	const n = 4 // fewer than MaxAttempts: each can lose the race at most n-1 times
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := w.org.AddStaff(w.ctx, orgMeta(orgCA1), commands.AddStaff{ClinicID: "c1", UserID: fmt.Sprintf("u%d", i), Role: domain.RoleAuditor})
			errs <- err
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	assert.Len(t, w.eventsSince(commands.StreamClinic, "c1", v), n)
}
