package commands

import (
	"context"
	"fmt"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/plans"
	"github.com/careflow/careflow/eventstore"
)

// CreateDesignPlan creates a clinic's design plan template: weeks 1..N,
// each with homework books the clinic can assign (built-in or its own). A
// clinic admin or a provider of the clinic may.
type CreateDesignPlan struct {
	ClinicID string
	Title    string
	Weeks    []plans.Week
}

// CreateDesignPlan handles CreateDesignPlan; the new id is Result.Stream.ID.
func (o *Organization) CreateDesignPlan(ctx context.Context, m Meta, cmd CreateDesignPlan) (Result, error) {
	if _, err := o.clinicFor(ctx, m.Actor, cmd.ClinicID, "create design plans", bookRoles()...); err != nil {
		return Result{}, err
	}
	if err := o.checkHomework(ctx, cmd.ClinicID, cmd.Weeks); err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	id := newAggregateID(m, StreamDesignPlan)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamDesignPlan, id), cmd.ClinicID, m, plans.New,
		func(p *plans.Plan) error { return p.Create(id, cmd.ClinicID, cmd.Title, cmd.Weeks, m.Actor.ID) })
	return res, err
}

// checkHomework refuses a homework unit that names a book the clinic
// cannot assign.
func (o *Organization) checkHomework(ctx context.Context, clinicID string, weeks []plans.Week) error {
	var errs domain.ValidationErrors
	for i, w := range weeks {
		for j, bookID := range w.Homework {
			_, err := o.Book(ctx, clinicID, bookID)
			switch {
			case domain.KindOf(err) == domain.KindNotFound:
				errs = append(errs, domain.Validation("unknown-book", fmt.Sprintf("weeks[%d].homework[%d]", i, j),
					"week %d names book %q, which this clinic does not have", i+1, bookID))
			case err != nil:
				return err
			}
		}
	}
	return errs.Err()
}
