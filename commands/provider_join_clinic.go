package commands

import (
	"context"

	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// JoinClinic makes a registered, active provider a member of one more
// clinic. A system admin, an admin of the clinic's institute or a clinic
// admin of the clinic may: a provider is taken on by the clinic, never
// joins on their own.
type JoinClinic struct {
	ClinicID   string
	ProviderID string
}

// JoinClinic handles JoinClinic.
func (o *Organization) JoinClinic(ctx context.Context, m Meta, cmd JoinClinic) (Result, error) {
	if _, err := o.clinicFor(ctx, m.Actor, cmd.ClinicID, "add providers to a clinic", clinicAdmins()...); err != nil {
		return Result{}, err
	}
	provider, err := o.loadProvider(ctx, cmd.ProviderID)
	if err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamClinic, cmd.ClinicID), cmd.ClinicID, m, organization.NewClinic,
		func(c *organization.Clinic) error {
			if err := o.inClinic(ctx, m.Actor, c); err != nil {
				return err
			}
			return c.JoinProvider(provider)
		})
	return res, err
}
