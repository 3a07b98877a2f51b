package api

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/projections/views"
)

type grantAnswer struct {
	CommandResponse
	ExpiresAt time.Time `json:"expiresAt"`
}

// breakGlass grants a emergency access to k1 for minutes, through the API.
func (w *careWorld) breakGlass(a domain.Actor, reason string, minutes int) grantAnswer {
	w.t.Helper()
	var g grantAnswer
	rec := w.ok(http.StatusCreated, &g, a, "POST", "/v1/clients/"+w.k1.ID+"/emergency-access",
		map[string]any{"reason": reason, "minutes": minutes})
	require.NotEmpty(w.t, g.IDs["grantId"])
	require.NotEmpty(w.t, rec.Header().Get(HeaderPosition))
	return g
}

func TestBreakGlassGrantsTimeLimitedReads(t *testing.T) {
	w := newCareWorld(t)
	w.scheduleForK1(1)
	sessions := "/v1/clients/" + w.k1.ID + "/sessions"

	// Without a grant the clinic's admin may not read the care team's records.
	rec := w.do(w.admin1, "GET", sessions, nil)
	require.Equal(t, http.StatusForbidden, rec.Code, rec.Body.String())
	assert.Equal(t, "emergency-access-required", decodeProblem(t, rec).Code)

	// A reason is required; minutes are bounded.
	path := "/v1/clients/" + w.k1.ID + "/emergency-access"
	rec = w.do(w.admin1, "POST", path, map[string]any{"reason": "  "})
	require.Equal(t, StatusValidation, rec.Code, rec.Body.String())
	assert.Equal(t, "reason", decodeProblem(t, rec).Errors[0].Field)
	rec = w.do(w.admin1, "POST", path, map[string]any{"reason": "x", "minutes": 1441})
	require.Equal(t, StatusValidation, rec.Code, rec.Body.String())
	assert.Equal(t, "minutes", decodeProblem(t, rec).Errors[0].Field)
	// Clients, providers and auditors cannot break the glass; another
	// clinic's admin does not see the client.
	for _, a := range []domain.Actor{w.k1, w.p1, w.p3, w.auditor1} {
		rec = w.do(a, "POST", path, map[string]any{"reason": "x"})
		assert.Equal(t, http.StatusForbidden, rec.Code, "%s: %s", a.Role, rec.Body.String())
	}
	rec = w.do(w.admin2, "POST", path, map[string]any{"reason": "x"})
	assert.Equal(t, http.StatusNotFound, rec.Code, rec.Body.String())

	// The admin breaks the glass for 30 minutes and reads.
	g := w.breakGlass(w.admin1, "client in crisis, care team unreachable", 30)
	assert.Equal(t, w.clock.Now().UTC().Add(30*time.Minute), g.ExpiresAt.UTC())
	var list views.ClientSessionList
	w.ok(http.StatusOK, &list, w.admin1, "GET", sessions, nil, HeaderPurpose, "crisis")
	w.ok(http.StatusOK, nil, w.admin1, "GET", "/v1/clients/"+w.k1.ID+"/scores?bookId=phq-9", nil)
	// Only their own grant counts: another admin of the clinic still may not.
	other := w.addStaff(w.clinic1, "admin-3", domain.RoleClinicAdmin)
	assert.Equal(t, http.StatusForbidden, w.do(other, "GET", sessions, nil).Code)
	// Nor is the client of another clinic opened.
	assert.Equal(t, http.StatusNotFound, w.do(w.admin1, "GET", "/v1/clients/"+w.k9.ID+"/sessions", nil).Code)

	// The access log marks the reads with the grant and its reason.
	var log PageResponse[AccessRecord]
	w.ok(http.StatusOK, &log, w.auditor1, "GET", "/v1/clients/"+w.k1.ID+"/access-log", nil)
	var glass []AccessRecord
	for _, r := range log.Items {
		if r.BreakGlass {
			glass = append(glass, r)
		}
	}
	require.Len(t, glass, 2)
	assert.Equal(t, w.admin1.ID, glass[0].ActorID)
	assert.Equal(t, "GET /v1/clients/{clientId}/sessions", glass[0].Route)
	assert.Equal(t, BasisEmergency, glass[0].Basis)
	assert.Equal(t, g.IDs["grantId"], glass[0].EmergencyGrantID)
	assert.Equal(t, "client in crisis, care team unreachable", glass[0].EmergencyReason)
	assert.Equal(t, "crisis", glass[0].Purpose)

	// The care team's inbox shows it.
	for _, p := range []domain.Actor{w.p1, w.p2} {
		var in views.ProviderInbox
		w.ok(http.StatusOK, &in, p, "GET", "/v1/providers/"+p.ID+"/inbox", nil, HeaderMinPosition, w.headString())
		assert.Equal(t, 1, in.Counts.EmergencyAccess, p.ID)
		found := false
		for _, it := range in.Items {
			if it.Kind == views.KindEmergencyAccess && it.ClientID == w.k1.ID {
				found = true
				assert.Equal(t, w.admin1.ID, it.GrantedTo)
				assert.Equal(t, g.IDs["grantId"], it.GrantID)
			}
		}
		assert.True(t, found, "%s sees the grant", p.ID)
	}

	// Once expired, refused again.
	w.clock.Advance(30 * time.Minute)
	rec = w.do(w.admin1, "GET", sessions, nil)
	require.Equal(t, http.StatusForbidden, rec.Code, rec.Body.String())
	assert.Equal(t, "emergency-access-required", decodeProblem(t, rec).Code)
}

func TestBreakGlassLeavesDiscussionAndNotesToTheCareTeam(t *testing.T) {
	w := newCareWorld(t)
	sched, _ := w.scheduleForK1(1)
	s1 := sched.Sessions[0].ID
	w.breakGlass(w.admin1, "crisis", 60)
	for _, sub := range []string{"/discussion", "/notes"} {
		assert.Equal(t, http.StatusForbidden, w.do(w.admin1, "GET", "/v1/sessions/"+s1+sub, nil).Code, sub)
	}
	w.ok(http.StatusOK, nil, w.admin1, "GET", "/v1/sessions/"+s1+"/messages", nil)
}

func TestSystemAdminBreaksTheGlass(t *testing.T) {
	w := newCareWorld(t)
	sessions := "/v1/clients/" + w.k1.ID + "/sessions"
	rec := w.do(w.sys, "GET", sessions, nil)
	require.Equal(t, http.StatusForbidden, rec.Code, rec.Body.String())
	w.breakGlass(w.sys, "subpoena review", 5)
	w.ok(http.StatusOK, nil, w.sys, "GET", sessions, nil)
}

func (w *careWorld) headString() string {
	w.t.Helper()
	return strconv.FormatInt(w.head(), 10)
}
