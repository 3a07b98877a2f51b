package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// LeaveClinic ends a provider's membership of a clinic. The clinic's
// admins (system, institute, clinic admin) may, and so may the provider
// themself; another provider may not.
type LeaveClinic struct {
	ClinicID   string
	ProviderID string
}

// LeaveClinic handles LeaveClinic.
func (o *Organization) LeaveClinic(ctx context.Context, m Meta, cmd LeaveClinic) (Result, error) {
	allowed := append(clinicAdmins(), domain.RoleProvider)
	if _, err := o.clinicFor(ctx, m.Actor, cmd.ClinicID, "remove providers from a clinic", allowed...); err != nil {
		return Result{}, err
	}
	if m.Actor.Is(domain.RoleProvider) && m.Actor.ID != cmd.ProviderID {
		return Result{}, domain.Forbidden("forbidden", "a provider may only leave a clinic themself")
	}
	m = o.d.prepared(m)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamClinic, cmd.ClinicID), cmd.ClinicID, m, organization.NewClinic,
		func(c *organization.Clinic) error {
			if err := o.inClinic(ctx, m.Actor, c); err != nil {
				return err
			}
			return c.LeaveProvider(cmd.ProviderID)
		})
	return res, err
}
