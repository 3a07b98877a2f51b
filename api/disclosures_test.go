package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/careflow/careflow/domain"
)

// disclosuresOf reads k1's accounting of disclosures as a, every page.
func (w *careWorld) disclosuresOf(a domain.Actor) []AccessRecord {
	w.t.Helper()
	var out []AccessRecord
	path := "/v1/clients/" + w.k1.ID + "/disclosures?limit=2"
	for {
		var page PageResponse[AccessRecord]
		w.ok(http.StatusOK, &page, a, "GET", path, nil)
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out
		}
		path = "/v1/clients/" + w.k1.ID + "/disclosures?limit=2&cursor=" + page.NextCursor
	}
}

func routesOf(recs []AccessRecord) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.ActorID+" "+r.Route)
	}
	return out
}

func TestDisclosuresListReadsOutsideTheCareTeam(t *testing.T) {
	w := newCareWorld(t)
	sched, _ := w.scheduleForK1(1)
	s1 := sched.Sessions[0].ID
	timeline := "GET /v1/audit/clients/{clientId}/timeline"

	// Long ago: an auditor read, which six years later is out of the window.
	w.ok(http.StatusOK, nil, w.auditor1, "GET", "/v1/audit/clients/"+w.k1.ID+"/timeline", nil)
	w.clock.Advance(6*365*24*time.Hour + 3*24*time.Hour)

	// The care team and the client themself: not disclosures.
	w.ok(http.StatusOK, nil, w.p1, "GET", "/v1/clients/"+w.k1.ID+"/sessions", nil)
	w.ok(http.StatusOK, nil, w.p2, "GET", "/v1/sessions/"+s1, nil)
	w.ok(http.StatusOK, nil, w.k1, "GET", "/v1/clients/"+w.k1.ID+"/sessions", nil)
	// An admin by role, and under break-glass: disclosures.
	w.ok(http.StatusOK, nil, w.admin1, "GET", "/v1/sessions/"+s1, nil, HeaderPurpose, "quality review")
	g := w.breakGlass(w.admin1, "crisis", 60)
	w.ok(http.StatusOK, nil, w.admin1, "GET", "/v1/clients/"+w.k1.ID+"/sessions", nil)
	w.ok(http.StatusOK, nil, w.auditor1, "GET", "/v1/audit/clients/"+w.k1.ID+"/timeline", nil)

	// The client reads their own accounting (that read is not a disclosure).
	got := w.disclosuresOf(w.k1)
	assert.Equal(t, []string{
		w.admin1.ID + " GET /v1/sessions/{sessionId}",
		w.admin1.ID + " GET /v1/clients/{clientId}/sessions",
		w.auditor1.ID + " " + timeline,
	}, routesOf(got))
	assert.Equal(t, "quality review", got[0].Purpose)
	assert.Equal(t, BasisClinicRole, got[0].Basis)
	assert.False(t, got[0].BreakGlass)
	assert.True(t, got[1].BreakGlass)
	assert.Equal(t, g.IDs["grantId"], got[1].EmergencyGrantID)
	assert.Equal(t, "crisis", got[1].EmergencyReason)
	assert.Equal(t, string(domain.RoleClinicAdmin), got[1].Role)
	assert.Equal(t, "u-"+w.admin1.ID, got[1].UserID)
	for _, r := range got {
		assert.True(t, r.At.After(w.clock.Now().AddDate(-6, 0, 0)), "within six years")
	}

	// The auditor's and the admin's reads of the accounting (each page) are
	// themselves disclosures; the client's are not. A system admin may read
	// it too.
	w.disclosuresOf(w.auditor1)
	got = w.disclosuresOf(w.sys)
	readers := map[string]int{}
	for _, r := range got {
		assert.NotContains(t, []string{BasisSelf, BasisCareTeam}, r.Basis)
		if r.Route == "GET /v1/clients/{clientId}/disclosures" {
			readers[r.ActorID]++
		}
	}
	assert.Positive(t, readers[w.auditor1.ID])
	assert.Zero(t, readers[w.k1.ID])
	assert.Equal(t, routesOf(got[:3]), []string{
		w.admin1.ID + " GET /v1/sessions/{sessionId}",
		w.admin1.ID + " GET /v1/clients/{clientId}/sessions",
		w.auditor1.ID + " " + timeline,
	})

	// Who may not read it.
	assert.Equal(t, http.StatusNotFound, w.do(w.k2, "GET", "/v1/clients/"+w.k1.ID+"/disclosures", nil).Code)
	assert.Equal(t, http.StatusNotFound, w.do(w.admin2, "GET", "/v1/clients/"+w.k1.ID+"/disclosures", nil).Code)
	assert.Equal(t, http.StatusForbidden, w.do(w.p1, "GET", "/v1/clients/"+w.k1.ID+"/disclosures", nil).Code)
	assert.Equal(t, http.StatusUnauthorized, w.do(anonymous, "GET", "/v1/clients/"+w.k1.ID+"/disclosures", nil).Code)
}
