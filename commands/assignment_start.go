package commands

import (
	"context"

	"github.com/careflow/careflow/domain/care"
)

// StartAssignment: the session's client opens an assignment of an active
// session. Only that client may.
type StartAssignment struct {
	SessionID    string
	AssignmentID string
}

// StartAssignment handles StartAssignment.
func (c *Care) StartAssignment(ctx context.Context, m Meta, cmd StartAssignment) (Result, error) {
	res, _, err := c.inSession(ctx, m, cmd.SessionID, "start assignments", partyClient,
		func(s *care.Session) error { return s.StartAssignment(cmd.AssignmentID, m.Actor.ID, c.d.Clock()) })
	return res, err
}
