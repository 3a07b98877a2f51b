package organization

import (
	"sort"

	"github.com/careflow/careflow/domain"
)

// ClinicCreated: a clinic was created in an institute.
type ClinicCreated struct {
	ClinicID    string `json:"clinicId"`
	InstituteID string `json:"instituteId"`
	Name        string `json:"name"`
	CreatedBy   string `json:"createdBy"`
}

func (ClinicCreated) EventType() string { return "clinic.created" }

// ClinicStaffAdded: a user was given a staff role (clinic_admin or auditor)
// in the clinic.
type ClinicStaffAdded struct {
	ClinicID string      `json:"clinicId"`
	UserID   string      `json:"userId"`
	Role     domain.Role `json:"role"`
}

func (ClinicStaffAdded) EventType() string { return "clinic.staff_added" }

// ClinicStaffRemoved: a user lost a staff role in the clinic.
type ClinicStaffRemoved struct {
	ClinicID string      `json:"clinicId"`
	UserID   string      `json:"userId"`
	Role     domain.Role `json:"role"`
}

func (ClinicStaffRemoved) EventType() string { return "clinic.staff_removed" }

// ClinicProviderJoined: a care provider joined the clinic (holds the
// provider role there).
type ClinicProviderJoined struct {
	ClinicID   string `json:"clinicId"`
	ProviderID string `json:"providerId"`
}

func (ClinicProviderJoined) EventType() string { return "clinic.provider_joined" }

// ClinicProviderLeft: a care provider left the clinic.
type ClinicProviderLeft struct {
	ClinicID   string `json:"clinicId"`
	ProviderID string `json:"providerId"`
}

func (ClinicProviderLeft) EventType() string { return "clinic.provider_left" }

// Clinic is a group of care providers in an institute, with its staff.
type Clinic struct {
	domain.Root
	id          string
	instituteID string
	name        string
	roles       map[string]map[domain.Role]bool // user id -> roles held here
}

// NewClinic returns an empty clinic to load or create into.
func NewClinic() *Clinic { return &Clinic{roles: map[string]map[domain.Role]bool{}} }

func (c *Clinic) ID() string          { return c.id }
func (c *Clinic) InstituteID() string { return c.instituteID }
func (c *Clinic) Name() string        { return c.name }
func (c *Clinic) Exists() bool        { return c.id != "" }

// Has reports whether userID holds role in this clinic.
func (c *Clinic) Has(userID string, role domain.Role) bool { return c.roles[userID][role] }

// IsMember reports whether userID holds any role in this clinic.
func (c *Clinic) IsMember(userID string) bool { return len(c.roles[userID]) > 0 }

// IsProvider reports whether providerID has joined this clinic.
func (c *Clinic) IsProvider(providerID string) bool { return c.Has(providerID, domain.RoleProvider) }

// Members returns the user ids holding role, sorted.
func (c *Clinic) Members(role domain.Role) []string {
	var out []string
	for id, roles := range c.roles {
		if roles[role] {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Create records the clinic in an existing institute.
func (c *Clinic) Create(id string, institute *Institute, name, by string) error {
	if c.Exists() {
		return domain.Conflict("clinic-exists", "clinic %s already exists", c.id)
	}
	if err := checkID("invalid-clinic", "clinicId", id); err != nil {
		return err
	}
	if institute == nil || !institute.Exists() {
		return domain.NotFound("institute-not-found", "no such institute")
	}
	n, err := checkName("invalid-clinic", "name", name)
	if err != nil {
		return err
	}
	c.record(ClinicCreated{ClinicID: id, InstituteID: institute.ID(), Name: n, CreatedBy: by})
	return nil
}

// staffRole reports whether role is granted with AddStaff. The provider
// role is held by joining (see JoinProvider), because a provider must be a
// registered, active care provider first.
func staffRole(role domain.Role) bool {
	return role == domain.RoleClinicAdmin || role == domain.RoleAuditor
}

// AddStaff gives userID a staff role in the clinic.
func (c *Clinic) AddStaff(userID string, role domain.Role) error {
	if !c.Exists() {
		return domain.NotFound("clinic-not-found", "no such clinic")
	}
	if err := checkID("invalid-staff", "userId", userID); err != nil {
		return err
	}
	if !staffRole(role) {
		return domain.Validation("invalid-staff-role", "role",
			"staff role must be clinic_admin or auditor, not %q (providers join the clinic instead)", role)
	}
	if c.Has(userID, role) {
		return domain.Conflict("staff-role-held", "user %s already is %s of clinic %s", userID, role, c.id)
	}
	c.record(ClinicStaffAdded{ClinicID: c.id, UserID: userID, Role: role})
	return nil
}

// RemoveStaff takes a staff role away. The last clinic admin stays, so a
// clinic is never left without someone who can manage it.
func (c *Clinic) RemoveStaff(userID string, role domain.Role) error {
	if !c.Exists() {
		return domain.NotFound("clinic-not-found", "no such clinic")
	}
	if !staffRole(role) {
		return domain.Validation("invalid-staff-role", "role",
			"staff role must be clinic_admin or auditor, not %q (providers leave the clinic instead)", role)
	}
	if !c.Has(userID, role) {
		return domain.Conflict("staff-role-not-held", "user %s is not %s of clinic %s", userID, role, c.id)
	}
	if role == domain.RoleClinicAdmin && len(c.Members(domain.RoleClinicAdmin)) == 1 {
		return domain.Conflict("last-clinic-admin", "user %s is the last clinic admin of clinic %s", userID, c.id)
	}
	c.record(ClinicStaffRemoved{ClinicID: c.id, UserID: userID, Role: role})
	return nil
}

// JoinProvider makes a registered, active provider a member of the clinic.
func (c *Clinic) JoinProvider(p *Provider) error {
	if !c.Exists() {
		return domain.NotFound("clinic-not-found", "no such clinic")
	}
	if p == nil || !p.Exists() {
		return domain.NotFound("provider-not-found", "no such provider")
	}
	if !p.Active() {
		return domain.Conflict("provider-inactive", "provider %s is inactive", p.ID())
	}
	if c.IsProvider(p.ID()) {
		return domain.Conflict("already-clinic-provider", "provider %s already belongs to clinic %s", p.ID(), c.id)
	}
	c.record(ClinicProviderJoined{ClinicID: c.id, ProviderID: p.ID()})
	return nil
}

// LeaveProvider removes a provider from the clinic. Care teams that still
// name them no longer count them (a client's team is read against the
// clinic's providers), so access ends with the membership.
func (c *Clinic) LeaveProvider(providerID string) error {
	if !c.Exists() {
		return domain.NotFound("clinic-not-found", "no such clinic")
	}
	if !c.IsProvider(providerID) {
		return domain.Conflict("not-clinic-provider", "provider %s does not belong to clinic %s", providerID, c.id)
	}
	c.record(ClinicProviderLeft{ClinicID: c.id, ProviderID: providerID})
	return nil
}

// Replay applies one stored event during load.
func (c *Clinic) Replay(e domain.Event) {
	c.apply(e)
	c.Loaded()
}

func (c *Clinic) record(e domain.Event) { c.Record(e, c.apply) }

func (c *Clinic) grant(userID string, role domain.Role) {
	if c.roles[userID] == nil {
		c.roles[userID] = map[domain.Role]bool{}
	}
	c.roles[userID][role] = true
}

func (c *Clinic) revoke(userID string, role domain.Role) {
	delete(c.roles[userID], role)
	if len(c.roles[userID]) == 0 {
		delete(c.roles, userID)
	}
}

func (c *Clinic) apply(e domain.Event) {
	switch e := e.(type) {
	case ClinicCreated:
		c.id, c.instituteID, c.name = e.ClinicID, e.InstituteID, e.Name
	case ClinicStaffAdded:
		c.grant(e.UserID, e.Role)
	case ClinicStaffRemoved:
		c.revoke(e.UserID, e.Role)
	case ClinicProviderJoined:
		c.grant(e.ProviderID, domain.RoleProvider)
	case ClinicProviderLeft:
		c.revoke(e.ProviderID, domain.RoleProvider)
	}
}
