package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// AppointInstituteAdmin makes a user an admin of an institute. Only a
// system admin may.
type AppointInstituteAdmin struct {
	InstituteID string
	UserID      string
}

// AppointInstituteAdmin handles AppointInstituteAdmin.
func (o *Organization) AppointInstituteAdmin(ctx context.Context, m Meta, cmd AppointInstituteAdmin) (Result, error) {
	if err := requireRole(m.Actor, "appoint institute admins", domain.RoleSystemAdmin); err != nil {
		return Result{}, err
	}
	if _, err := o.loadInstitute(ctx, cmd.InstituteID); err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamInstitute, cmd.InstituteID), "", m, organization.NewInstitute,
		func(i *organization.Institute) error { return i.AppointAdmin(cmd.UserID) })
	return res, err
}
