package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/eventstore"
)

// ReviseBook publishes a new version of a clinic's book; older versions
// stay readable. A clinic admin or a provider of the book's clinic may.
// Built-in books cannot be revised.
type ReviseBook struct {
	ClinicID string
	BookID   string
	Spec     books.Spec
}

// ReviseBook handles ReviseBook; Result.Version is the stream version, the
// book version is the number of versions the book now has.
func (o *Organization) ReviseBook(ctx context.Context, m Meta, cmd ReviseBook) (Result, error) {
	if _, err := o.clinicFor(ctx, m.Actor, cmd.ClinicID, "revise books", bookRoles()...); err != nil {
		return Result{}, err
	}
	if _, builtIn := books.BuiltInBook(cmd.BookID); builtIn {
		return Result{}, domain.Conflict("built-in-book", "built-in book %s cannot be revised", cmd.BookID)
	}
	if _, err := o.clinicBook(ctx, cmd.ClinicID, cmd.BookID); err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamBook, cmd.BookID), cmd.ClinicID, m, books.NewClinicBook,
		func(b *books.ClinicBook) error { return b.Revise(cmd.Spec, m.Actor.ID) })
	return res, err
}
