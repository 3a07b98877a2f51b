package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// CreateInstitute creates an institute (a group of clinics).
// Only a system admin may.
type CreateInstitute struct {
	Name string
}

// CreateInstitute handles CreateInstitute; the new id is Result.Stream.ID.
func (o *Organization) CreateInstitute(ctx context.Context, m Meta, cmd CreateInstitute) (Result, error) {
	if err := requireRole(m.Actor, "create an institute", domain.RoleSystemAdmin); err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	id := newAggregateID(m, StreamInstitute)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamInstitute, id), "", m, organization.NewInstitute,
		func(i *organization.Institute) error { return i.Create(id, cmd.Name, m.Actor.ID) })
	return res, err
}
