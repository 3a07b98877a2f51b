package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/eventstore"
)

// bookRoles may define and revise a clinic's books and design plans.
func bookRoles() []domain.Role {
	return []domain.Role{domain.RoleClinicAdmin, domain.RoleProvider}
}

// DefineBook defines a clinic's own book (questionnaire, module or test)
// at version 1. A clinic admin or a provider of the clinic may.
type DefineBook struct {
	ClinicID string
	Spec     books.Spec
}

// DefineBook handles DefineBook; the new book id is Result.Stream.ID.
func (o *Organization) DefineBook(ctx context.Context, m Meta, cmd DefineBook) (Result, error) {
	if _, err := o.clinicFor(ctx, m.Actor, cmd.ClinicID, "define books", bookRoles()...); err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	id := newAggregateID(m, StreamBook)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamBook, id), cmd.ClinicID, m, books.NewClinicBook,
		func(b *books.ClinicBook) error { return b.Define(id, cmd.ClinicID, cmd.Spec, m.Actor.ID) })
	return res, err
}
