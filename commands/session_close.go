package commands

import (
	"context"

	"github.com/careflow/careflow/domain/care"
)

// CloseSession closes an active session: once every assignment is completed
// and has feedback, or earlier with a reason (recorded as an early close).
// A provider on the care team may. The next session is scheduled with
// ScheduleSession (or the next of a series activates on time).
type CloseSession struct {
	SessionID string
	Reason    string // required while work is open
}

// CloseSession handles CloseSession.
func (c *Care) CloseSession(ctx context.Context, m Meta, cmd CloseSession) (Result, error) {
	res, _, err := c.inSession(ctx, m, cmd.SessionID, "close sessions", partyTeam,
		func(s *care.Session) error { return s.Close(cmd.Reason, m.Actor.ID, c.d.Clock()) })
	return res, err
}
