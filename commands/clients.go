package commands

import (
	"context"
	"time"

	"github.com/careflow/careflow/domain/organization"
)

// ClientFacts is what handlers outside the organization need to know about
// a client to authorize a command: the clinic the client belongs to, the
// providers on the care team now, and whether the record is active.
type ClientFacts struct {
	ClientID string
	ClinicID string
	Team     []string // provider ids
	Active   bool
	// EmergencyGrants are the break-glass grants on the record, oldest
	// first, expired ones included.
	EmergencyGrants []organization.EmergencyGrant
}

// ActiveGrant returns actorID's break-glass grant live at now (the one
// lasting longest when there are several).
func (f ClientFacts) ActiveGrant(actorID string, now time.Time) (organization.EmergencyGrant, bool) {
	var best organization.EmergencyGrant
	found := false
	for _, g := range f.EmergencyGrants {
		if g.ActorID == actorID && g.ActiveAt(now) && (!found || g.ExpiresAt.After(best.ExpiresAt)) {
			best, found = g, true
		}
	}
	return best, found
}

// OnTeam reports whether providerID is on the client's care team.
func (f ClientFacts) OnTeam(providerID string) bool {
	for _, p := range f.Team {
		if p == providerID {
			return true
		}
	}
	return false
}

// ClientDirectory looks up ClientFacts from the client's stream. The
// organization handlers implement it; others depend only on this.
type ClientDirectory interface {
	ClientFacts(ctx context.Context, clientID string) (ClientFacts, error)
}
