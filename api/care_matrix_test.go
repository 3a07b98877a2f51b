package api

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
)

// Texts that must never reach anyone refused.
const (
	secretMessage    = "MESSAGE-SECRET-1"
	secretDiscussion = "DISCUSSION-SECRET-2"
	secretNote       = "NOTE-SECRET-3"
	secretComment    = "COMMENT-SECRET-4"
)

type careRoute struct {
	pattern string
	method  string
	path    string
	body    any
}

// careRoutesOf lists every care route with a request naming k1's session
// s1, its assignment a1 and its feedback fb.
func careRoutesOf(w *careWorld, s1, a1, fb string) []careRoute {
	later := w.clock.Now().Add(30 * 24 * time.Hour)
	asOf := url.QueryEscape(w.clock.Now().Format(time.RFC3339Nano))
	text := map[string]string{"text": "attempt"}
	return []careRoute{
		{"POST /v1/sessions", "POST", "/v1/sessions", map[string]any{"clientId": w.k1.ID, "title": "x", "startsAt": later}},
		{"GET /v1/sessions/{sessionId}", "GET", "/v1/sessions/" + s1, nil},
		{"GET /v1/sessions/{sessionId}", "GET", "/v1/sessions/" + s1 + "?asOf=" + asOf, nil},
		{"POST /v1/sessions/{sessionId}/assignments", "POST", "/v1/sessions/" + s1 + "/assignments", map[string]any{"bookId": books.GAD7ID}},
		{"POST /v1/sessions/{sessionId}/close", "POST", "/v1/sessions/" + s1 + "/close", map[string]any{"reason": "x"}},
		{"POST /v1/sessions/{sessionId}/cancel", "POST", "/v1/sessions/" + s1 + "/cancel", map[string]any{"reason": "x"}},
		{"POST /v1/sessions/{sessionId}/activate", "POST", "/v1/sessions/" + s1 + "/activate", nil},
		{"POST /v1/sessions/{sessionId}/reschedule", "POST", "/v1/sessions/" + s1 + "/reschedule", map[string]any{"startsAt": later}},
		{"POST /v1/sessions/{sessionId}/messages", "POST", "/v1/sessions/" + s1 + "/messages", text},
		{"GET /v1/sessions/{sessionId}/messages", "GET", "/v1/sessions/" + s1 + "/messages", nil},
		{"POST /v1/sessions/{sessionId}/discussion", "POST", "/v1/sessions/" + s1 + "/discussion", text},
		{"GET /v1/sessions/{sessionId}/discussion", "GET", "/v1/sessions/" + s1 + "/discussion", nil},
		{"POST /v1/sessions/{sessionId}/notes", "POST", "/v1/sessions/" + s1 + "/notes", text},
		{"GET /v1/sessions/{sessionId}/notes", "GET", "/v1/sessions/" + s1 + "/notes", nil},
		{"GET /v1/assignments/{assignmentId}", "GET", "/v1/assignments/" + a1, nil},
		{"POST /v1/assignments/{assignmentId}/start", "POST", "/v1/assignments/" + a1 + "/start", nil},
		{"POST /v1/assignments/{assignmentId}/responses", "POST", "/v1/assignments/" + a1 + "/responses", map[string]any{"answers": phq9(0, 0)}},
		{"POST /v1/assignments/{assignmentId}/feedback", "POST", "/v1/assignments/" + a1 + "/feedback", text},
		{"POST /v1/assignments/{assignmentId}/comments", "POST", "/v1/assignments/" + a1 + "/comments", map[string]any{"feedbackId": fb, "text": "x"}},
		{"GET /v1/assignments/{assignmentId}/comments", "GET", "/v1/assignments/" + a1 + "/comments", nil},
		{"GET /v1/clients/{clientId}/sessions", "GET", "/v1/clients/" + w.k1.ID + "/sessions", nil},
		{"GET /v1/clients/{clientId}/scores", "GET", "/v1/clients/" + w.k1.ID + "/scores?bookId=" + books.PHQ9ID, nil},
		{"GET /v1/providers/{providerId}/inbox", "GET", "/v1/providers/" + w.p1.ID + "/inbox", nil},
		{"GET /v1/clinics/{clinicId}/overview", "GET", "/v1/clinics/" + w.clinic1 + "/overview", nil},
		{"GET /v1/audit/clients/{clientId}/timeline", "GET", "/v1/audit/clients/" + w.k1.ID + "/timeline", nil},
		{"GET /v1/audit/streams/{streamId}", "GET", "/v1/audit/streams/session-" + s1, nil},
		{"GET /v1/clients/{clientId}/access-log", "GET", "/v1/clients/" + w.k1.ID + "/access-log", nil},
		{"GET /v1/clients/{clientId}/disclosures", "GET", "/v1/clients/" + w.k1.ID + "/disclosures", nil},
		{"POST /v1/clients/{clientId}/emergency-access", "POST", "/v1/clients/" + w.k1.ID + "/emergency-access",
			map[string]any{"reason": "crisis call", "minutes": 30}},
	}
}

// TestCareRoutesRefuseOutsiders sends every care route, about k1's
// records, as each kind of outsider: each gets the right refusal, nothing
// is written (no event, no access record) and no body leaks PHI.
func TestCareRoutesRefuseOutsiders(t *testing.T) {
	w := newCareWorld(t)
	sched, _ := w.scheduleForK1(1)
	s1 := sched.Sessions[0].ID
	a1 := w.assignmentsOf(s1)[0]
	w.clock.Advance(25 * time.Hour)
	w.activate(s1)
	w.ok(http.StatusOK, nil, w.k1, "POST", "/v1/assignments/"+a1+"/responses", map[string]any{"answers": phq9(1, 0)})
	var fb CommandResponse
	w.ok(http.StatusCreated, &fb, w.p1, "POST", "/v1/assignments/"+a1+"/feedback", map[string]string{"text": "Well done"})
	w.ok(http.StatusCreated, nil, w.k1, "POST", "/v1/assignments/"+a1+"/comments",
		map[string]string{"feedbackId": fb.IDs["feedbackId"], "text": secretComment})
	w.ok(http.StatusCreated, nil, w.k1, "POST", "/v1/sessions/"+s1+"/messages", map[string]string{"text": secretMessage})
	w.ok(http.StatusCreated, nil, w.p2, "POST", "/v1/sessions/"+s1+"/discussion", map[string]string{"text": secretDiscussion})
	w.ok(http.StatusCreated, nil, w.p1, "POST", "/v1/sessions/"+s1+"/notes", map[string]string{"text": secretNote})

	routes := careRoutesOf(w, s1, a1, fb.IDs["feedbackId"])
	// Every care route is in the matrix.
	covered := map[string]bool{}
	for _, r := range routes {
		covered[r.pattern] = true
	}
	for pattern := range carePatterns() {
		assert.True(t, covered[pattern], "%s is not in the matrix", pattern)
	}

	headBefore := w.head()
	recordsBefore, err := w.access.ForClient(w.ctx, w.k1.ID, 0, 1000)
	require.NoError(t, err)

	policies := DefaultPolicies()
	admits := func(r careRoute, role domain.Role) bool { return slices.Contains(policies[r.pattern].Roles, role) }
	type outsider struct {
		name  string
		actor domain.Actor
		// want is the status for a route that admits the actor's role
		// (0: skip the route, the actor is entitled to it).
		want func(r careRoute) int
		// only limits the outsider to some routes.
		only func(r careRoute) bool
	}
	outsiders := []outsider{
		{name: "no token", actor: anonymous},
		{name: "other clinic's admin", actor: w.admin2, want: func(careRoute) int { return http.StatusNotFound }},
		{name: "other client", actor: w.k2, want: func(careRoute) int { return http.StatusNotFound }},
		{name: "provider of another clinic", actor: w.p4, want: func(careRoute) int { return http.StatusNotFound }},
		{name: "provider not on the team", actor: w.p3, want: func(r careRoute) int {
			if r.pattern == "GET /v1/providers/{providerId}/inbox" {
				return http.StatusNotFound // someone else's inbox
			}
			return http.StatusForbidden // not-on-care-team
		}},
		{name: "client on provider routes", actor: w.k1, only: func(r careRoute) bool { return !admits(r, domain.RoleClient) }},
		{name: "auditor on write routes", actor: w.auditor1, only: func(r careRoute) bool { return r.method == "POST" }},
	}
	for _, o := range outsiders {
		for _, r := range routes {
			if o.only != nil && !o.only(r) {
				continue
			}
			t.Run(o.name+"/"+r.method+" "+r.path, func(t *testing.T) {
				want := http.StatusForbidden
				switch {
				case o.actor == anonymous:
					want = http.StatusUnauthorized
				case admits(r, o.actor.Role):
					want = o.want(r)
				}
				rec := w.do(o.actor, r.method, r.path, r.body)
				require.Equal(t, want, rec.Code, rec.Body.String())
				p := decodeProblem(t, rec)
				if want == http.StatusForbidden && admits(r, o.actor.Role) {
					assert.Equal(t, "not-on-care-team", p.Code)
				}
				body := rec.Body.String()
				for _, secret := range []string{secretMessage, secretDiscussion, secretNote, secretComment, "Secretname", "Kim"} {
					assert.NotContains(t, body, secret)
				}
				assert.Empty(t, rec.Header().Get(HeaderPosition), "nothing was written")
			})
		}
	}

	assert.Equal(t, headBefore, w.head(), "no refused request wrote an event")
	recordsAfter, err := w.access.ForClient(w.ctx, w.k1.ID, 0, 1000)
	require.NoError(t, err)
	assert.Equal(t, recordsBefore, recordsAfter, "no refused request is recorded as a read of PHI")

	// The insiders these routes are for do get through.
	w.ok(http.StatusOK, nil, w.auditor1, "GET", "/v1/sessions/"+s1, nil)
	w.ok(http.StatusOK, nil, w.admin1, "GET", "/v1/clients/"+w.k1.ID+"/access-log", nil)
	var own PageResponse[struct{ Text string }]
	w.ok(http.StatusOK, &own, w.k1, "GET", "/v1/sessions/"+s1+"/messages", nil)
	require.Len(t, own.Items, 1)
	assert.Equal(t, secretMessage, own.Items[0].Text)
	rec := w.ok(http.StatusOK, nil, w.k1, "GET", "/v1/sessions/"+s1, nil)
	assert.NotContains(t, rec.Body.String(), secretDiscussion, "a client's view of a session has no discussion")
	assert.NotContains(t, rec.Body.String(), secretNote, "nor notes")
}

// carePatterns are the care routes' patterns, from the policy table.
func carePatterns() map[string]bool {
	out := map[string]bool{}
	for pattern := range DefaultPolicies() {
		_, path, _ := strings.Cut(pattern, " ")
		for _, prefix := range []string{"/v1/sessions", "/v1/assignments", "/v1/audit/", "/v1/providers/{providerId}/inbox",
			"/v1/clinics/{clinicId}/overview", "/v1/clients/{clientId}/sessions", "/v1/clients/{clientId}/scores",
			"/v1/clients/{clientId}/access-log", "/v1/clients/{clientId}/disclosures", "/v1/clients/{clientId}/emergency-access"} {
			if strings.HasPrefix(path, prefix) {
				out[pattern] = true
			}
		}
	}
	return out
}
