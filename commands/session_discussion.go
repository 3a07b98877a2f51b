package commands

import (
	"context"

	"github.com/careflow/careflow/domain/care"
)

// PostDiscussion writes in the care team's discussion of a session, which
// the client never sees. Providers on the care team only.
type PostDiscussion struct {
	SessionID string
	Text      string
}

// PostDiscussion handles PostDiscussion; Created.ID is the post id.
func (c *Care) PostDiscussion(ctx context.Context, m Meta, cmd PostDiscussion) (Created, error) {
	return c.created(ctx, m, cmd.SessionID, "take part in the discussion", "discussion", partyTeam,
		func(s *care.Session, id string) error { return s.PostDiscussion(id, m.Actor, cmd.Text, c.d.Clock()) })
}
