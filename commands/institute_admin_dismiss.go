package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// DismissInstituteAdmin removes a user from an institute's admins. Only a
// system admin may.
type DismissInstituteAdmin struct {
	InstituteID string
	UserID      string
}

// DismissInstituteAdmin handles DismissInstituteAdmin.
func (o *Organization) DismissInstituteAdmin(ctx context.Context, m Meta, cmd DismissInstituteAdmin) (Result, error) {
	if err := requireRole(m.Actor, "dismiss institute admins", domain.RoleSystemAdmin); err != nil {
		return Result{}, err
	}
	if _, err := o.loadInstitute(ctx, cmd.InstituteID); err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamInstitute, cmd.InstituteID), "", m, organization.NewInstitute,
		func(i *organization.Institute) error { return i.DismissAdmin(cmd.UserID) })
	return res, err
}
