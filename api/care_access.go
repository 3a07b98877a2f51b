package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
)

// Who may read a client's care records, beside the route's roles:
//   - a client: only their own (anyone else's is not found);
//   - a provider: clients on whose care team they are now (a provider of
//     the client's clinic off the team is forbidden "not-on-care-team",
//     anyone of another clinic gets not found);
//   - clinic admins, institute admins and auditors: clients of a clinic in
//     which they hold that role now (else not found).
//
// Memberships are read from the organization's streams, so a provider
// taken off a team loses access at once, whatever their token says. What
// was read is reused (clientFacts, sessionHeader) only while the change
// tracker, having read the log up to its head as of the request, has seen
// no event since that could change it (view_cache.go).

// sessionHeader is whom a session belongs to, and how far its stream is.
type sessionHeader struct {
	ID       string
	ClinicID string
	ClientID string
	// Version and Position of the stream's last event: a read model that
	// has applied Position shows everything written to the session.
	Version  int64
	Position int64
	// seenAt is the change tracker's position when the stream was read
	// (-1: unknown): the header is current while the tracker has seen no
	// event of the session after it.
	seenAt int64
}

func careSessionNotFound() error { return domain.NotFound("session-not-found", "no such session") }

func careAssignmentNotFound() error {
	return domain.NotFound("assignment-not-found", "no such assignment")
}

// session reads whom a session belongs to from its stream: the first
// event names its clinic and client, which never change. A session seen
// before is read from its last known version on, so a read of a long
// session costs one indexed look-up, not its whole stream.
func (c *careRoutes) session(ctx context.Context, id string) (sessionHeader, error) {
	return c.sessionHeader(ctx, id, false)
}

// sessionHeader is session, answered from memory when current (the
// change tracker has read the log up to its head as of this request) and
// the tracker saw no event of the session since its header was read.
func (c *careRoutes) sessionHeader(ctx context.Context, id string, current bool) (sessionHeader, error) {
	stream := eventstore.NewStreamID(care.StreamType, id)
	if stream.Validate() != nil {
		return sessionHeader{}, careSessionNotFound()
	}
	h, known := c.heads.get(id)
	if current && known && h.seenAt >= 0 && c.cache.tracker.sessionUnchangedSince(id, h.seenAt) {
		return h, nil
	}
	seenAt, ok := c.cache.tracker.position()
	if !ok {
		seenAt = -1
	}
	recs, err := c.store.ReadStream(ctx, stream, h.Version+1)
	if err != nil {
		return sessionHeader{}, fmt.Errorf("read %s: %w", stream, err)
	}
	if !known {
		if len(recs) == 0 || recs[0].Type != (care.SessionScheduled{}).EventType() {
			return sessionHeader{}, careSessionNotFound()
		}
		var first struct {
			ClinicID string `json:"clinicId"`
			ClientID string `json:"clientId"`
		}
		if err := json.Unmarshal(recs[0].Data, &first); err != nil {
			return sessionHeader{}, fmt.Errorf("read %s: %w", stream, err)
		}
		h = sessionHeader{ID: id, ClinicID: first.ClinicID, ClientID: first.ClientID}
	}
	if len(recs) > 0 {
		last := recs[len(recs)-1]
		h.Version, h.Position = last.Version, last.Position
	}
	h.seenAt = seenAt
	c.heads.put(h)
	return h, nil
}

// sessionHeads remembers the sessions' headers (ids and versions, no PHI).
type sessionHeads struct {
	mu    sync.Mutex
	max   int
	heads map[string]sessionHeader
}

// maxSessionHeads bounds the headers kept: about 100 bytes each.
const maxSessionHeads = 16384

func newSessionHeads(max int) *sessionHeads {
	return &sessionHeads{max: max, heads: map[string]sessionHeader{}}
}

func (s *sessionHeads) get(id string) (sessionHeader, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.heads[id]
	return h, ok
}

// put keeps h unless a newer version of it is kept. When full it starts
// again from empty: simpler than an LRU, and a forgotten header costs one
// read of its stream.
func (s *sessionHeads) put(h sessionHeader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.heads[h.ID]; ok && (old.Version > h.Version || old.Version == h.Version && old.seenAt >= h.seenAt) {
		return
	}
	if len(s.heads) >= s.max {
		clear(s.heads)
	}
	s.heads[h.ID] = h
}

// mayReadClient checks p may read clientID's records; notFound is what
// a principal outside the client's clinic hears. It returns the client's
// clinic, and notes in the request's accessNote on what basis the read is
// allowed (for the access log and the accounting of disclosures).
//
// Break-glass (emergency.go): an admin holding a live emergency grant on
// the client may read as the care team could (emergencyRoutes), and their
// reads are marked with the grant. Without one, a clinic admin or auditor
// reads only what their clinic role allows (the oversight routes), and an
// institute or system admin nothing.
func (c *careRoutes) mayReadClient(ctx context.Context, p Principal, clientID string, notFound error) (string, error) {
	return c.mayReadClientAt(ctx, p, clientID, notFound, c.trackerCurrent(ctx))
}

// mayReadClientAt is mayReadClient; current says the change tracker has
// read the log up to its head as of this request (trackerCurrent).
func (c *careRoutes) mayReadClientAt(ctx context.Context, p Principal, clientID string, notFound error, current bool) (string, error) {
	note := accessNoteFrom(ctx)
	if p.Role == domain.RoleClient {
		if p.ActorID != clientID {
			return "", notFound
		}
		facts, err := c.clientFacts(ctx, clientID, current)
		if err != nil {
			if domain.KindOf(err) == domain.KindNotFound {
				return "", notFound
			}
			return "", err
		}
		note.set(BasisSelf, nil)
		return facts.ClinicID, nil
	}
	facts, err := c.clientFacts(ctx, clientID, current)
	if err != nil {
		if domain.KindOf(err) == domain.KindNotFound {
			return "", notFound
		}
		return "", err
	}
	if p.Role == domain.RoleProvider && facts.OnTeam(p.ActorID) {
		note.set(BasisCareTeam, nil)
		return facts.ClinicID, nil
	}
	if slices.Contains(emergencyRoles(), p.Role) {
		if g, ok := facts.ActiveGrant(p.ActorID, c.clock()); ok {
			note.set(BasisEmergency, &g)
			return facts.ClinicID, nil
		}
	}
	roles, err := c.clinicRoles(ctx, facts.ClinicID, p.ActorID)
	if err != nil {
		return "", err
	}
	inClinic := p.Role == domain.RoleSystemAdmin || slices.Contains(roles, p.Role)
	switch {
	case p.Role == domain.RoleProvider && slices.Contains(roles, domain.RoleProvider):
		return "", domain.Forbidden("not-on-care-team", "this provider is not on the client's care team")
	case !inClinic:
		return "", notFound
	case emergencyRoutes[note.route] || p.Role == domain.RoleSystemAdmin || p.Role == domain.RoleInstituteAdmin:
		return "", domain.Forbidden("emergency-access-required",
			"this record is the care team's; an admin reads it only under a live emergency access grant")
	}
	note.set(BasisClinicRole, nil)
	return facts.ClinicID, nil
}

// mayReadClinic checks p holds its role in clinicID now.
func (c *careRoutes) mayReadClinic(ctx context.Context, p Principal, clinicID string, notFound error) error {
	if clinicID == "" {
		return notFound
	}
	roles, err := c.clinicRoles(ctx, clinicID, p.ActorID)
	if err != nil {
		return err
	}
	if !slices.Contains(roles, p.Role) {
		return notFound
	}
	return nil
}

// clinicRoles is StaffDirectory.ClinicRoles with an unknown clinic as no
// roles.
func (c *careRoutes) clinicRoles(ctx context.Context, clinicID, userID string) ([]domain.Role, error) {
	roles, err := c.cfg.Directory.ClinicRoles(ctx, clinicID, userID)
	if err != nil {
		if domain.KindOf(err) == domain.KindNotFound {
			return nil, nil
		}
		return nil, err
	}
	return roles, nil
}

// readableSession finds a session and checks p may read it.
func (c *careRoutes) readableSession(r *http.Request, p Principal, id string) (sessionHeader, error) {
	current := c.trackerCurrent(r.Context())
	h, err := c.sessionHeader(r.Context(), id, current)
	if err != nil {
		return sessionHeader{}, err
	}
	if _, err := c.mayReadClientAt(r.Context(), p, h.ClientID, careSessionNotFound(), current); err != nil {
		return sessionHeader{}, err
	}
	return h, nil
}

// assignmentSession resolves an assignment to its session through the
// assignment index. An id the index does not know is looked up again once
// the index has caught up with the log (bounded by maxWait), so an
// assignment created a moment ago is found without the caller passing its
// position; if the index cannot catch up in time the answer is 503, not a
// false 404.
func (c *careRoutes) assignmentSession(r *http.Request, id string) (string, error) {
	ctx := r.Context()
	if sessionID, ok := c.cache.assignments.get(id); ok {
		return sessionID, nil
	}
	sessionID, found, err := lookupAssignment(ctx, c.cfg.Views, id)
	if err != nil {
		return "", err
	}
	if found {
		c.cache.assignments.put(id, sessionID)
		return sessionID, nil
	}
	head, err := c.store.HeadPosition(ctx)
	if err != nil {
		return "", fmt.Errorf("head position: %w", err)
	}
	reached, err := c.cfg.Freshness.WaitFor(ctx, AssignmentIndexName, head, c.maxWait)
	if err != nil {
		return "", fmt.Errorf("wait for the assignment index: %w", err)
	}
	if !reached {
		return "", &Error{Status: http.StatusServiceUnavailable, Slug: SlugUnavailable, Code: "index-behind",
			Detail: "the assignment index is catching up; retry shortly", Header: http.Header{"Retry-After": {"1"}}}
	}
	sessionID, found, err = lookupAssignment(ctx, c.cfg.Views, id)
	if err != nil {
		return "", err
	}
	if !found {
		return "", careAssignmentNotFound()
	}
	c.cache.assignments.put(id, sessionID)
	return sessionID, nil
}

// readableAssignment finds an assignment's session and checks p may read
// it; a session p may not see is "assignment not found".
func (c *careRoutes) readableAssignment(r *http.Request, p Principal, id string) (sessionHeader, error) {
	sessionID, err := c.assignmentSession(r, id)
	if err != nil {
		return sessionHeader{}, err
	}
	current := c.trackerCurrent(r.Context())
	h, err := c.sessionHeader(r.Context(), sessionID, current)
	if err != nil {
		if domain.KindOf(err) == domain.KindNotFound {
			return sessionHeader{}, careAssignmentNotFound()
		}
		return sessionHeader{}, err
	}
	if _, err := c.mayReadClientAt(r.Context(), p, h.ClientID, careAssignmentNotFound(), current); err != nil {
		return sessionHeader{}, err
	}
	return h, nil
}

// access describes one PHI read for the access log.
type access struct {
	clinicID string
	clients  []string
	objects  map[string]string
}

// answer records the read in the access log, then sends body. If the
// record cannot be made durable, nothing is sent: no record, no PHI.
func (c *careRoutes) answer(w http.ResponseWriter, r *http.Request, a access, body any) {
	c.answerFrom(w, r, a, nil, body)
}

// answerFrom is answer for a body made from a cached value: its encoding
// is kept with the value's (bodies; nil encodes every time).
func (c *careRoutes) answerFrom(w http.ResponseWriter, r *http.Request, a access, bodies *encodedBodies, body any) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		WriteError(w, r, Unauthorized("this route needs an access token", ""))
		return
	}
	why, err := readPurpose(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	rec := AccessRecord{
		ID: c.newID(), At: c.clock().UTC(), UserID: p.UserID, ActorID: p.ActorID, Role: string(p.Role),
		Method: r.Method, Route: r.Pattern, RequestID: RequestID(r.Context()), Purpose: why,
		ClinicID: a.clinicID, ClientIDs: a.clients, Objects: a.objects,
	}
	accessNoteFrom(r.Context()).stamp(&rec, p.Role)
	if err := c.cfg.AccessLog.Record(r.Context(), rec); err != nil {
		WriteError(w, r, fmt.Errorf("record access: %w", err))
		return
	}
	if bodies == nil {
		writeJSON(w, http.StatusOK, body)
		return
	}
	raw, err := bodies.encode(bodyShape(r, p), body)
	if err != nil {
		WriteError(w, r, fmt.Errorf("encode the answer: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(raw)
}
