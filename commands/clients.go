package commands

import "context"

// ClientFacts is what handlers outside the organization need to know about
// a client to authorize a command: the clinic the client belongs to, the
// providers on the care team now, and whether the record is active.
type ClientFacts struct {
	ClientID string
	ClinicID string
	Team     []string // provider ids
	Active   bool
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
