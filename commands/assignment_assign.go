package commands

import (
	"context"
	"time"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
)

// AssignHomework gives the client a book (its current version, kept by the
// assignment) in a scheduled or active session, due inside the session
// (default: its end), with reminders. Any provider on the care team may.
type AssignHomework struct {
	SessionID string
	BookID    string
	Due       time.Time // zero: the session's end
	Reminders []int     // days before the due date
}

// AssignHomework handles AssignHomework; Created.ID is the assignment id.
func (c *Care) AssignHomework(ctx context.Context, m Meta, cmd AssignHomework) (Created, error) {
	reminders, err := care.NewReminders(cmd.Reminders)
	if err != nil {
		return Created{}, err
	}
	return c.created(ctx, m, cmd.SessionID, "assign homework", "assignment", partyTeam,
		func(s *care.Session, id string) error {
			book, err := c.org.Book(ctx, s.ClinicID(), cmd.BookID)
			if domain.KindOf(err) == domain.KindNotFound {
				return domain.Validation("unknown-book", "bookId", "this clinic has no book %q", cmd.BookID)
			}
			if err != nil {
				return err
			}
			return s.Assign(care.Homework{AssignmentID: id, Book: book, Due: cmd.Due, Reminders: reminders}, m.Actor.ID, c.d.Clock())
		})
}
