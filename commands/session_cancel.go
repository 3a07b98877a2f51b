package commands

import (
	"context"

	"github.com/careflow/careflow/domain/care"
)

// CancelSession calls off a scheduled or active session, with a reason. A
// provider on the care team may.
type CancelSession struct {
	SessionID string
	Reason    string
}

// CancelSession handles CancelSession.
func (c *Care) CancelSession(ctx context.Context, m Meta, cmd CancelSession) (Result, error) {
	res, _, err := c.inSession(ctx, m, cmd.SessionID, "cancel sessions", partyTeam,
		func(s *care.Session) error { return s.Cancel(cmd.Reason, m.Actor.ID, c.d.Clock()) })
	return res, err
}
