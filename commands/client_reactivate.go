package commands

import (
	"context"

	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// ReactivateClient brings a deactivated client back into care. A clinic
// admin of the client's clinic, or a provider on the care team, may.
type ReactivateClient struct {
	ClientID string
}

// ReactivateClient handles ReactivateClient.
func (o *Organization) ReactivateClient(ctx context.Context, m Meta, cmd ReactivateClient) (Result, error) {
	const what = "reactivate the client"
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
			return c.Reactivate(m.Actor.ID)
		})
	return res, err
}
