package commands

import (
	"context"
	"time"

	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// DefaultEmergencyAccess is how long a break-glass grant lasts when the
// command names no duration.
const DefaultEmergencyAccess = time.Hour

// GrantEmergencyAccess breaks the glass: the actor, an admin of the
// client's clinic (a clinic admin there, an institute admin of its
// institute, or a system admin) who is not on the care team, gets read
// access to the client's record for Duration (1 minute to 24 hours; 0
// means DefaultEmergencyAccess), for Reason. It is recorded on the
// client's stream, so it is audited and shows in the care team's inbox.
type GrantEmergencyAccess struct {
	ClientID string
	Reason   string
	Duration time.Duration
}

// EmergencyAccessGrant is what a grant wrote.
type EmergencyAccessGrant struct {
	Result
	GrantID   string
	ExpiresAt time.Time
}

// GrantEmergencyAccess handles GrantEmergencyAccess.
func (o *Organization) GrantEmergencyAccess(ctx context.Context, m Meta, cmd GrantEmergencyAccess) (EmergencyAccessGrant, error) {
	const what = "grant emergency access"
	if err := requireRole(m.Actor, what, clinicAdmins()...); err != nil {
		return EmergencyAccessGrant{}, err
	}
	client, err := o.loadClient(ctx, cmd.ClientID)
	if err != nil {
		return EmergencyAccessGrant{}, err
	}
	clinic, err := o.loadClinic(ctx, client.ClinicID())
	if err != nil {
		return EmergencyAccessGrant{}, err
	}
	if err := o.inClinic(ctx, m.Actor, clinic); err != nil {
		// Another clinic's admin does not learn the client exists.
		return EmergencyAccessGrant{}, clientNotFound(cmd.ClientID)
	}
	d := cmd.Duration
	if d == 0 {
		d = DefaultEmergencyAccess
	}
	m = o.d.prepared(m)
	// Derived from the command id: a retried request names the same grant.
	grantID := newAggregateID(m, "emergency-access")
	now := o.d.Clock()
	res, c, err := execute(ctx, o.d, eventstore.NewStreamID(StreamClient, cmd.ClientID), clinic.ID(), m, organization.NewClient,
		func(c *organization.Client) error {
			return c.GrantEmergencyAccess(grantID, m.Actor, cmd.Reason, d, now)
		})
	if err != nil {
		return EmergencyAccessGrant{}, err
	}
	out := EmergencyAccessGrant{Result: res, GrantID: grantID}
	for _, g := range c.EmergencyGrants() {
		if g.ID == grantID {
			out.ExpiresAt = g.ExpiresAt
		}
	}
	return out, nil
}
