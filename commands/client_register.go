package commands

import (
	"context"

	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// RegisterClient takes on a client in a clinic with a first care team of
// that clinic's active providers. A clinic admin or a provider of the
// clinic may.
type RegisterClient struct {
	ClinicID    string
	DisplayName string // PHI
	CareTeam    []string
}

// RegisterClient handles RegisterClient; the new id is Result.Stream.ID.
func (o *Organization) RegisterClient(ctx context.Context, m Meta, cmd RegisterClient) (Result, error) {
	clinic, err := o.clinicFor(ctx, m.Actor, cmd.ClinicID, "register clients", clientRoles()...)
	if err != nil {
		return Result{}, err
	}
	roster, err := o.roster(ctx, clinic, cmd.CareTeam)
	if err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	id := newAggregateID(m, StreamClient)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamClient, id), cmd.ClinicID, m, organization.NewClient,
		func(c *organization.Client) error {
			return c.Register(id, roster, cmd.DisplayName, cmd.CareTeam, m.Actor.ID)
		})
	return res, err
}
