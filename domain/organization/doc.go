// Package organization holds who works where and for whom: institutes,
// their clinics, care providers, clinic staff roles and clients with their
// care teams.
//
// Aggregates and why they are cut this way:
//   - Institute (stream "institute-<id>"): its name and its institute
//     admins. Clinics name their institute; the institute does not list its
//     clinics, so creating a clinic writes one stream only.
//   - Clinic (stream "clinic-<id>"): its name, its institute and every
//     membership: staff roles (clinic_admin, auditor) and the providers who
//     have joined. Authorization in a clinic reads this one stream, so the
//     clinic is the single source of truth for "who may act here".
//   - Provider (stream "provider-<id>"): a person who can belong to several
//     clinics; their name and whether they are active. Which clinics they
//     belong to lives in the clinics (a read model can list it per
//     provider), so joining or leaving touches one stream.
//   - Client (stream "client-<id>"): belongs to one clinic for life; holds
//     the care team. Team members must be active providers of that clinic;
//     the caller hands in a Roster built from the clinic and the providers
//     so the rule is decided here, not in the handler.
package organization

import (
	"strings"

	"github.com/careflow/careflow/domain"
)

// Events lists one zero value of every event type of this package.
func Events() []domain.Event {
	return []domain.Event{
		InstituteCreated{}, InstituteAdminAppointed{}, InstituteAdminDismissed{},
		ClinicCreated{}, ClinicStaffAdded{}, ClinicStaffRemoved{}, ClinicProviderJoined{}, ClinicProviderLeft{},
		ProviderRegistered{}, ProviderDeactivated{}, ProviderReactivated{},
		ClientRegistered{}, ClientCareTeamChanged{}, ClientDeactivated{}, ClientReactivated{},
		ClientEmergencyAccessGranted{}, ClientForgotten{},
	}
}

const maxName = 200

// checkName validates a display name of 1..200 characters after trimming.
func checkName(slug, field, name string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" || len(n) > maxName {
		return "", domain.Validation(slug, field, "%s must be 1 to %d characters", field, maxName)
	}
	return n, nil
}

func checkID(slug, field, id string) error {
	if strings.TrimSpace(id) == "" {
		return domain.Validation(slug, field, "%s is required", field)
	}
	return nil
}
