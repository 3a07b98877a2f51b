package commands

import (
	"context"

	"github.com/careflow/careflow/domain/care"
)

// PostMessage writes in a session's message center. The session's client
// and every provider on the care team may, while the session is scheduled
// or active.
type PostMessage struct {
	SessionID string
	Text      string
}

// PostMessage handles PostMessage; Created.ID is the message id.
func (c *Care) PostMessage(ctx context.Context, m Meta, cmd PostMessage) (Created, error) {
	return c.created(ctx, m, cmd.SessionID, "post messages", "message", partyTeam|partyClient,
		func(s *care.Session, id string) error { return s.PostMessage(id, m.Actor, cmd.Text, c.d.Clock()) })
}
