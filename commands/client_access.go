package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

// clientRoles may manage a client record: the clinic's admins and its
// providers (a provider only for clients whose care team they are on).
func clientRoles() []domain.Role {
	return []domain.Role{domain.RoleClinicAdmin, domain.RoleProvider}
}

// mayManageClient checks that the actor may manage client, given the
// client's clinic: a clinic admin of that clinic, or a provider of that
// clinic who is on the client's care team. Anyone else of another clinic
// does not see the client at all.
func mayManageClient(a domain.Actor, clinic *organization.Clinic, client *organization.Client, what string) error {
	if !clinic.Has(a.ID, a.Role) {
		return clientNotFound(client.ID())
	}
	if a.Is(domain.RoleProvider) && !client.OnTeam(a.ID) {
		return domain.Forbidden("not-on-care-team", "provider %s is not on the care team of client %s and may not %s", a.ID, client.ID(), what)
	}
	return nil
}

// clientFor checks the actor's role, loads the client and its clinic, and
// checks the actor may manage the client.
func (o *Organization) clientFor(ctx context.Context, a domain.Actor, clientID, what string) (*organization.Client, *organization.Clinic, error) {
	if err := requireRole(a, what, clientRoles()...); err != nil {
		return nil, nil, err
	}
	client, err := o.loadClient(ctx, clientID)
	if err != nil {
		return nil, nil, err
	}
	clinic, err := o.loadClinic(ctx, client.ClinicID())
	if err != nil {
		return nil, nil, err
	}
	if err := mayManageClient(a, clinic, client, what); err != nil {
		return nil, nil, err
	}
	if a.Is(domain.RoleProvider) {
		// A deactivated provider stops acting in every clinic, although
		// they still appear on care teams until someone changes them.
		p, err := o.loadProvider(ctx, a.ID)
		if err != nil || !p.Active() {
			return nil, nil, domain.Forbidden("provider-inactive", "provider %s is not active and may not %s", a.ID, what)
		}
	}
	return client, clinic, nil
}
