package commands

import (
	"context"

	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// RegisterProvider registers a care provider and makes them a member of
// the clinic that registers them. A system admin, an admin of the clinic's
// institute or a clinic admin of the clinic may.
type RegisterProvider struct {
	ClinicID    string
	DisplayName string
}

// ProviderRegistration is what RegisterProvider wrote: the provider's
// stream and the clinic membership.
type ProviderRegistration struct {
	ProviderID string
	Provider   Result
	Membership Result
}

// RegisterProvider handles RegisterProvider. It writes two streams, the
// provider and then the clinic; both appends carry the command id, so a
// retry after a failure in between completes the membership without a
// second provider.
func (o *Organization) RegisterProvider(ctx context.Context, m Meta, cmd RegisterProvider) (ProviderRegistration, error) {
	if _, err := o.clinicFor(ctx, m.Actor, cmd.ClinicID, "register providers", clinicAdmins()...); err != nil {
		return ProviderRegistration{}, err
	}
	m = o.d.prepared(m)
	id := newAggregateID(m, StreamProvider)
	provRes, provider, err := execute(ctx, o.d, eventstore.NewStreamID(StreamProvider, id), cmd.ClinicID, m, organization.NewProvider,
		func(p *organization.Provider) error { return p.Register(id, cmd.DisplayName, m.Actor.ID) })
	if err != nil {
		return ProviderRegistration{}, err
	}
	joinRes, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamClinic, cmd.ClinicID), cmd.ClinicID, m, organization.NewClinic,
		func(c *organization.Clinic) error {
			if err := o.inClinic(ctx, m.Actor, c); err != nil {
				return err
			}
			return c.JoinProvider(provider)
		})
	if err != nil {
		return ProviderRegistration{}, err
	}
	return ProviderRegistration{ProviderID: id, Provider: provRes, Membership: joinRes}, nil
}
