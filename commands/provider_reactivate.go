package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// ReactivateProvider lets an inactive provider act again. Only a system
// admin may.
type ReactivateProvider struct {
	ProviderID string
}

// ReactivateProvider handles ReactivateProvider.
func (o *Organization) ReactivateProvider(ctx context.Context, m Meta, cmd ReactivateProvider) (Result, error) {
	if err := requireRole(m.Actor, "reactivate providers", domain.RoleSystemAdmin); err != nil {
		return Result{}, err
	}
	if _, err := o.loadProvider(ctx, cmd.ProviderID); err != nil {
		return Result{}, err
	}
	m = o.d.prepared(m)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamProvider, cmd.ProviderID), "", m, organization.NewProvider,
		func(p *organization.Provider) error { return p.Reactivate() })
	return res, err
}
