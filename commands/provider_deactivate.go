package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// DeactivateProvider stops a provider acting in every clinic (they drop
// out of every care team's effective members). A provider spans clinics,
// so only a system admin may.
type DeactivateProvider struct {
	ProviderID string
	Reason     string
}

// DeactivateProvider handles DeactivateProvider.
func (o *Organization) DeactivateProvider(ctx context.Context, m Meta, cmd DeactivateProvider) (Result, error) {
	if err := requireRole(m.Actor, "deactivate providers", domain.RoleSystemAdmin); err != nil {
		return Result{}, err
	}
	if _, err := o.loadProvider(ctx, cmd.ProviderID); err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamProvider, cmd.ProviderID), "", m, organization.NewProvider,
		func(p *organization.Provider) error { return p.Deactivate(cmd.Reason) })
	return res, err
}
