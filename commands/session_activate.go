package commands

import (
	"context"

	"github.com/careflow/careflow/domain/care"
)

// ActivateSession makes a scheduled session active once its start has
// come by the injected clock. The time reactor issues it (as
// RoleSystemAdmin); a provider on the care team may too.
type ActivateSession struct {
	SessionID string
}

// ActivateSession handles ActivateSession.
func (c *Care) ActivateSession(ctx context.Context, m Meta, cmd ActivateSession) (Result, error) {
	res, _, err := c.inSession(ctx, m, cmd.SessionID, "activate sessions", partyTeam|partySystem,
		func(s *care.Session) error { return s.Activate(c.d.Clock()) })
	return res, err
}
