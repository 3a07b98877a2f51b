package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/views"
)

// The read routes answer from the read models. A session-scoped read
// first reads the session's stream (to authorize it), so it knows the
// position of the session's last write and waits (bounded) for the read
// model to reach it: a caller always reads its own writes to a session.
// Other reads wait for X-Careflow-Min-Position when the caller sends it.

// sessionDetail reads the care team's view of a session at least as
// fresh as the session's last write and minPos.
// The answers made from it are kept with it when it is cached (bodies).
func (c *careRoutes) sessionDetail(w http.ResponseWriter, r *http.Request, h sessionHeader, minPos int64) (views.SessionDetail, *encodedBodies, error) {
	if err := c.await(w, r, views.SessionViewProjection, h.Position, minPos); err != nil {
		return views.SessionDetail{}, nil, err
	}
	if s, bodies, ok := c.cache.sessions.get(h.ID, atVersion[views.SessionDetail](h.Version)); ok {
		return s, bodies, nil
	}
	ctx, keys := views.WithKeyProbe(r.Context())
	s, err := views.SessionView(ctx, c.cfg.Views, h.ID)
	if errors.Is(err, views.ErrNotFound) {
		return views.SessionDetail{}, nil, c.notYetProjected()
	}
	var bodies *encodedBodies
	if err == nil && w.Header().Get(HeaderFresh) == "true" {
		// The read model had applied the header's last event: s shows
		// version h.Version (or a later one, which a later header names).
		bodies = c.cache.sessions.put(h.ID, cachedView[views.SessionDetail]{stamp: h.Version, value: s, keys: keys})
	}
	return s, bodies, err
}

// atVersion: an entry of a session's view is served while its stream is
// at the version the entry shows.
func atVersion[V any](version int64) func(cachedView[V]) bool {
	return func(e cachedView[V]) bool { return e.stamp == version }
}

// clientSession reads the client's view of one of their sessions.
func (c *careRoutes) clientSession(w http.ResponseWriter, r *http.Request, h sessionHeader, minPos int64) (views.ClientSession, *encodedBodies, error) {
	if err := c.await(w, r, views.ClientSessionsProjection, h.Position, minPos); err != nil {
		return views.ClientSession{}, nil, err
	}
	if s, bodies, ok := c.cache.clientSessions.get(h.ID, atVersion[views.ClientSession](h.Version)); ok {
		return s, bodies, nil
	}
	ctx, keys := views.WithKeyProbe(r.Context())
	s, err := views.ClientSessionDetail(ctx, c.cfg.Views, h.ClientID, h.ID)
	if errors.Is(err, views.ErrNotFound) {
		return views.ClientSession{}, nil, c.notYetProjected()
	}
	var bodies *encodedBodies
	if err == nil && w.Header().Get(HeaderFresh) == "true" {
		bodies = c.cache.clientSessions.put(h.ID, cachedView[views.ClientSession]{stamp: h.Version, value: s, keys: keys})
	}
	return s, bodies, err
}

// notYetProjected: the session is in the store but not yet in the read
// model (which could not catch up within maxWait).
func (c *careRoutes) notYetProjected() error {
	return &Error{Status: http.StatusServiceUnavailable, Slug: SlugUnavailable, Code: "view-behind",
		Detail: "the read model is catching up; retry shortly", Header: http.Header{"Retry-After": {"1"}}}
}

// readParams are what every read route parses before reading.
func readParams(r *http.Request) (Principal, int64, error) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return Principal{}, 0, Unauthorized("this route needs an access token", "")
	}
	if _, err := readPurpose(r); err != nil {
		return Principal{}, 0, err
	}
	minPos, err := readMinPosition(r)
	return p, minPos, err
}

// readListParams is readParams plus the page asked for, so that a bad
// limit or cursor is refused before anything is read.
func readListParams(r *http.Request) (Principal, int64, Page, error) {
	p, minPos, err := readParams(r)
	if err != nil {
		return Principal{}, 0, Page{}, err
	}
	page, err := ParsePage(r)
	return p, minPos, page, err
}

func sessionAccess(h sessionHeader, extra ...string) access {
	objects := map[string]string{"sessionId": h.ID}
	for i := 0; i+1 < len(extra); i += 2 {
		objects[extra[i]] = extra[i+1]
	}
	return access{clinicID: h.ClinicID, clients: []string{h.ClientID}, objects: objects}
}

// getSession answers the session as its reader may see it: the client's
// view for the client, the full view for the care team, clinic admins and
// auditors. With ?asOf= it answers the state rebuilt from the event store
// as of that instant (not for clients: it counts discussion and notes).
func (c *careRoutes) getSession(w http.ResponseWriter, r *http.Request) {
	p, minPos, err := readParams(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	asOf, err := parseInstant(r, "asOf")
	if err != nil {
		WriteError(w, r, err)
		return
	}
	h, err := c.readableSession(r, p, r.PathValue("sessionId"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if !asOf.IsZero() {
		if p.Role == domain.RoleClient {
			WriteError(w, r, domain.Forbidden("forbidden", "a client may not read past states of a session"))
			return
		}
		snap, err := c.cfg.TimeTravel.Session(r.Context(), h.ID, asOf)
		if errors.Is(err, audit.ErrNotFound) {
			err = careSessionNotFound()
		}
		if err != nil {
			WriteError(w, r, err)
			return
		}
		c.answer(w, r, sessionAccess(h, "asOf", asOf.UTC().Format(time.RFC3339Nano)), snap)
		return
	}
	if p.Role == domain.RoleClient {
		s, bodies, err := c.clientSession(w, r, h, minPos)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		sessionETag(w, h)
		c.answerFrom(w, r, sessionAccess(h), bodies, s)
		return
	}
	s, bodies, err := c.sessionDetail(w, r, h, minPos)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if p.Role != domain.RoleProvider {
		// Discussion and notes are the care team's alone (as on their own
		// routes): clinic admins and auditors see the session without them.
		s.Discussion, s.Notes = nil, nil
	}
	sessionETag(w, h)
	c.answerFrom(w, r, sessionAccess(h), bodies, s)
}

// sessionETag tags a session read that shows the session's last write
// with its stream version, for If-Match on the next command.
func sessionETag(w http.ResponseWriter, h sessionHeader) {
	if w.Header().Get(HeaderFresh) == "true" {
		w.Header().Set("ETag", ETag(h.Version))
	}
}

// listMessages: the session's messages, for its client and care team.
func (c *careRoutes) listMessages(w http.ResponseWriter, r *http.Request) {
	p, minPos, page, err := readListParams(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	h, err := c.readableSession(r, p, r.PathValue("sessionId"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var (
		posts  []views.Post
		bodies *encodedBodies
	)
	if p.Role == domain.RoleClient {
		s, b, err := c.clientSession(w, r, h, minPos)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		posts, bodies = s.Messages, b
	} else {
		s, b, err := c.sessionDetail(w, r, h, minPos)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		posts, bodies = s.Messages, b
	}
	answerPage(c, w, r, sessionAccess(h), bodies, posts, page, postID)
}

func postID(p views.Post) string { return p.ID }

// answerPage answers the caller's page of items and records the read;
// bodies are the answers made from the cached value items come from (nil:
// none).
func answerPage[T any](c *careRoutes, w http.ResponseWriter, r *http.Request, a access, bodies *encodedBodies, items []T, page Page, id func(T) string) {
	out, err := pageByID(items, page, id)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	c.answerFrom(w, r, a, bodies, out)
}

// listTeamPosts answers the discussion or the notes: the care team's
// alone (the route admits providers only, and the provider must be on the
// client's team).
func (c *careRoutes) listTeamPosts(w http.ResponseWriter, r *http.Request, pick func(views.SessionDetail) []views.Post) {
	p, minPos, page, err := readListParams(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	h, err := c.readableSession(r, p, r.PathValue("sessionId"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	s, bodies, err := c.sessionDetail(w, r, h, minPos)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	answerPage(c, w, r, sessionAccess(h), bodies, pick(s), page, postID)
}

func (c *careRoutes) listDiscussion(w http.ResponseWriter, r *http.Request) {
	c.listTeamPosts(w, r, func(s views.SessionDetail) []views.Post { return s.Discussion })
}

func (c *careRoutes) listNotes(w http.ResponseWriter, r *http.Request) {
	c.listTeamPosts(w, r, func(s views.SessionDetail) []views.Post { return s.Notes })
}

// assignmentView is an assignment as its reader may see it, with its
// feedback threads.
type assignmentView struct {
	SessionID string `json:"sessionId"`
	// Exactly one of these is set: the client's view or the team's.
	Client *views.ClientAssignment  `json:"client,omitempty"`
	Team   *views.SessionAssignment `json:"team,omitempty"`
}

func (v assignmentView) feedback() []views.FeedbackThread {
	if v.Client != nil {
		return v.Client.Feedback
	}
	return v.Team.Feedback
}

// readAssignment reads an assignment p may see, with the answers made
// from the cached session it is read from (nil: none).
func (c *careRoutes) readAssignment(w http.ResponseWriter, r *http.Request, p Principal, minPos int64) (sessionHeader, assignmentView, *encodedBodies, error) {
	id := r.PathValue("assignmentId")
	h, err := c.readableAssignment(r, p, id)
	if err != nil {
		return sessionHeader{}, assignmentView{}, nil, err
	}
	out := assignmentView{SessionID: h.ID}
	if p.Role == domain.RoleClient {
		s, bodies, err := c.clientSession(w, r, h, minPos)
		if err != nil {
			return sessionHeader{}, assignmentView{}, nil, err
		}
		for i := range s.Assignments {
			if s.Assignments[i].ID == id {
				out.Client = &s.Assignments[i]
				return h, out, bodies, nil
			}
		}
		return sessionHeader{}, assignmentView{}, nil, c.notYetProjected()
	}
	s, bodies, err := c.sessionDetail(w, r, h, minPos)
	if err != nil {
		return sessionHeader{}, assignmentView{}, nil, err
	}
	for i := range s.Assignments {
		if s.Assignments[i].ID == id {
			out.Team = &s.Assignments[i]
			return h, out, bodies, nil
		}
	}
	return sessionHeader{}, assignmentView{}, nil, c.notYetProjected()
}

func (c *careRoutes) getAssignment(w http.ResponseWriter, r *http.Request) {
	p, minPos, err := readParams(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	h, v, bodies, err := c.readAssignment(w, r, p, minPos)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	c.answerFrom(w, r, sessionAccess(h, "assignmentId", r.PathValue("assignmentId")), bodies, v)
}

// listComments answers the assignment's feedback threads with their
// comments.
func (c *careRoutes) listComments(w http.ResponseWriter, r *http.Request) {
	p, minPos, page, err := readListParams(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	h, v, bodies, err := c.readAssignment(w, r, p, minPos)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	answerPage(c, w, r, sessionAccess(h, "assignmentId", r.PathValue("assignmentId")), bodies, v.feedback(), page,
		func(f views.FeedbackThread) string { return f.ID })
}

func careClientNotFound() error { return domain.NotFound("client-not-found", "no such client") }

// clientSessions lists a client's sessions (as the client sees them),
// grouped by state with at most a page of each group, or with ?state= one
// group, a page at a time.
func (c *careRoutes) clientSessions(w http.ResponseWriter, r *http.Request) {
	p, minPos, page, err := readListParams(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	state, err := readSessionGroup(r, page)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	clientID := r.PathValue("clientId")
	clinicID, err := c.mayReadClient(r.Context(), p, clientID, careClientNotFound())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if err := c.await(w, r, views.ClientSessionsProjection, minPos); err != nil {
		WriteError(w, r, err)
		return
	}
	list, bodies, err := c.clientSessionList(r.Context(), clientID, minPos)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	a := access{clinicID: clinicID, clients: []string{clientID}, objects: map[string]string{"clientId": clientID}}
	if state != "" {
		answerPage(c, w, r, a, bodies, *sessionGroups(&list)[state], page, clientSessionID)
		return
	}
	out := clientSessionsPage{ClientSessionList: list}
	for name, group := range sessionGroups(&out.ClientSessionList) {
		cut, err := pageByID(*group, page, clientSessionID)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		*group = cut.Items
		if cut.NextCursor != "" {
			if out.Next == nil {
				out.Next = map[string]string{}
			}
			out.Next[name] = cut.NextCursor
		}
	}
	c.answerFrom(w, r, a, bodies, out)
}

// clientSessionsPage is a client's sessions by state, each group cut to
// the page size; Next holds, for each group that was cut, the cursor of
// its next page (asked for with ?state=<group>&cursor=).
type clientSessionsPage struct {
	views.ClientSessionList
	Next map[string]string `json:"next,omitempty"`
}

func clientSessionID(s views.ClientSession) string { return s.ID }

// sessionGroups names the groups of a client's session list.
func sessionGroups(l *views.ClientSessionList) map[string]*[]views.ClientSession {
	return map[string]*[]views.ClientSession{
		"upcoming": &l.Upcoming, "active": &l.Active, "closed": &l.Closed, "cancelled": &l.Cancelled,
	}
}

// readSessionGroup reads ?state=, the group of a client's sessions to page
// through ("" for all groups). A cursor belongs to one group, so it needs
// one.
func readSessionGroup(r *http.Request, page Page) (string, error) {
	state := r.URL.Query().Get("state")
	if state == "" {
		if page.After != "" {
			return "", badRequest(SlugInvalidRequest, "a cursor pages through one group of sessions: add state",
				FieldError{Field: "state", Message: "name the group the cursor belongs to (next.<group> of the list)", Slug: "required"})
		}
		return "", nil
	}
	if _, ok := sessionGroups(&views.ClientSessionList{})[state]; !ok {
		return "", badRequest(SlugInvalidRequest, "state must be upcoming, active, closed or cancelled",
			FieldError{Field: "state", Message: "one of upcoming, active, closed, cancelled", Slug: "invalid-state"})
	}
	return state, nil
}

// clientScores answers a client's scores on one book (?bookId=).
func (c *careRoutes) clientScores(w http.ResponseWriter, r *http.Request) {
	p, minPos, page, err := readListParams(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	bookID := r.URL.Query().Get("bookId")
	if bookID == "" {
		WriteError(w, r, badRequest(SlugInvalidRequest, "bookId is required",
			FieldError{Field: "bookId", Message: "name the book whose scores to list", Slug: "required"}))
		return
	}
	clientID := r.PathValue("clientId")
	clinicID, err := c.mayReadClient(r.Context(), p, clientID, careClientNotFound())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if err := c.await(w, r, views.ScoreHistoryProjection, minPos); err != nil {
		WriteError(w, r, err)
		return
	}
	series, err := views.ScoreHistory(r.Context(), c.cfg.Views, clientID, bookID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	points, err := pageByID(series.Points, page, func(p views.ScorePoint) string { return p.AssignmentID })
	if err != nil {
		WriteError(w, r, err)
		return
	}
	series.Points = points.Items
	c.answer(w, r, access{clinicID: clinicID, clients: []string{clientID},
		objects: map[string]string{"clientId": clientID, "bookId": bookID}}, scoresPage{ScoreSeries: series, NextCursor: points.NextCursor})
}

// scoresPage is a page of a client's scores on one book, oldest first.
type scoresPage struct {
	views.ScoreSeries
	NextCursor string `json:"nextCursor,omitempty"`
}

// providerInbox answers a provider's own inbox; anyone else's is not
// found.
func (c *careRoutes) providerInbox(w http.ResponseWriter, r *http.Request) {
	p, minPos, page, err := readListParams(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	providerID := r.PathValue("providerId")
	if p.Role != domain.RoleProvider || p.ActorID != providerID {
		WriteError(w, r, domain.NotFound("provider-not-found", "no such provider"))
		return
	}
	if err := c.await(w, r, views.InboxProjection, minPos); err != nil {
		WriteError(w, r, err)
		return
	}
	inbox, bodies, err := c.readInbox(r.Context(), providerID, views.InboxPage{Limit: page.Limit, After: page.After}, minPos)
	if errors.Is(err, views.ErrBadInboxCursor) {
		err = invalidCursor()
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	clients := make([]string, 0, len(inbox.Items))
	for _, it := range inbox.Items {
		clients = append(clients, it.ClientID)
	}
	out := inboxPage{ProviderInbox: inbox}
	if inbox.Next != "" {
		out.NextCursor = EncodeCursor(inbox.Next)
	}
	c.answerFrom(w, r, access{clients: clients, objects: map[string]string{"providerId": providerID}}, bodies, out)
}

// inboxPage is one page of a provider's inbox: its counts cover all of it.
type inboxPage struct {
	views.ProviderInbox
	// NextCursor fetches the next page; absent on the last page.
	NextCursor string `json:"nextCursor,omitempty"`
}

// clinicOverview answers a clinic's overview to its admins and auditors.
func (c *careRoutes) clinicOverview(w http.ResponseWriter, r *http.Request) {
	p, minPos, err := readParams(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	clinicID := r.PathValue("clinicId")
	notFound := domain.NotFound("clinic-not-found", "no such clinic")
	if err := c.mayReadClinic(r.Context(), p, clinicID, notFound); err != nil {
		WriteError(w, r, err)
		return
	}
	if err := c.await(w, r, views.ClinicOverviewProjection, minPos); err != nil {
		WriteError(w, r, err)
		return
	}
	report, err := views.ClinicOverview(r.Context(), c.cfg.Views, clinicID, c.clock())
	if errors.Is(err, views.ErrNotFound) {
		err = c.notYetProjected()
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	c.answer(w, r, access{clinicID: clinicID, objects: map[string]string{"clinicId": clinicID}}, report)
}

func emptyIfNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
