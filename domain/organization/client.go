package organization

import (
	"fmt"
	"slices"
	"strings"

	"github.com/careflow/careflow/domain"
)

// ClientRegistered: a clinic took on a client with a first care team.
// DisplayName is PHI.
type ClientRegistered struct {
	ClientID     string   `json:"clientId" phi:"subject"`
	ClinicID     string   `json:"clinicId"`
	DisplayName  string   `json:"displayName" phi:"sealed"`
	CareTeam     []string `json:"careTeam"`
	RegisteredBy string   `json:"registeredBy"`
}

func (ClientRegistered) EventType() string { return "client.registered" }

// ClientCareTeamChanged: the client's care team is now CareTeam; Added and
// Removed say what changed.
type ClientCareTeamChanged struct {
	ClientID  string   `json:"clientId" phi:"subject"`
	ClinicID  string   `json:"clinicId"`
	CareTeam  []string `json:"careTeam"`
	Added     []string `json:"added,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	ChangedBy string   `json:"changedBy"`
}

func (ClientCareTeamChanged) EventType() string { return "client.care_team_changed" }

// ClientDeactivated: the client's care ended (discharged); the record is
// kept but no new care happens.
type ClientDeactivated struct {
	ClientID string `json:"clientId" phi:"subject"`
	ClinicID string `json:"clinicId"`
	Reason   string `json:"reason,omitempty" phi:"sealed"`
	By       string `json:"by"`
}

func (ClientDeactivated) EventType() string { return "client.deactivated" }

// ClientReactivated: a deactivated client is in care again.
type ClientReactivated struct {
	ClientID string `json:"clientId" phi:"subject"`
	ClinicID string `json:"clinicId"`
	By       string `json:"by"`
}

func (ClientReactivated) EventType() string { return "client.reactivated" }

// Roster is who may be on a care team in one clinic: the providers that
// belong to the clinic and are active. Handlers build it from the clinic
// and the provider aggregates.
type Roster struct {
	clinicID string
	members  map[string]bool // belongs to the clinic
	active   map[string]bool // and is active
}

// NewRoster reads clinic membership from c and activity from providers
// (the ones a caller loaded; a provider not given counts as not active).
func NewRoster(c *Clinic, providers ...*Provider) Roster {
	r := Roster{clinicID: c.ID(), members: map[string]bool{}, active: map[string]bool{}}
	for _, id := range c.Members(domain.RoleProvider) {
		r.members[id] = true
	}
	for _, p := range providers {
		if p != nil && p.Active() {
			r.active[p.ID()] = true
		}
	}
	return r
}

// Eligible reports whether providerID may be on a care team.
func (r Roster) Eligible(providerID string) bool {
	return r.members[providerID] && r.active[providerID]
}

// ClinicID is the clinic the roster is of.
func (r Roster) ClinicID() string { return r.clinicID }

const maxTeam = 20

// checkTeam validates a care team against the roster and returns it
// without duplicates, in the given order.
func (r Roster) checkTeam(team []string) ([]string, error) {
	if len(team) == 0 {
		return nil, domain.Validation("invalid-care-team", "careTeam", "a care team needs at least one provider")
	}
	if len(team) > maxTeam {
		return nil, domain.Validation("invalid-care-team", "careTeam", "a care team has at most %d providers", maxTeam)
	}
	out := make([]string, 0, len(team))
	for i, id := range team {
		field := fmt.Sprintf("careTeam[%d]", i)
		if slices.Contains(out, id) {
			return nil, domain.Validation("invalid-care-team", field, "provider %s is named twice", id)
		}
		if !r.members[id] {
			return nil, domain.Validation("not-clinic-provider", field, "provider %s does not belong to clinic %s", id, r.clinicID)
		}
		if !r.active[id] {
			return nil, domain.Validation("provider-inactive", field, "provider %s is inactive", id)
		}
		out = append(out, id)
	}
	return out, nil
}

// Client is a person in care at one clinic, with their care team.
type Client struct {
	domain.Root
	id       string
	clinicID string
	name     string
	team     []string
	inactive bool
	// forgotten: erased by crypto-shredding; implies inactive, for good.
	forgotten bool
	grants    []EmergencyGrant
}

// NewClient returns an empty client to load or register into.
func NewClient() *Client { return &Client{} }

func (c *Client) ID() string          { return c.id }
func (c *Client) ClinicID() string    { return c.clinicID }
func (c *Client) DisplayName() string { return c.name }
func (c *Client) Exists() bool        { return c.id != "" }

// Active reports whether the client exists and is in care.
func (c *Client) Active() bool { return c.Exists() && !c.inactive }

// CareTeam returns the provider ids on the team, in order.
func (c *Client) CareTeam() []string { return slices.Clone(c.team) }

// OnTeam reports whether providerID is on the care team.
func (c *Client) OnTeam(providerID string) bool { return slices.Contains(c.team, providerID) }

// Register records a new client of the roster's clinic with a care team of
// that clinic's active providers.
func (c *Client) Register(id string, roster Roster, displayName string, team []string, by string) error {
	if c.Exists() {
		return domain.Conflict("client-exists", "client %s already exists", c.id)
	}
	if err := checkID("invalid-client", "clientId", id); err != nil {
		return err
	}
	if roster.clinicID == "" {
		return domain.NotFound("clinic-not-found", "no such clinic")
	}
	n, err := checkName("invalid-client", "displayName", displayName)
	if err != nil {
		return err
	}
	t, err := roster.checkTeam(team)
	if err != nil {
		return err
	}
	c.record(ClientRegistered{ClientID: id, ClinicID: roster.clinicID, DisplayName: n, CareTeam: t, RegisteredBy: by})
	return nil
}

// ChangeCareTeam replaces the care team. The roster must be of the
// client's clinic; an unchanged team records nothing.
func (c *Client) ChangeCareTeam(roster Roster, team []string, by string) error {
	if !c.Exists() {
		return domain.NotFound("client-not-found", "no such client")
	}
	if err := c.refuseForgotten(); err != nil {
		return err
	}
	if c.inactive {
		return domain.Conflict("client-inactive", "client %s is inactive", c.id)
	}
	if roster.clinicID != c.clinicID {
		return domain.Validation("not-clinic-provider", "careTeam", "the roster is not of client %s's clinic", c.id)
	}
	t, err := roster.checkTeam(team)
	if err != nil {
		return err
	}
	var added, removed []string
	for _, id := range t {
		if !slices.Contains(c.team, id) {
			added = append(added, id)
		}
	}
	for _, id := range c.team {
		if !slices.Contains(t, id) {
			removed = append(removed, id)
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return nil
	}
	c.record(ClientCareTeamChanged{ClientID: c.id, ClinicID: c.clinicID, CareTeam: t, Added: added, Removed: removed, ChangedBy: by})
	return nil
}

// Deactivate ends the client's care; nothing new can be planned for them.
func (c *Client) Deactivate(reason, by string) error {
	if !c.Exists() {
		return domain.NotFound("client-not-found", "no such client")
	}
	if err := c.refuseForgotten(); err != nil {
		return err
	}
	if c.inactive {
		return domain.Conflict("client-inactive", "client %s is already inactive", c.id)
	}
	if len(strings.TrimSpace(reason)) > 1000 {
		return domain.Validation("invalid-client", "reason", "reason must be at most 1000 characters")
	}
	c.record(ClientDeactivated{ClientID: c.id, ClinicID: c.clinicID, Reason: strings.TrimSpace(reason), By: by})
	return nil
}

// Reactivate brings a deactivated client back into care.
func (c *Client) Reactivate(by string) error {
	if !c.Exists() {
		return domain.NotFound("client-not-found", "no such client")
	}
	if err := c.refuseForgotten(); err != nil {
		return err
	}
	if !c.inactive {
		return domain.Conflict("client-active", "client %s is already active", c.id)
	}
	c.record(ClientReactivated{ClientID: c.id, ClinicID: c.clinicID, By: by})
	return nil
}

// Replay applies one stored event during load.
func (c *Client) Replay(e domain.Event) {
	c.apply(e)
	c.Loaded()
}

func (c *Client) record(e domain.Event) { c.Record(e, c.apply) }

func (c *Client) apply(e domain.Event) {
	switch e := e.(type) {
	case ClientRegistered:
		c.id, c.clinicID, c.name = e.ClientID, e.ClinicID, e.DisplayName
		c.team = slices.Clone(e.CareTeam)
	case ClientCareTeamChanged:
		c.team = slices.Clone(e.CareTeam)
	case ClientDeactivated:
		c.inactive = true
	case ClientReactivated:
		c.inactive = false
	case ClientForgotten:
		c.inactive, c.forgotten = true, true
	case ClientEmergencyAccessGranted:
		c.grants = append(c.grants, EmergencyGrant{ID: e.GrantID, ActorID: e.GrantedTo, Role: e.GrantedToRole,
			Reason: e.Reason, GrantedAt: e.GrantedAt, ExpiresAt: e.ExpiresAt})
	}
}
