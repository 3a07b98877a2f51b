package organization

import (
	"strings"
	"time"

	"github.com/careflow/careflow/domain"
)

// ClientForgotten: the client's data key is to be destroyed (erasure by
// crypto-shredding). Every event of the client stays in the log and still
// replays, but its PHI reads as redacted from now on. Reason is kept in
// clear for the audit trail: it must say why (a legal request number, say),
// never carry PHI.
type ClientForgotten struct {
	ClientID string    `json:"clientId" phi:"subject"`
	ClinicID string    `json:"clinicId"`
	By       string    `json:"by"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

func (ClientForgotten) EventType() string { return "client.forgotten" }

// Forgotten reports whether the client was erased.
func (c *Client) Forgotten() bool { return c.forgotten }

// Forget records the erasure of the client. It can't be undone: the client
// stays inactive for good and nothing new is recorded for them.
func (c *Client) Forget(reason, by string, at time.Time) error {
	if !c.Exists() {
		return domain.NotFound("client-not-found", "no such client")
	}
	if c.forgotten {
		return domain.Conflict("client-forgotten", "client %s was already forgotten", c.id)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 1000 {
		return domain.Validation("invalid-erasure", "reason", "reason is required (at most 1000 characters): say why the client is forgotten")
	}
	c.record(ClientForgotten{ClientID: c.id, ClinicID: c.clinicID, By: by, Reason: reason, At: at.UTC()})
	return nil
}

// refuseForgotten is the guard of every change to a forgotten client.
func (c *Client) refuseForgotten() error {
	if c.forgotten {
		return domain.Conflict("client-forgotten", "client %s was forgotten", c.id)
	}
	return nil
}
