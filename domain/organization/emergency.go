package organization

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/careflow/careflow/domain"
)

// ClientEmergencyAccessGranted: break-glass. GrantedTo (a staff user or
// admin outside the care team) may read the client's record until
// ExpiresAt, for the stated Reason. The grant is recorded on the client's
// stream so the care team, auditors and the accounting of disclosures see
// it. Reason is free text and may hold PHI.
type ClientEmergencyAccessGranted struct {
	ClientID      string      `json:"clientId" phi:"subject"`
	ClinicID      string      `json:"clinicId"`
	GrantID       string      `json:"grantId"`
	GrantedTo     string      `json:"grantedTo"`
	GrantedToRole domain.Role `json:"grantedToRole"`
	Reason        string      `json:"reason" phi:"sealed"`
	GrantedAt     time.Time   `json:"grantedAt"`
	ExpiresAt     time.Time   `json:"expiresAt"`
}

func (ClientEmergencyAccessGranted) EventType() string { return "client.emergency_access_granted" }

// Emergency access bounds.
const (
	MinEmergencyAccess = time.Minute
	MaxEmergencyAccess = 24 * time.Hour
	maxEmergencyReason = 1000
)

// EmergencyGrant is one break-glass grant on a client's record.
type EmergencyGrant struct {
	ID        string
	ActorID   string
	Role      domain.Role
	Reason    string
	GrantedAt time.Time
	ExpiresAt time.Time
}

// ActiveAt reports whether the grant lets its holder read at now.
func (g EmergencyGrant) ActiveAt(now time.Time) bool {
	return !now.Before(g.GrantedAt) && now.Before(g.ExpiresAt)
}

// GrantEmergencyAccess records that actor may read the client's record for
// the next d (1 minute to 24 hours), for reason. Whether actor may break
// the glass at all (an admin of the client's clinic) is the handler's to
// check. A discharged client's record may still be opened: an emergency
// does not wait for a reactivation.
func (c *Client) GrantEmergencyAccess(grantID string, actor domain.Actor, reason string, d time.Duration, now time.Time) error {
	if !c.Exists() {
		return domain.NotFound("client-not-found", "no such client")
	}
	if err := c.refuseForgotten(); err != nil {
		return err // nothing is left to read
	}
	var errs domain.ValidationErrors
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		errs = append(errs, domain.Validation("invalid-emergency-access", "reason", "a reason is required to break the glass"))
	case utf8.RuneCountInString(reason) > maxEmergencyReason:
		errs = append(errs, domain.Validation("invalid-emergency-access", "reason", "reason must be at most %d characters", maxEmergencyReason))
	}
	if d < MinEmergencyAccess || d > MaxEmergencyAccess || d%time.Minute != 0 {
		errs = append(errs, domain.Validation("invalid-emergency-access", "minutes", "emergency access lasts 1 to 1440 whole minutes"))
	}
	if grantID == "" || actor.ID == "" || !actor.Role.Valid() {
		errs = append(errs, domain.Validation("invalid-emergency-access", "grantedTo", "a grant needs an id and an actor"))
	}
	if err := errs.Err(); err != nil {
		return err
	}
	now = now.UTC()
	c.record(ClientEmergencyAccessGranted{ClientID: c.id, ClinicID: c.clinicID, GrantID: grantID, GrantedTo: actor.ID,
		GrantedToRole: actor.Role, Reason: reason, GrantedAt: now, ExpiresAt: now.Add(d)})
	return nil
}

// EmergencyGrants returns every grant ever made on the client, oldest
// first; EmergencyGrant.ActiveAt tells the live ones.
func (c *Client) EmergencyGrants() []EmergencyGrant { return slices.Clone(c.grants) }
