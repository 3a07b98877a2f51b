package organization_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

func assertRefused(t *testing.T, err error, kind domain.Kind, slug string) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, kind, domain.KindOf(err), "kind of %v", err)
	assert.ErrorIs(t, err, &domain.Error{Slug: slug})
}

type replayer interface{ Replay(domain.Event) }

func given[A replayer](a A, events ...domain.Event) A {
	for _, e := range events {
		a.Replay(e)
	}
	return a
}

func institute() *organization.Institute {
	return given(organization.NewInstitute(), organization.InstituteCreated{InstituteID: "i1", Name: "North"})
}

func clinic(events ...domain.Event) *organization.Clinic {
	return given(organization.NewClinic(), append([]domain.Event{organization.ClinicCreated{ClinicID: "c1", InstituteID: "i1", Name: "Main"}}, events...)...)
}

func provider(id string, events ...domain.Event) *organization.Provider {
	return given(organization.NewProvider(), append([]domain.Event{organization.ProviderRegistered{ProviderID: id, DisplayName: "Dr " + id}}, events...)...)
}

func TestEventsAreUniqueAndNamed(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range organization.Events() {
		name := e.EventType()
		assert.NotEmpty(t, name)
		assert.False(t, seen[name], "%s listed twice", name)
		seen[name] = true
	}
	assert.Len(t, seen, 17)
	for _, name := range []string{"institute.created", "clinic.created", "clinic.provider_joined", "client.registered", "client.care_team_changed"} {
		assert.True(t, seen[name], name)
	}
}

func TestInstitute(t *testing.T) {
	i := organization.NewInstitute()
	require.NoError(t, i.Create("i1", "  North  ", "sys"))
	assert.Equal(t, []domain.Event{organization.InstituteCreated{InstituteID: "i1", Name: "North", CreatedBy: "sys"}}, i.Pending())

	assertRefused(t, institute().Create("i1", "North", "sys"), domain.KindConflict, "institute-exists")
	assertRefused(t, organization.NewInstitute().Create("i1", " ", "sys"), domain.KindValidation, "invalid-institute")
	assertRefused(t, organization.NewInstitute().Create("", "North", "sys"), domain.KindValidation, "invalid-institute")
	long := make([]byte, 201)
	for k := range long {
		long[k] = 'a'
	}
	assertRefused(t, organization.NewInstitute().Create("i1", string(long), "sys"), domain.KindValidation, "invalid-institute")
}

func TestInstituteAdmins(t *testing.T) {
	i := institute()
	require.NoError(t, i.AppointAdmin("u1"))
	assert.True(t, i.IsAdmin("u1"))
	assert.Equal(t, []domain.Event{organization.InstituteAdminAppointed{InstituteID: "i1", UserID: "u1"}}, i.Pending())
	assertRefused(t, i.AppointAdmin("u1"), domain.KindConflict, "already-institute-admin")
	assertRefused(t, i.AppointAdmin(""), domain.KindValidation, "invalid-institute-admin")
	assertRefused(t, organization.NewInstitute().AppointAdmin("u1"), domain.KindNotFound, "institute-not-found")

	require.NoError(t, i.DismissAdmin("u1"))
	assert.False(t, i.IsAdmin("u1"))
	assertRefused(t, i.DismissAdmin("u1"), domain.KindConflict, "not-institute-admin")
	assertRefused(t, organization.NewInstitute().DismissAdmin("u1"), domain.KindNotFound, "institute-not-found")
}

func TestCreateClinic(t *testing.T) {
	c := organization.NewClinic()
	require.NoError(t, c.Create("c1", institute(), "Main", "sys"))
	assert.Equal(t, []domain.Event{organization.ClinicCreated{ClinicID: "c1", InstituteID: "i1", Name: "Main", CreatedBy: "sys"}}, c.Pending())
	assert.Equal(t, "i1", c.InstituteID())

	assertRefused(t, clinic().Create("c1", institute(), "Main", "sys"), domain.KindConflict, "clinic-exists")
	assertRefused(t, organization.NewClinic().Create("c1", organization.NewInstitute(), "Main", "sys"), domain.KindNotFound, "institute-not-found")
	assertRefused(t, organization.NewClinic().Create("c1", nil, "Main", "sys"), domain.KindNotFound, "institute-not-found")
	assertRefused(t, organization.NewClinic().Create("c1", institute(), "", "sys"), domain.KindValidation, "invalid-clinic")
	assertRefused(t, organization.NewClinic().Create("", institute(), "Main", "sys"), domain.KindValidation, "invalid-clinic")
}

func TestClinicStaff(t *testing.T) {
	c := clinic()
	require.NoError(t, c.AddStaff("a1", domain.RoleClinicAdmin))
	require.NoError(t, c.AddStaff("au", domain.RoleAuditor))
	assert.Equal(t, []domain.Event{
		organization.ClinicStaffAdded{ClinicID: "c1", UserID: "a1", Role: domain.RoleClinicAdmin},
		organization.ClinicStaffAdded{ClinicID: "c1", UserID: "au", Role: domain.RoleAuditor},
	}, c.Pending())
	assert.True(t, c.Has("a1", domain.RoleClinicAdmin))
	assert.False(t, c.Has("a1", domain.RoleAuditor))
	assert.True(t, c.IsMember("au"))

	assertRefused(t, c.AddStaff("a1", domain.RoleClinicAdmin), domain.KindConflict, "staff-role-held")
	assertRefused(t, c.AddStaff("p1", domain.RoleProvider), domain.KindValidation, "invalid-staff-role")
	assertRefused(t, c.AddStaff("x", domain.RoleSystemAdmin), domain.KindValidation, "invalid-staff-role")
	assertRefused(t, c.AddStaff("", domain.RoleAuditor), domain.KindValidation, "invalid-staff")
	assertRefused(t, organization.NewClinic().AddStaff("a1", domain.RoleAuditor), domain.KindNotFound, "clinic-not-found")
}

func TestRemoveStaffKeepsLastClinicAdmin(t *testing.T) {
	c := clinic(
		organization.ClinicStaffAdded{ClinicID: "c1", UserID: "a1", Role: domain.RoleClinicAdmin},
		organization.ClinicStaffAdded{ClinicID: "c1", UserID: "a2", Role: domain.RoleClinicAdmin},
	)
	require.NoError(t, c.RemoveStaff("a1", domain.RoleClinicAdmin))
	assert.False(t, c.IsMember("a1"))
	assertRefused(t, c.RemoveStaff("a2", domain.RoleClinicAdmin), domain.KindConflict, "last-clinic-admin")
	assertRefused(t, c.RemoveStaff("a1", domain.RoleClinicAdmin), domain.KindConflict, "staff-role-not-held")
	assertRefused(t, c.RemoveStaff("p1", domain.RoleProvider), domain.KindValidation, "invalid-staff-role")
	assertRefused(t, organization.NewClinic().RemoveStaff("a1", domain.RoleAuditor), domain.KindNotFound, "clinic-not-found")
}

func TestProviderJoinsAndLeavesClinics(t *testing.T) {
	p := provider("p1")
	c := clinic()
	require.NoError(t, c.JoinProvider(p))
	assert.Equal(t, []domain.Event{organization.ClinicProviderJoined{ClinicID: "c1", ProviderID: "p1"}}, c.Pending())
	assert.True(t, c.IsProvider("p1"))
	assert.Equal(t, []string{"p1"}, c.Members(domain.RoleProvider))

	other := given(organization.NewClinic(), organization.ClinicCreated{ClinicID: "c2", InstituteID: "i1", Name: "Second"})
	require.NoError(t, other.JoinProvider(p), "a provider can belong to several clinics")

	assertRefused(t, c.JoinProvider(p), domain.KindConflict, "already-clinic-provider")
	assertRefused(t, c.JoinProvider(organization.NewProvider()), domain.KindNotFound, "provider-not-found")
	assertRefused(t, c.JoinProvider(provider("p2", organization.ProviderDeactivated{ProviderID: "p2"})), domain.KindConflict, "provider-inactive")
	assertRefused(t, organization.NewClinic().JoinProvider(p), domain.KindNotFound, "clinic-not-found")

	require.NoError(t, c.LeaveProvider("p1"))
	assert.False(t, c.IsProvider("p1"))
	assert.True(t, other.IsProvider("p1"))
	assertRefused(t, c.LeaveProvider("p1"), domain.KindConflict, "not-clinic-provider")
	assertRefused(t, organization.NewClinic().LeaveProvider("p1"), domain.KindNotFound, "clinic-not-found")
}

func TestProvider(t *testing.T) {
	p := organization.NewProvider()
	require.NoError(t, p.Register("p1", "Dr Who", "a1"))
	assert.Equal(t, []domain.Event{organization.ProviderRegistered{ProviderID: "p1", DisplayName: "Dr Who", RegisteredBy: "a1"}}, p.Pending())
	assert.True(t, p.Active())
	assertRefused(t, p.Register("p1", "Dr Who", "a1"), domain.KindConflict, "provider-exists")
	assertRefused(t, organization.NewProvider().Register("p1", "", "a1"), domain.KindValidation, "invalid-provider")
	assertRefused(t, organization.NewProvider().Register("", "Dr", "a1"), domain.KindValidation, "invalid-provider")

	require.NoError(t, p.Deactivate("left the service"))
	assert.False(t, p.Active())
	assertRefused(t, p.Deactivate(""), domain.KindConflict, "provider-inactive")
	require.NoError(t, p.Reactivate())
	assert.True(t, p.Active())
	assertRefused(t, p.Reactivate(), domain.KindConflict, "provider-active")
	assertRefused(t, organization.NewProvider().Deactivate(""), domain.KindNotFound, "provider-not-found")
	assertRefused(t, organization.NewProvider().Reactivate(), domain.KindNotFound, "provider-not-found")
	long := make([]byte, 1001)
	assertRefused(t, provider("p3").Deactivate(string(long)), domain.KindValidation, "invalid-provider")
}
