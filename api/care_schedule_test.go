package api

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/plans"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/views"
	"github.com/careflow/careflow/projections/views/viewstest"
)

func TestScheduleFromADesignPlan(t *testing.T) {
	w := newCareWorld(t)
	plan, err := w.org.CreateDesignPlan(w.ctx, w.meta(w.p1), commands.CreateDesignPlan{ClinicID: w.clinic1, Title: "Low mood",
		Weeks: []plans.Week{{Number: 1, Homework: []string{books.PHQ9ID}}, {Number: 2, Homework: []string{books.GAD7ID}}}})
	require.NoError(t, err)
	start := w.clock.Now().Add(24 * time.Hour)

	// A plan brings its own titles and homework.
	rec := w.do(w.p1, "POST", "/v1/sessions", map[string]any{"clientId": w.k1.ID, "designPlanId": plan.Stream.ID,
		"startsAt": start, "title": "Mine", "bookIds": []string{books.PHQ9ID}})
	p := requireProblem(t, rec, http.StatusUnprocessableEntity, SlugValidation)
	fields := []string{}
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	assert.ElementsMatch(t, []string{"title", "bookIds"}, fields)

	var out scheduledAnswer
	w.ok(http.StatusCreated, &out, w.p1, "POST", "/v1/sessions", map[string]any{"clientId": w.k1.ID, "designPlanId": plan.Stream.ID,
		"startsAt": start, "durationDays": 3}, "Idempotency-Key", "plan-1")
	require.Len(t, out.Sessions, 2)
	assert.Equal(t, 3*24*time.Hour, out.Sessions[0].EndsAt.Sub(out.Sessions[0].StartsAt))
	var second views.SessionDetail
	w.ok(http.StatusOK, &second, w.p1, "GET", "/v1/sessions/"+out.Sessions[1].ID, nil)
	assert.Equal(t, "Low mood — week 2", second.Title)
	require.Len(t, second.Assignments, 1)
	assert.Equal(t, books.GAD7ID, second.Assignments[0].BookID)

	// A retry with the same key is answered, not repeated.
	var again scheduledAnswer
	rec = w.ok(http.StatusOK, &again, w.p1, "POST", "/v1/sessions", map[string]any{"clientId": w.k1.ID, "designPlanId": plan.Stream.ID,
		"startsAt": start, "durationDays": 3}, "Idempotency-Key", "plan-1")
	assert.True(t, again.Duplicate)
	assert.Equal(t, "true", rec.Header().Get(HeaderReplayed))
	assert.Equal(t, out.Sessions, again.Sessions)

	// A clinic that is not the client's hides the client.
	rec = w.do(w.p1, "POST", "/v1/sessions", map[string]any{"clientId": w.k1.ID, "clinicId": w.clinic2, "title": "x", "startsAt": start})
	assert.Equal(t, "client-not-found", requireProblem(t, rec, http.StatusNotFound, SlugNotFound).Code)
	rec = w.do(w.p1, "POST", "/v1/sessions", map[string]any{"clientId": w.k1.ID, "title": "x", "startsAt": start, "durationDays": -1})
	requireProblem(t, rec, http.StatusUnprocessableEntity, SlugValidation)
}

func TestClientsMayNotTimeTravel(t *testing.T) {
	w := newCareWorld(t)
	sched, _ := w.scheduleForK1(1)
	rec := w.do(w.k1, "GET", "/v1/sessions/"+sched.Sessions[0].ID+"?asOf="+w.clock.Now().Format(time.RFC3339), nil)
	requireProblem(t, rec, http.StatusForbidden, SlugForbidden)
	rec = w.do(w.p1, "GET", "/v1/sessions/"+sched.Sessions[0].ID+"?asOf=yesterday", nil)
	requireProblem(t, rec, http.StatusBadRequest, SlugInvalidRequest)
}

// brokenAccessLog cannot record.
type brokenAccessLog struct{ AccessLog }

func (brokenAccessLog) Record(context.Context, AccessRecord) error { return errors.New("disk full") }

func TestNoAccessRecordNoPHI(t *testing.T) {
	w := newCareWorld(t, func(c *CareConfig) { c.AccessLog = brokenAccessLog{c.AccessLog} })
	sched, _ := w.scheduleForK1(1)
	rec := w.do(w.p1, "GET", "/v1/sessions/"+sched.Sessions[0].ID, nil)
	requireProblem(t, rec, http.StatusInternalServerError, SlugInternal)
	assert.NotContains(t, rec.Body.String(), "Mood check")
	assert.NotContains(t, rec.Body.String(), "disk full")
}

func TestActivateSessionByHand(t *testing.T) {
	w := newCareWorld(t)
	out, _ := w.scheduleForK1(1)
	s1 := out.Sessions[0].ID
	path := "/v1/sessions/" + s1 + "/activate"

	rec := w.do(w.p1, "POST", path, nil)
	assert.Equal(t, http.StatusConflict, rec.Code, "not before its start: %s", rec.Body)

	w.clock.Advance(25 * time.Hour)
	rec = w.do(w.k1, "POST", path, nil)
	assert.Equal(t, http.StatusForbidden, rec.Code, "a client does not start sessions")

	rec = w.do(w.p1, "POST", path, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.NotEmpty(t, rec.Header().Get("ETag"))

	var s views.SessionDetail
	w.ok(http.StatusOK, &s, w.p1, "GET", "/v1/sessions/"+s1, nil)
	assert.Equal(t, "active", s.State)

	rec = w.do(w.p1, "POST", path, map[string]any{})
	assert.Equal(t, http.StatusConflict, rec.Code, "an active session is not activated again")
}

// Clinic admins and auditors read a session without the care team's
// discussion and notes, as on those routes; providers see them.
func TestSessionViewHidesDiscussionAndNotesFromStaff(t *testing.T) {
	w := newCareWorld(t)
	out, _ := w.scheduleForK1(1)
	s1 := out.Sessions[0].ID
	w.ok(http.StatusCreated, nil, w.p2, "POST", "/v1/sessions/"+s1+"/discussion", map[string]string{"text": secretDiscussion})
	w.ok(http.StatusCreated, nil, w.p1, "POST", "/v1/sessions/"+s1+"/notes", map[string]string{"text": secretNote})

	for _, staff := range []domain.Actor{w.admin1, w.auditor1} {
		rec := w.do(staff, "GET", "/v1/sessions/"+s1, nil)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.NotContains(t, rec.Body.String(), secretDiscussion, "%s", staff.Role)
		assert.NotContains(t, rec.Body.String(), secretNote, "%s", staff.Role)
	}
	rec := w.do(w.p1, "GET", "/v1/sessions/"+s1, nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), secretDiscussion, "the care team sees its discussion")
	assert.Contains(t, rec.Body.String(), secretNote)
}

// neverFresh is a Freshness whose read models never catch up.
type neverFresh struct{}

func (neverFresh) WaitFor(context.Context, string, int64, time.Duration) (bool, error) {
	return false, nil
}

// An assignment given through the API is known to belong to its session
// at once: the client can start it before the assignment index has seen
// it. One the index has not seen and this server did not write is
// "catching up" (503), not guessed.
func TestStartRightAfterAssignNeedsNoIndex(t *testing.T) {
	var w *careWorld
	w = newCareWorld(t, func(c *CareConfig) {
		// The read models this server reads never move: prepared over an
		// empty log, and never run.
		ctx := context.Background()
		empty, err := projections.OpenDB(ctx, filepath.Join(t.TempDir(), "empty.db"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = empty.Close() })
		reg, err := commands.NewRegistry()
		require.NoError(t, err)
		phi, err := views.All(reg, viewstest.NewSealer())
		require.NoError(t, err)
		runner, err := projections.NewRunner(memory.New(eventstore.Options{Types: reg}), empty, nil,
			append(phi, audit.NewTrail(), NewAssignmentIndex())...)
		require.NoError(t, err)
		require.NoError(t, runner.Prepare(ctx))
		c.Views, c.Freshness = empty, neverFresh{}
	})
	scheduled, _ := w.scheduleForK1(1)
	sessionID := scheduled.Sessions[0].ID
	w.clock.Advance(24 * time.Hour)
	w.activate(sessionID)

	var assigned struct {
		IDs map[string]string `json:"ids"`
	}
	w.ok(http.StatusCreated, &assigned, w.p1, "POST", "/v1/sessions/"+sessionID+"/assignments", map[string]any{"bookId": books.GAD7ID})
	require.NotEmpty(t, assigned.IDs["assignmentId"])
	w.ok(http.StatusOK, nil, w.k1, "POST", "/v1/assignments/"+assigned.IDs["assignmentId"]+"/start", map[string]any{})

	out, err := w.care.AssignHomework(w.ctx, w.meta(w.p1), commands.AssignHomework{SessionID: sessionID, BookID: books.PHQ9ID})
	require.NoError(t, err)
	rec := w.do(w.k1, "POST", "/v1/assignments/"+out.ID+"/start", map[string]any{})
	requireProblem(t, rec, http.StatusServiceUnavailable, SlugUnavailable)
}
