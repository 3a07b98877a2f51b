package commands_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

func TestCreateInstitute(t *testing.T) {
	w := newOrgWorld(t)
	m := commands.Meta{Actor: orgSys, CommandID: "cmd-1"}
	res, err := w.org.CreateInstitute(w.ctx, m, commands.CreateInstitute{Name: "East"})
	require.NoError(t, err)
	assert.Equal(t, commands.StreamInstitute, res.Stream.Type)
	assert.Equal(t, []domain.Event{organization.InstituteCreated{InstituteID: res.Stream.ID, Name: "East", CreatedBy: "sys"}},
		w.eventsSince(commands.StreamInstitute, res.Stream.ID, 0))

	again, err := w.org.CreateInstitute(w.ctx, m, commands.CreateInstitute{Name: "East"})
	require.NoError(t, err)
	assert.True(t, again.Duplicate, "a retried command id creates no second institute")
	assert.Equal(t, res.Stream, again.Stream)

	other, err := w.org.CreateInstitute(w.ctx, orgMeta(orgSys), commands.CreateInstitute{Name: "West"})
	require.NoError(t, err)
	assert.NotEqual(t, res.Stream.ID, other.Stream.ID)
}

func TestCreateInstituteRefusals(t *testing.T) {
	w := newOrgWorld(t)
	for _, a := range []domain.Actor{orgIA1, orgCA1, orgP1, orgClient, {ID: "", Role: domain.RoleSystemAdmin}} {
		_, err := w.org.CreateInstitute(w.ctx, orgMeta(a), commands.CreateInstitute{Name: "East"})
		w.requireRefused(err, w.head(), domain.KindForbidden, "forbidden")
	}
	before := w.head()
	_, err := w.org.CreateInstitute(w.ctx, orgMeta(orgSys), commands.CreateInstitute{Name: ""})
	w.requireRefused(err, before, domain.KindValidation, "invalid-institute")
	requireField(t, err, "name")
}

func TestAppointAndDismissInstituteAdmin(t *testing.T) {
	w := newOrgWorld(t)
	v := w.version(commands.StreamInstitute, "i1")
	_, err := w.org.AppointInstituteAdmin(w.ctx, orgMeta(orgSys), commands.AppointInstituteAdmin{InstituteID: "i1", UserID: "u7"})
	require.NoError(t, err)
	_, err = w.org.DismissInstituteAdmin(w.ctx, orgMeta(orgSys), commands.DismissInstituteAdmin{InstituteID: "i1", UserID: "ia1"})
	require.NoError(t, err)
	assert.Equal(t, []domain.Event{
		organization.InstituteAdminAppointed{InstituteID: "i1", UserID: "u7"},
		organization.InstituteAdminDismissed{InstituteID: "i1", UserID: "ia1"},
	}, w.eventsSince(commands.StreamInstitute, "i1", v))

	before := w.head()
	_, err = w.org.AppointInstituteAdmin(w.ctx, orgMeta(orgIA2), commands.AppointInstituteAdmin{InstituteID: "i2", UserID: "u8"})
	w.requireRefused(err, before, domain.KindForbidden, "forbidden")
	_, err = w.org.DismissInstituteAdmin(w.ctx, orgMeta(orgCA1), commands.DismissInstituteAdmin{InstituteID: "i1", UserID: "u7"})
	w.requireRefused(err, before, domain.KindForbidden, "forbidden")
	_, err = w.org.AppointInstituteAdmin(w.ctx, orgMeta(orgSys), commands.AppointInstituteAdmin{InstituteID: "nope", UserID: "u8"})
	w.requireRefused(err, before, domain.KindNotFound, "institute-not-found")
	_, err = w.org.DismissInstituteAdmin(w.ctx, orgMeta(orgSys), commands.DismissInstituteAdmin{InstituteID: "nope", UserID: "u8"})
	w.requireRefused(err, before, domain.KindNotFound, "institute-not-found")
	_, err = w.org.AppointInstituteAdmin(w.ctx, orgMeta(orgSys), commands.AppointInstituteAdmin{InstituteID: "i1", UserID: "u7"})
	w.requireRefused(err, before, domain.KindConflict, "already-institute-admin")
	_, err = w.org.DismissInstituteAdmin(w.ctx, orgMeta(orgSys), commands.DismissInstituteAdmin{InstituteID: "i1", UserID: "ia1"})
	w.requireRefused(err, before, domain.KindConflict, "not-institute-admin")
	_, err = w.org.AppointInstituteAdmin(w.ctx, orgMeta(orgSys), commands.AppointInstituteAdmin{InstituteID: "i1", UserID: ""})
	w.requireRefused(err, before, domain.KindValidation, "invalid-institute-admin")
	requireField(t, err, "userId")
}
