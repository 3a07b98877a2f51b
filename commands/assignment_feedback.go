package commands

import (
	"context"

	"github.com/careflow/careflow/domain/care"
)

// GiveFeedback: a provider on the care team assesses a completed
// assignment. The feedback opens a comment thread.
type GiveFeedback struct {
	SessionID    string
	AssignmentID string
	Text         string
}

// GiveFeedback handles GiveFeedback; Created.ID is the feedback id.
func (c *Care) GiveFeedback(ctx context.Context, m Meta, cmd GiveFeedback) (Created, error) {
	return c.created(ctx, m, cmd.SessionID, "give feedback", "feedback", partyTeam,
		func(s *care.Session, id string) error {
			return s.GiveFeedback(cmd.AssignmentID, id, m.Actor.ID, cmd.Text, c.d.Clock())
		})
}
