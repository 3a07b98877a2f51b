package commands

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// Organization handles the organization, book and design plan commands and
// answers the lookups other handlers need (ClientDirectory, BookCatalog,
// DesignPlanCatalog, StaffDirectory).
//
// Authorization rule, the same for every command here:
//   - an actor whose role may not issue the command is refused with
//     KindForbidden (slug "forbidden") before anything is read;
//   - an actor in an allowed role who does not hold it where the command
//     acts (a clinic_admin of another clinic, an institute_admin of another
//     institute) gets KindNotFound for the clinic, institute or client:
//     things outside one's own clinics are invisible, so their existence is
//     not revealed;
//   - within the clinic, a finer refusal (a provider not on the client's
//     care team) is KindForbidden.
//
// Memberships are always read from the clinic and institute streams, never
// taken from the caller.
type Organization struct {
	d        Deps
	shredder KeyShredder // destroys a forgotten client's data key
}

// NewOrganization returns the organization handlers over d.
func NewOrganization(d Deps) *Organization { return &Organization{d: d} }

// WithShredder returns the handlers with ForgetClient enabled: it
// destroys data keys through s. Without one ForgetClient fails.
func (o *Organization) WithShredder(s KeyShredder) *Organization {
	cp := *o
	cp.shredder = s
	return &cp
}

// idNamespace seeds the ids of new aggregates. An id is derived from the
// command id, so a retried create command addresses the same stream and is
// answered as a duplicate instead of creating a second aggregate.
var idNamespace = uuid.MustParse("6f1b1f0e-2c58-4f1e-9d3c-8a1c1e5f0b7a")

// newAggregateID returns the id of the aggregate of kind a create command
// makes; m must be prepared (have a command id).
func newAggregateID(m Meta, kind string) string {
	return uuid.NewSHA1(idNamespace, []byte(kind+":"+m.CommandID)).String()
}

func forbidden(a domain.Actor, what string) error {
	return domain.Forbidden("forbidden", "a %s may not %s", roleName(a.Role), what)
}

func roleName(r domain.Role) string {
	if r == "" {
		return "user without a role"
	}
	return string(r)
}

// requireRole refuses an actor whose role is not among allowed.
func requireRole(a domain.Actor, what string, allowed ...domain.Role) error {
	if a.ID == "" || !slices.Contains(allowed, a.Role) {
		return forbidden(a, what)
	}
	return nil
}

func clinicNotFound(clinicID string) error {
	return domain.NotFound("clinic-not-found", "no clinic %q", clinicID)
}

func instituteNotFound(instituteID string) error {
	return domain.NotFound("institute-not-found", "no institute %q", instituteID)
}

func clientNotFound(clientID string) error {
	return domain.NotFound("client-not-found", "no client %q", clientID)
}

// loadExisting loads the aggregate at stream, or notFound if the id cannot
// name a stream or the stream is empty.
func loadExisting[A interface {
	aggregate
	Exists() bool
}](ctx context.Context, d Deps, stream eventstore.StreamID, fresh func() A, notFound error) (A, error) {
	var zero A
	if stream.Validate() != nil {
		return zero, notFound
	}
	a, err := Load(ctx, d, stream, fresh)
	if err != nil {
		return zero, err
	}
	if !a.Exists() {
		return zero, notFound
	}
	return a, nil
}

func (o *Organization) loadInstitute(ctx context.Context, id string) (*organization.Institute, error) {
	return loadExisting(ctx, o.d, eventstore.NewStreamID(StreamInstitute, id), organization.NewInstitute, instituteNotFound(id))
}

func (o *Organization) loadClinic(ctx context.Context, id string) (*organization.Clinic, error) {
	return loadExisting(ctx, o.d, eventstore.NewStreamID(StreamClinic, id), organization.NewClinic, clinicNotFound(id))
}

func (o *Organization) loadProvider(ctx context.Context, id string) (*organization.Provider, error) {
	return loadExisting(ctx, o.d, eventstore.NewStreamID(StreamProvider, id), organization.NewProvider,
		domain.NotFound("provider-not-found", "no provider %q", id))
}

func (o *Organization) loadClient(ctx context.Context, id string) (*organization.Client, error) {
	return loadExisting(ctx, o.d, eventstore.NewStreamID(StreamClient, id), organization.NewClient, clientNotFound(id))
}

// inClinic checks that the actor holds its role where clinic is: a system
// admin everywhere, an institute admin in the clinic's institute, staff in
// the clinic itself. Otherwise the clinic is not found. The role itself
// must have been checked with requireRole.
func (o *Organization) inClinic(ctx context.Context, a domain.Actor, clinic *organization.Clinic) error {
	switch a.Role {
	case domain.RoleSystemAdmin:
		return nil
	case domain.RoleInstituteAdmin:
		inst, err := o.loadInstitute(ctx, clinic.InstituteID())
		if err != nil {
			if domain.KindOf(err) == domain.KindNotFound {
				return clinicNotFound(clinic.ID())
			}
			return err
		}
		if inst.IsAdmin(a.ID) {
			return nil
		}
	case domain.RoleClinicAdmin, domain.RoleProvider, domain.RoleAuditor:
		if clinic.Has(a.ID, a.Role) {
			return nil
		}
	}
	return clinicNotFound(clinic.ID())
}

// clinicFor checks the actor's role, loads the clinic and checks the actor
// holds the role there.
func (o *Organization) clinicFor(ctx context.Context, a domain.Actor, clinicID, what string, allowed ...domain.Role) (*organization.Clinic, error) {
	if err := requireRole(a, what, allowed...); err != nil {
		return nil, err
	}
	clinic, err := o.loadClinic(ctx, clinicID)
	if err != nil {
		return nil, err
	}
	if err := o.inClinic(ctx, a, clinic); err != nil {
		return nil, err
	}
	return clinic, nil
}

// roster builds the care team roster of clinic for the proposed team: the
// clinic's providers, with the activity of those proposed.
func (o *Organization) roster(ctx context.Context, clinic *organization.Clinic, team []string) (organization.Roster, error) {
	var providers []*organization.Provider
	for _, id := range team {
		if !clinic.IsProvider(id) {
			continue // the roster refuses them; no need to read
		}
		p, err := o.loadProvider(ctx, id)
		if err != nil {
			return organization.Roster{}, err
		}
		providers = append(providers, p)
	}
	return organization.NewRoster(clinic, providers...), nil
}

// clinicAdmins are the roles that manage a clinic.
func clinicAdmins() []domain.Role {
	return []domain.Role{domain.RoleSystemAdmin, domain.RoleInstituteAdmin, domain.RoleClinicAdmin}
}
