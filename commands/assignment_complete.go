package commands

import (
	"context"

	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
)

// CompleteAssignment: the session's client submits responses to an
// assignment of an active session, once. They are scored with the book
// version the assignment was given at; invalid responses are refused.
type CompleteAssignment struct {
	SessionID    string
	AssignmentID string
	Answers      []books.Answer
}

// Completion answers CompleteAssignment with the score (also on a retried
// command, from the stored state).
type Completion struct {
	Result
	Scored bool
	Score  books.Score
}

// CompleteAssignment handles CompleteAssignment.
func (c *Care) CompleteAssignment(ctx context.Context, m Meta, cmd CompleteAssignment) (Completion, error) {
	res, s, err := c.inSession(ctx, m, cmd.SessionID, "complete assignments", partyClient,
		func(s *care.Session) error {
			lookup := func(bookID string, version int) (books.Book, error) {
				return c.org.BookVersion(ctx, s.ClinicID(), bookID, version)
			}
			return s.CompleteAssignment(cmd.AssignmentID, m.Actor.ID, lookup, cmd.Answers, c.d.Clock())
		})
	if err != nil {
		return Completion{}, err
	}
	a, _ := s.Assignment(cmd.AssignmentID)
	return Completion{Result: res, Scored: a.Scored, Score: a.Score}, nil
}
