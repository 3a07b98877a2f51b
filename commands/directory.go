package commands

import (
	"context"

	"github.com/careflow/careflow/domain"
)

// StaffDirectory tells which roles a user holds in a clinic, read from the
// clinic stream (and the institute's for institute admins). Handlers that
// authorize clinic-wide access (an auditor, a clinic admin) use it.
type StaffDirectory interface {
	// ClinicRoles returns the roles userID holds in the clinic (provider,
	// clinic_admin, auditor), plus institute_admin when the user is an
	// admin of the clinic's institute. Unknown clinic: "clinic-not-found".
	ClinicRoles(ctx context.Context, clinicID, userID string) ([]domain.Role, error)
}

var (
	_ ClientDirectory = (*Organization)(nil)
	_ StaffDirectory  = (*Organization)(nil)
)

// ClientFacts implements ClientDirectory. Team lists the providers on the
// care team who still belong to the client's clinic and are active: a
// provider who left the clinic or was deactivated loses access to the
// client at once, even before the team is changed.
func (o *Organization) ClientFacts(ctx context.Context, clientID string) (ClientFacts, error) {
	client, err := o.loadClient(ctx, clientID)
	if err != nil {
		return ClientFacts{}, err
	}
	clinic, err := o.loadClinic(ctx, client.ClinicID())
	if err != nil {
		return ClientFacts{}, err
	}
	roster, err := o.roster(ctx, clinic, client.CareTeam())
	if err != nil {
		return ClientFacts{}, err
	}
	facts := ClientFacts{ClientID: client.ID(), ClinicID: client.ClinicID(), Active: client.Active(), Team: []string{},
		EmergencyGrants: client.EmergencyGrants()}
	for _, id := range client.CareTeam() {
		if roster.Eligible(id) {
			facts.Team = append(facts.Team, id)
		}
	}
	return facts, nil
}

// ClinicRoles implements StaffDirectory.
func (o *Organization) ClinicRoles(ctx context.Context, clinicID, userID string) ([]domain.Role, error) {
	clinic, err := o.loadClinic(ctx, clinicID)
	if err != nil {
		return nil, err
	}
	var roles []domain.Role
	for _, r := range []domain.Role{domain.RoleClinicAdmin, domain.RoleProvider, domain.RoleAuditor} {
		if clinic.Has(userID, r) {
			roles = append(roles, r)
		}
	}
	inst, err := o.loadInstitute(ctx, clinic.InstituteID())
	if err != nil && domain.KindOf(err) != domain.KindNotFound {
		return nil, err
	}
	if err == nil && inst.IsAdmin(userID) {
		roles = append(roles, domain.RoleInstituteAdmin)
	}
	return roles, nil
}
