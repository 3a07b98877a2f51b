package commands

import (
	"context"

	"github.com/careflow/careflow/domain/care"
)

// CommentOnFeedback posts in a feedback's thread: the session's client asks
// (only in their own sessions), and any provider on the care team replies
// once the client has asked.
type CommentOnFeedback struct {
	SessionID    string
	AssignmentID string
	FeedbackID   string
	Text         string
}

// CommentOnFeedback handles CommentOnFeedback; Created.ID is the comment id.
func (c *Care) CommentOnFeedback(ctx context.Context, m Meta, cmd CommentOnFeedback) (Created, error) {
	return c.created(ctx, m, cmd.SessionID, "comment on feedback", "comment", partyTeam|partyClient,
		func(s *care.Session, id string) error {
			return s.CommentOnFeedback(cmd.AssignmentID, cmd.FeedbackID, id, m.Actor, cmd.Text, c.d.Clock())
		})
}
