package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
)

// CareLookups are what the care handlers read from the organization: who
// is on a client's team, which roles a user holds in a clinic, and the
// clinic's books and design plans. *Organization implements all of them.
type CareLookups interface {
	ClientDirectory
	StaffDirectory
	BookCatalog
	DesignPlanCatalog
}

// Care handles the session and assignment commands.
//
// Authorization, the same for every command here:
//   - an actor whose role may not issue the command gets KindForbidden
//     (slug "forbidden") before anything is read;
//   - a provider must be on the client's care team now (ClientFacts.Team:
//     active providers still in the client's clinic). A provider of the
//     client's clinic who is not on the team gets KindForbidden
//     ("not-on-care-team"); anyone of another clinic gets KindNotFound
//     ("session-not-found", or "client-not-found" when scheduling), so
//     nothing about other clinics leaks;
//   - a client may act only in their own sessions; another client's session
//     is KindNotFound ("session-not-found");
//   - the time reactor acts as RoleSystemAdmin for ActivateSession and
//     MarkAssignmentOverdue; the injected clock decides whether it is due.
//
// The clinic and the care team are always read from the organization's
// streams, never taken from the caller.
type Care struct {
	d   Deps
	org CareLookups
	// seen, when set (by tests), is shown each session as a handler left
	// it: the live state, to compare with the state rebuilt from the store.
	seen func(*care.Session)
}

// NewCare returns the care handlers over d, reading the organization
// through org.
func NewCare(d Deps, org CareLookups) *Care { return &Care{d: d, org: org} }

// Created answers a command that made something inside a session (an
// assignment, a feedback, a comment, a message...): its id with the write.
type Created struct {
	Result
	ID string
}

// careNamespace seeds the ids the care handlers derive from command ids:
// a retried command addresses the same session and makes the same ids, so
// nothing is created twice.
var careNamespace = uuid.MustParse("2b0f3c8e-5d1a-4c7e-9f43-6a2d8e1b7c90")

// derivedID is the id of the thing number index of kind a command makes.
func derivedID(m Meta, kind string, index int) string {
	return deriveID(kind, m.CommandID, index)
}

// deriveID is a name-based (SHA-1) uuid of parts.
func deriveID(parts ...any) string {
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = fmt.Sprint(p)
	}
	return uuid.NewSHA1(careNamespace, []byte(strings.Join(names, ":"))).String()
}

func sessionStream(id string) eventstore.StreamID {
	return eventstore.NewStreamID(care.StreamType, id)
}

func sessionNotFound() error { return domain.NotFound("session-not-found", "no such session") }

func careForbidden(a domain.Actor, what string) error {
	name := string(a.Role)
	if name == "" {
		name = "user without a role"
	}
	return domain.Forbidden("forbidden", "a %s may not %s", name, what)
}

// requireCareRole refuses an actor whose role is not among allowed.
func requireCareRole(a domain.Actor, what string, allowed ...domain.Role) error {
	if a.ID == "" || !slices.Contains(allowed, a.Role) {
		return careForbidden(a, what)
	}
	return nil
}

// onTeam checks that provider a is on clientID's care team. notFound is
// what a provider of another clinic hears.
func (c *Care) onTeam(ctx context.Context, a domain.Actor, clientID, what string, notFound error) (ClientFacts, error) {
	facts, err := c.org.ClientFacts(ctx, clientID)
	if err != nil {
		if domain.KindOf(err) == domain.KindNotFound {
			return ClientFacts{}, notFound
		}
		return ClientFacts{}, err
	}
	if facts.OnTeam(a.ID) {
		return facts, nil
	}
	roles, err := c.org.ClinicRoles(ctx, facts.ClinicID, a.ID)
	if err != nil && domain.KindOf(err) != domain.KindNotFound {
		return ClientFacts{}, err
	}
	if slices.Contains(roles, domain.RoleProvider) {
		return ClientFacts{}, domain.Forbidden("not-on-care-team", "provider %s is not on the client's care team and may not %s", a.ID, what)
	}
	return ClientFacts{}, notFound
}

// sessionHeader reads whom a session belongs to from its first event:
// the clinic and the client never change, so authorizing needs no replay.
func (c *Care) sessionHeader(ctx context.Context, id string) (care.SessionScheduled, error) {
	stream := sessionStream(id)
	if stream.Validate() != nil {
		return care.SessionScheduled{}, sessionNotFound()
	}
	// A session's first event never changes, so a cached one answers
	// without asking the store (the load that follows still does).
	// Otherwise the whole stream is read (and kept in the stream cache, when
	// there is one), so that load reads only what came since.
	events := c.d.Streams.get(stream.String())
	if len(events) == 0 {
		var err error
		if events, err = readStream(ctx, c.d, stream); err != nil {
			return care.SessionScheduled{}, err
		}
	}
	if len(events) == 0 {
		return care.SessionScheduled{}, sessionNotFound()
	}
	first, ok := events[0].event.(care.SessionScheduled)
	if !ok {
		return care.SessionScheduled{}, fmt.Errorf("read %s: starts with %s, not session.scheduled", stream, events[0].event.EventType())
	}
	return first, nil
}

// Who may take part in a session's command.
type party int

const (
	partyTeam   party = 1 << iota // a provider on the client's care team
	partyClient                   // the session's own client
	partySystem                   // the time reactor (RoleSystemAdmin)
)

func (p party) roles() []domain.Role {
	var roles []domain.Role
	if p&partyTeam != 0 {
		roles = append(roles, domain.RoleProvider)
	}
	if p&partyClient != 0 {
		roles = append(roles, domain.RoleClient)
	}
	if p&partySystem != 0 {
		roles = append(roles, domain.RoleSystemAdmin)
	}
	return roles
}

// sessionFor checks the actor's role, finds the session and checks the
// actor takes part in it as one of who. It returns the session's clinic.
func (c *Care) sessionFor(ctx context.Context, a domain.Actor, sessionID, what string, who party) (string, error) {
	if err := requireCareRole(a, what, who.roles()...); err != nil {
		return "", err
	}
	h, err := c.sessionHeader(ctx, sessionID)
	if err != nil {
		return "", err
	}
	switch a.Role {
	case domain.RoleClient:
		if a.ID != h.ClientID {
			return "", sessionNotFound()
		}
	case domain.RoleProvider:
		if _, err := c.onTeam(ctx, a, h.ClientID, what, sessionNotFound()); err != nil {
			return "", err
		}
	}
	return h.ClinicID, nil
}

// inSession authorizes the actor, then runs decide on the session's
// stream with the load-decide-append loop. m should be prepared when the
// caller derives ids from its command id.
func (c *Care) inSession(ctx context.Context, m Meta, sessionID, what string, who party,
	decide func(s *care.Session) error) (Result, *care.Session, error) {
	clinicID, err := c.sessionFor(ctx, m.Actor, sessionID, what, who)
	if err != nil {
		return Result{}, nil, err
	}
	// A concurrent change makes execute decide again on the newer state;
	// the actor's standing (the care team) is checked again with it, so a
	// provider taken off the team in between is refused, not let through.
	attempts := 0
	res, s, err := execute(ctx, c.d, sessionStream(sessionID), clinicID, c.d.prepared(m), care.New, func(s *care.Session) error {
		if attempts++; attempts > 1 {
			if _, err := c.sessionFor(ctx, m.Actor, sessionID, what, who); err != nil {
				return err
			}
		}
		return decide(s)
	})
	if err == nil {
		c.show(s)
	}
	return res, s, err
}

func (c *Care) show(s *care.Session) {
	if c.seen != nil {
		c.seen(s)
	}
}

// created runs a command that makes one thing of kind inside a session,
// with an id derived from the command id.
func (c *Care) created(ctx context.Context, m Meta, sessionID, what, kind string, who party,
	decide func(s *care.Session, id string) error) (Created, error) {
	m = c.d.prepared(m)
	id := derivedID(m, kind, 0)
	res, _, err := c.inSession(ctx, m, sessionID, what, who, func(s *care.Session) error { return decide(s, id) })
	if err != nil {
		return Created{}, err
	}
	return Created{Result: res, ID: id}, nil
}
