package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// RemoveStaff takes a staff role (clinic_admin or auditor) away from a
// user in a clinic. The same actors as AddStaff may; the last clinic admin
// cannot be removed.
type RemoveStaff struct {
	ClinicID string
	UserID   string
	Role     domain.Role
}

// RemoveStaff handles RemoveStaff.
func (o *Organization) RemoveStaff(ctx context.Context, m Meta, cmd RemoveStaff) (Result, error) {
	if _, err := o.clinicFor(ctx, m.Actor, cmd.ClinicID, "remove clinic staff", clinicAdmins()...); err != nil {
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
			return c.RemoveStaff(cmd.UserID, cmd.Role)
		})
	return res, err
}
