package commands

import (
	"context"

	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// DeactivateClient ends a client's care (discharge). A clinic admin of the
// client's clinic, or a provider on the care team, may.
type DeactivateClient struct {
	ClientID string
	Reason   string
}

// DeactivateClient handles DeactivateClient.
func (o *Organization) DeactivateClient(ctx context.Context, m Meta, cmd DeactivateClient) (Result, error) {
	const what = "deactivate the client"
	_, clinic, err := o.clientFor(ctx, m.Actor, cmd.ClientID, what)
	if err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamClient, cmd.ClientID), clinic.ID(), m, organization.NewClient,
		func(c *organization.Client) error {
			if err := mayManageClient(m.Actor, clinic, c, what); err != nil {
				return err
			}
			return c.Deactivate(cmd.Reason, m.Actor.ID)
		})
	return res, err
}
