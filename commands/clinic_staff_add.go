package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// AddStaff gives a user a staff role (clinic_admin or auditor) in a
// clinic. A system admin, an admin of the clinic's institute or a clinic
// admin of the clinic may. Providers join with JoinClinic instead.
type AddStaff struct {
	ClinicID string
	UserID   string
	Role     domain.Role
}

// AddStaff handles AddStaff.
func (o *Organization) AddStaff(ctx context.Context, m Meta, cmd AddStaff) (Result, error) {
	if _, err := o.clinicFor(ctx, m.Actor, cmd.ClinicID, "add clinic staff", clinicAdmins()...); err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamClinic, cmd.ClinicID), cmd.ClinicID, m, organization.NewClinic,
		func(c *organization.Clinic) error {
			// Re-checked on the state the decision is made on: a concurrent
			// removal of the actor's role must win.
			if err := o.inClinic(ctx, m.Actor, c); err != nil {
				return err
			}
			return c.AddStaff(cmd.UserID, cmd.Role)
		})
	return res, err
}
