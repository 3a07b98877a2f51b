package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/plans"
	"github.com/careflow/careflow/eventstore"
)

// Stream types of the organization, book and design plan aggregates.
const (
	StreamInstitute  = "institute"
	StreamClinic     = "clinic"
	StreamProvider   = "provider"
	StreamClient     = "client"
	StreamBook       = "book"
	StreamDesignPlan = "design_plan"
)

// BookCatalog finds the books a clinic can assign: the built-in books and
// the clinic's own. A book of another clinic is not found, as is an
// unknown one (KindNotFound, slug "book-not-found").
type BookCatalog interface {
	// Book returns the current version of the book.
	Book(ctx context.Context, clinicID, bookID string) (books.Book, error)
	// BookVersion returns one version; older versions stay readable so an
	// assignment can keep the version it was given.
	BookVersion(ctx context.Context, clinicID, bookID string, version int) (books.Book, error)
}

// DesignPlanCatalog finds a clinic's design plans (KindNotFound, slug
// "design-plan-not-found", for an unknown plan or one of another clinic).
type DesignPlanCatalog interface {
	DesignPlan(ctx context.Context, clinicID, planID string) (*plans.Plan, error)
}

var (
	_ BookCatalog       = (*Organization)(nil)
	_ DesignPlanCatalog = (*Organization)(nil)
)

func bookNotFound(bookID string) error {
	return domain.NotFound("book-not-found", "no book %q in this clinic", bookID)
}

// Book implements BookCatalog.
func (o *Organization) Book(ctx context.Context, clinicID, bookID string) (books.Book, error) {
	if b, ok := books.BuiltInBook(bookID); ok {
		return b, nil
	}
	cb, err := o.clinicBook(ctx, clinicID, bookID)
	if err != nil {
		return books.Book{}, err
	}
	return cb.Current(), nil
}

// BookVersion implements BookCatalog.
func (o *Organization) BookVersion(ctx context.Context, clinicID, bookID string, version int) (books.Book, error) {
	if b, ok := books.BuiltInBook(bookID); ok {
		if b.Version() != version {
			return books.Book{}, domain.NotFound("book-not-found", "book %q has no version %d", bookID, version)
		}
		return b, nil
	}
	cb, err := o.clinicBook(ctx, clinicID, bookID)
	if err != nil {
		return books.Book{}, err
	}
	b, ok := cb.At(version)
	if !ok {
		return books.Book{}, domain.NotFound("book-not-found", "book %q has no version %d", bookID, version)
	}
	return b, nil
}

func (o *Organization) clinicBook(ctx context.Context, clinicID, bookID string) (*books.ClinicBook, error) {
	stream := eventstore.NewStreamID(StreamBook, bookID)
	if clinicID == "" || stream.Validate() != nil {
		return nil, bookNotFound(bookID)
	}
	cb, err := Load(ctx, o.d, stream, books.NewClinicBook)
	if err != nil {
		return nil, err
	}
	if !cb.Exists() || cb.ClinicID() != clinicID {
		return nil, bookNotFound(bookID)
	}
	return cb, nil
}

// DesignPlan implements DesignPlanCatalog.
func (o *Organization) DesignPlan(ctx context.Context, clinicID, planID string) (*plans.Plan, error) {
	notFound := domain.NotFound("design-plan-not-found", "no design plan %q in this clinic", planID)
	stream := eventstore.NewStreamID(StreamDesignPlan, planID)
	if clinicID == "" || stream.Validate() != nil {
		return nil, notFound
	}
	p, err := Load(ctx, o.d, stream, plans.New)
	if err != nil {
		return nil, err
	}
	if !p.Exists() || p.ClinicID() != clinicID {
		return nil, notFound
	}
	return p, nil
}
