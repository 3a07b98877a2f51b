package commands

import (
	"context"

	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// ChangeCareTeam replaces a client's care team with providers of the
// client's clinic. A clinic admin of the clinic, or a provider on the
// client's current team, may.
type ChangeCareTeam struct {
	ClientID string
	CareTeam []string
}

// ChangeCareTeam handles ChangeCareTeam.
func (o *Organization) ChangeCareTeam(ctx context.Context, m Meta, cmd ChangeCareTeam) (Result, error) {
	const what = "change the care team"
	_, clinic, err := o.clientFor(ctx, m.Actor, cmd.ClientID, what)
	if err != nil {
		return Result{}, err
	}
	roster, err := o.roster(ctx, clinic, cmd.CareTeam)
	if err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamClient, cmd.ClientID), clinic.ID(), m, organization.NewClient,
		func(c *organization.Client) error {
			// The team may have changed since the check: decide on this state.
			if err := mayManageClient(m.Actor, clinic, c, what); err != nil {
				return err
			}
			return c.ChangeCareTeam(roster, cmd.CareTeam, m.Actor.ID)
		})
	return res, err
}
