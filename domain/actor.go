package domain

// Role is what an actor acts as. Staff roles are held per clinic (or per
// institute for institute_admin); a client is always the client role.
type Role string

const (
	RoleSystemAdmin    Role = "system_admin"
	RoleInstituteAdmin Role = "institute_admin"
	RoleClinicAdmin    Role = "clinic_admin"
	RoleProvider       Role = "provider"
	RoleAuditor        Role = "auditor"
	RoleClient         Role = "client"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleSystemAdmin, RoleInstituteAdmin, RoleClinicAdmin, RoleProvider, RoleAuditor, RoleClient:
		return true
	}
	return false
}

// Actor is who issues a command: a user id and the role they act in. The
// commands layer checks what the actor may do; the domain records the actor
// id in events where the fact itself needs it (who wrote a message).
type Actor struct {
	ID   string
	Role Role
}

// Is reports whether the actor acts in role r.
func (a Actor) Is(r Role) bool { return a.Role == r }
