package commands

import (
	"context"

	"github.com/careflow/careflow/domain/care"
)

// WriteNote keeps a provider's quick reflection on a session, in any state
// (also after it closed). Providers on the care team only; the client
// never sees notes.
type WriteNote struct {
	SessionID string
	Text      string
}

// WriteNote handles WriteNote; Created.ID is the note id.
func (c *Care) WriteNote(ctx context.Context, m Meta, cmd WriteNote) (Created, error) {
	return c.created(ctx, m, cmd.SessionID, "write notes", "note", partyTeam,
		func(s *care.Session, id string) error { return s.WriteNote(id, m.Actor, cmd.Text, c.d.Clock()) })
}
