package commands

import (
	"context"

	"github.com/careflow/careflow/domain/care"
)

// MarkAssignmentOverdue records that an assignment's due date passed (by
// the injected clock) before it was completed. The time reactor issues it
// (as RoleSystemAdmin); a provider on the care team may too.
type MarkAssignmentOverdue struct {
	SessionID    string
	AssignmentID string
}

// MarkAssignmentOverdue handles MarkAssignmentOverdue.
func (c *Care) MarkAssignmentOverdue(ctx context.Context, m Meta, cmd MarkAssignmentOverdue) (Result, error) {
	res, _, err := c.inSession(ctx, m, cmd.SessionID, "mark assignments overdue", partyTeam|partySystem,
		func(s *care.Session) error { return s.MarkOverdue(cmd.AssignmentID, c.d.Clock()) })
	return res, err
}
