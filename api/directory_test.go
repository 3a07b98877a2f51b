package api

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
)

func TestDirectoryFollowsMembershipsAsTheyChange(t *testing.T) {
	ctx := context.Background()
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	store := memory.New(eventstore.Options{Types: reg})
	t.Cleanup(func() { _ = store.Close() })
	org := commands.NewOrganization(commands.Deps{Store: store, Codec: reg, Clock: newTestClock().Now,
		NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }})
	dir := NewDirectory(store, reg)
	dir.batch = 2 // several reads per catch-up
	root := commands.Meta{Actor: domain.Actor{ID: "root", Role: domain.RoleSystemAdmin}}
	clinics := func(id string, role domain.Role) []string {
		t.Helper()
		out, err := dir.Clinics(ctx, domain.Actor{ID: id, Role: role})
		require.NoError(t, err)
		return out
	}
	must := func(_ commands.Result, err error) {
		t.Helper()
		require.NoError(t, err)
	}

	inst, err := org.CreateInstitute(ctx, root, commands.CreateInstitute{Name: "North"})
	require.NoError(t, err)
	instID := inst.Stream.ID
	c1, err := org.CreateClinic(ctx, root, commands.CreateClinic{InstituteID: instID, Name: "One"})
	require.NoError(t, err)
	c2, err := org.CreateClinic(ctx, root, commands.CreateClinic{InstituteID: instID, Name: "Two"})
	require.NoError(t, err)
	one, two := c1.Stream.ID, c2.Stream.ID
	assert.Empty(t, clinics("u1", domain.RoleClinicAdmin), "an answer before the memberships exist")

	must(org.AddStaff(ctx, root, commands.AddStaff{ClinicID: one, UserID: "u1", Role: domain.RoleClinicAdmin}))
	must(org.AddStaff(ctx, root, commands.AddStaff{ClinicID: two, UserID: "u1", Role: domain.RoleClinicAdmin}))
	must(org.AddStaff(ctx, root, commands.AddStaff{ClinicID: two, UserID: "u2", Role: domain.RoleClinicAdmin}))
	must(org.AddStaff(ctx, root, commands.AddStaff{ClinicID: two, UserID: "u1", Role: domain.RoleAuditor}))
	assert.ElementsMatch(t, []string{one, two}, clinics("u1", domain.RoleClinicAdmin))
	assert.Equal(t, []string{two}, clinics("u1", domain.RoleAuditor), "roles are held per clinic")
	must(org.RemoveStaff(ctx, root, commands.RemoveStaff{ClinicID: two, UserID: "u1", Role: domain.RoleClinicAdmin}))
	assert.Equal(t, []string{one}, clinics("u1", domain.RoleClinicAdmin), "a removal is seen at once")

	must(org.AppointInstituteAdmin(ctx, root, commands.AppointInstituteAdmin{InstituteID: instID, UserID: "ia"}))
	assert.ElementsMatch(t, []string{one, two}, clinics("ia", domain.RoleInstituteAdmin))
	assert.Empty(t, clinics("ia", domain.RoleClinicAdmin), "the role the actor acts in counts")
	must(org.DismissInstituteAdmin(ctx, root, commands.DismissInstituteAdmin{InstituteID: instID, UserID: "ia"}))
	assert.Empty(t, clinics("ia", domain.RoleInstituteAdmin))

	prov, err := org.RegisterProvider(ctx, root, commands.RegisterProvider{ClinicID: one, DisplayName: "Dr One"})
	require.NoError(t, err)
	must(org.JoinClinic(ctx, root, commands.JoinClinic{ClinicID: two, ProviderID: prov.ProviderID}))
	assert.ElementsMatch(t, []string{one, two}, clinics(prov.ProviderID, domain.RoleProvider))
	must(org.LeaveClinic(ctx, root, commands.LeaveClinic{ClinicID: one, ProviderID: prov.ProviderID}))
	assert.Equal(t, []string{two}, clinics(prov.ProviderID, domain.RoleProvider))

	admin := commands.Meta{Actor: domain.Actor{ID: "u2", Role: domain.RoleClinicAdmin}}
	client, err := org.RegisterClient(ctx, admin, commands.RegisterClient{ClinicID: two, DisplayName: "Client", CareTeam: []string{prov.ProviderID}})
	require.NoError(t, err)
	assert.Equal(t, []string{two}, clinics(client.Stream.ID, domain.RoleClient))
	assert.Empty(t, clinics("root", domain.RoleSystemAdmin))

	book, err := org.DefineBook(ctx, admin, commands.DefineBook{ClinicID: two, Spec: questionnaire("Sleep")})
	require.NoError(t, err)
	must(org.ReviseBook(ctx, admin, commands.ReviseBook{ClinicID: two, BookID: book.Stream.ID, Spec: questionnaire("Sleep v2")}))
	list, err := dir.ClinicBooks(ctx, []string{two})
	require.NoError(t, err)
	assert.Equal(t, []BookSummary{{ID: book.Stream.ID, ClinicID: two, Kind: books.KindQuestionnaire, Title: "Sleep v2", Version: 2}}, list)
	list, err = dir.ClinicBooks(ctx, []string{one})
	require.NoError(t, err)
	assert.Empty(t, list)
	owner, ok, err := dir.BookClinic(ctx, book.Stream.ID)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, two, owner)
	_, ok, err = dir.BookClinic(ctx, "nope")
	require.NoError(t, err)
	assert.False(t, ok)
}

// A directory started after the events exist reads them all, however many
// reads that takes.
func TestDirectoryCatchesUpFromTheStart(t *testing.T) {
	ctx := context.Background()
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	store := memory.New(eventstore.Options{Types: reg})
	t.Cleanup(func() { _ = store.Close() })
	org := commands.NewOrganization(commands.Deps{Store: store, Codec: reg, Clock: newTestClock().Now,
		NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }})
	root := commands.Meta{Actor: domain.Actor{ID: "root", Role: domain.RoleSystemAdmin}}
	inst, err := org.CreateInstitute(ctx, root, commands.CreateInstitute{Name: "North"})
	require.NoError(t, err)
	want := []string{}
	for range 7 {
		c, err := org.CreateClinic(ctx, root, commands.CreateClinic{InstituteID: inst.Stream.ID, Name: "Clinic"})
		require.NoError(t, err)
		_, err = org.AddStaff(ctx, root, commands.AddStaff{ClinicID: c.Stream.ID, UserID: "u1", Role: domain.RoleAuditor})
		require.NoError(t, err)
		want = append(want, c.Stream.ID)
	}
	dir := NewDirectory(store, reg)
	dir.batch = 3
	got, err := dir.Clinics(ctx, domain.Actor{ID: "u1", Role: domain.RoleAuditor})
	require.NoError(t, err)
	assert.ElementsMatch(t, want, got)
}

// Sign-ins ask the directory while commands write: answers stay correct
// and the race detector stays quiet.
func TestDirectoryAnswersWhileEventsArrive(t *testing.T) {
	ctx := context.Background()
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	store := memory.New(eventstore.Options{Types: reg})
	t.Cleanup(func() { _ = store.Close() })
	org := commands.NewOrganization(commands.Deps{Store: store, Codec: reg, Clock: newTestClock().Now,
		NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }})
	dir := NewDirectory(store, reg)
	root := commands.Meta{Actor: domain.Actor{ID: "root", Role: domain.RoleSystemAdmin}}
	inst, err := org.CreateInstitute(ctx, root, commands.CreateInstitute{Name: "North"})
	require.NoError(t, err)

	const clinics = 20
	done := make(chan error, 1)
	go func() {
		for range clinics {
			c, err := org.CreateClinic(ctx, root, commands.CreateClinic{InstituteID: inst.Stream.ID, Name: "Clinic"})
			if err == nil {
				_, err = org.AddStaff(ctx, root, commands.AddStaff{ClinicID: c.Stream.ID, UserID: "u1", Role: domain.RoleAuditor})
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	last := 0
	for finished := false; !finished; {
		select {
		case err := <-done:
			require.NoError(t, err)
			finished = true
		default:
		}
		got, err := dir.Clinics(ctx, domain.Actor{ID: "u1", Role: domain.RoleAuditor})
		require.NoError(t, err)
		assert.GreaterOrEqual(t, len(got), last, "memberships only grow here")
		last = len(got)
	}
	got, err := dir.Clinics(ctx, domain.Actor{ID: "u1", Role: domain.RoleAuditor})
	require.NoError(t, err)
	assert.Len(t, got, clinics, "after the last write, every clinic")
}
