package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// CreateClinic creates a clinic in an institute. A system admin, or an
// admin of that institute, may.
type CreateClinic struct {
	InstituteID string
	Name        string
}

// CreateClinic handles CreateClinic; the new id is Result.Stream.ID.
func (o *Organization) CreateClinic(ctx context.Context, m Meta, cmd CreateClinic) (Result, error) {
	if err := requireRole(m.Actor, "create a clinic", domain.RoleSystemAdmin, domain.RoleInstituteAdmin); err != nil {
		return Result{}, err
	}
	institute, err := o.loadInstitute(ctx, cmd.InstituteID)
	if err != nil {
		return Result{}, err
	}
	if m.Actor.Is(domain.RoleInstituteAdmin) && !institute.IsAdmin(m.Actor.ID) {
		return Result{}, instituteNotFound(cmd.InstituteID)
	}
	m = o.d.prepared(m)
	id := newAggregateID(m, StreamClinic)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamClinic, id), id, m, organization.NewClinic,
		func(c *organization.Clinic) error { return c.Create(id, institute, cmd.Name, m.Actor.ID) })
	return res, err
}
