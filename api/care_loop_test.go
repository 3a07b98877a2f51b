package api

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/views"
)

// TestCareLoopOverHTTP drives one care loop through the API: a repeating
// PHQ-9 session, the client's answers with a risk on item 9, the provider's
// inbox, feedback, comments, closing, the audit timeline and the session
// as of an earlier instant.
func TestCareLoopOverHTTP(t *testing.T) {
	w := newCareWorld(t)

	// p1 schedules two weekly PHQ-9 sessions for k1.
	sched, pos := w.scheduleForK1(2)
	s1 := sched.Sessions[0].ID
	assert.Equal(t, s1, sched.IDs["sessionId"])
	assert.Equal(t, 7*24*time.Hour, sched.Sessions[0].EndsAt.Sub(sched.Sessions[0].StartsAt), "a week by default")
	assert.True(t, sched.Sessions[1].StartsAt.Equal(sched.Sessions[0].EndsAt), "weekly series")

	// The client sees both sessions at once (read-your-write by position).
	var list views.ClientSessionList
	rec := w.ok(http.StatusOK, &list, w.k1, "GET", "/v1/clients/"+w.k1.ID+"/sessions", nil, HeaderMinPosition, pos)
	assert.Equal(t, "true", rec.Header().Get(HeaderFresh))
	require.Len(t, list.Upcoming, 2)
	assert.Equal(t, s1, list.Upcoming[0].ID)

	assignments := w.assignmentsOf(s1)
	require.Len(t, assignments, 1)
	a1 := assignments[0]
	beforeStart := w.clock.Now()
	w.clock.Advance(time.Minute)

	// The session starts; the client opens and answers the PHQ-9 with
	// item 9 (thoughts of self-harm) above zero.
	w.clock.Advance(24 * time.Hour)
	w.activate(s1)
	var a views.ClientAssignment
	var view assignmentView
	w.ok(http.StatusOK, &view, w.k1, "GET", "/v1/assignments/"+a1, nil)
	require.NotNil(t, view.Client, "the client gets the client's view")
	assert.Nil(t, view.Team)
	a = *view.Client
	assert.Equal(t, books.PHQ9ID, a.BookID)
	w.ok(http.StatusOK, nil, w.k1, "POST", "/v1/assignments/"+a1+"/start", nil)
	var scored responsesAnswer
	rec = w.ok(http.StatusOK, &scored, w.k1, "POST", "/v1/assignments/"+a1+"/responses",
		map[string]any{"answers": phq9(1, 2)})
	require.True(t, scored.Scored)
	require.NotNil(t, scored.Score)
	assert.Equal(t, 10, *scored.Score)
	assert.NotEmpty(t, scored.Severity)
	require.NotEmpty(t, scored.Flags)
	assert.True(t, scored.Flags[0].Urgent)
	assert.Equal(t, "9", scored.Flags[0].ItemID)
	completedAt := positionOf(t, rec)

	// The provider's inbox shows the urgent risk first.
	var inbox views.ProviderInbox
	rec = w.ok(http.StatusOK, &inbox, w.p1, "GET", "/v1/providers/"+w.p1.ID+"/inbox", nil, HeaderMinPosition, completedAt)
	assert.Equal(t, "true", rec.Header().Get(HeaderFresh))
	require.NotEmpty(t, inbox.Items)
	assert.Equal(t, views.KindRisk, inbox.Items[0].Kind)
	assert.Equal(t, w.k1.ID, inbox.Items[0].ClientID)
	assert.Equal(t, a1, inbox.Items[0].AssignmentID)
	assert.Equal(t, 1, inbox.Counts.Risk)

	// Feedback, the client's comment and the provider's reply.
	w.clock.Advance(time.Hour)
	var fb CommandResponse
	w.ok(http.StatusCreated, &fb, w.p1, "POST", "/v1/assignments/"+a1+"/feedback", map[string]string{"text": "Thank you; let's talk about item 9."})
	feedbackID := fb.IDs["feedbackId"]
	require.NotEmpty(t, feedbackID)
	var comment CommandResponse
	w.ok(http.StatusCreated, &comment, w.k1, "POST", "/v1/assignments/"+a1+"/comments",
		map[string]string{"feedbackId": feedbackID, "text": "It was a hard week."})
	require.NotEmpty(t, comment.IDs["commentId"])
	w.ok(http.StatusCreated, nil, w.p1, "POST", "/v1/assignments/"+a1+"/comments",
		map[string]string{"feedbackId": feedbackID, "text": "I hear you. Call the crisis line if it gets worse."})
	var threads PageResponse[views.FeedbackThread]
	w.ok(http.StatusOK, &threads, w.k1, "GET", "/v1/assignments/"+a1+"/comments", nil)
	require.Len(t, threads.Items, 1)
	require.Len(t, threads.Items[0].Comments, 2)
	assert.Equal(t, "It was a hard week.", threads.Items[0].Comments[0].Text)
	assert.Equal(t, "client", threads.Items[0].Comments[0].AuthorRole)

	// Messages, discussion and notes.
	w.ok(http.StatusCreated, nil, w.k1, "POST", "/v1/sessions/"+s1+"/messages", map[string]string{"text": "Thanks."})
	w.ok(http.StatusCreated, nil, w.p2, "POST", "/v1/sessions/"+s1+"/discussion", map[string]string{"text": "Safety plan?"})
	w.ok(http.StatusCreated, nil, w.p1, "POST", "/v1/sessions/"+s1+"/notes", map[string]string{"text": "Follow up."})
	var posts PageResponse[views.Post]
	w.ok(http.StatusOK, &posts, w.k1, "GET", "/v1/sessions/"+s1+"/messages", nil)
	require.Len(t, posts.Items, 1)
	// Lists are paginated: a page of one, then the rest after its cursor.
	w.ok(http.StatusCreated, nil, w.p1, "POST", "/v1/sessions/"+s1+"/messages", map[string]string{"text": "Good."})
	var page1, page2 PageResponse[views.Post]
	w.ok(http.StatusOK, &page1, w.k1, "GET", "/v1/sessions/"+s1+"/messages?limit=1", nil)
	require.Len(t, page1.Items, 1)
	assert.Equal(t, "Thanks.", page1.Items[0].Text)
	require.NotEmpty(t, page1.NextCursor)
	w.ok(http.StatusOK, &page2, w.k1, "GET", "/v1/sessions/"+s1+"/messages?limit=1&cursor="+page1.NextCursor, nil)
	require.Len(t, page2.Items, 1)
	assert.Equal(t, "Good.", page2.Items[0].Text)
	assert.Empty(t, page2.NextCursor, "the last page")
	w.ok(http.StatusBadRequest, nil, w.k1, "GET", "/v1/sessions/"+s1+"/messages?cursor="+EncodeCursor("no-such-message"), nil)
	w.ok(http.StatusOK, &posts, w.p1, "GET", "/v1/sessions/"+s1+"/discussion", nil)
	require.Len(t, posts.Items, 1)
	assert.Equal(t, "Safety plan?", posts.Items[0].Text)
	w.ok(http.StatusOK, &posts, w.p2, "GET", "/v1/sessions/"+s1+"/notes", nil)
	require.Len(t, posts.Items, 1)

	// Close, honouring If-Match: a stale version is refused.
	var current views.SessionDetail
	rec = w.ok(http.StatusOK, &current, w.p1, "GET", "/v1/sessions/"+s1, nil)
	assert.Equal(t, string(care.StateActive), current.State)
	stale := w.do(w.p1, "POST", "/v1/sessions/"+s1+"/close", map[string]string{"reason": "done"}, "If-Match", `"1"`)
	requireProblem(t, stale, http.StatusPreconditionFailed, SlugPrecondition)
	w.clock.Advance(time.Hour)
	var closed CommandResponse
	w.ok(http.StatusOK, &closed, w.p1, "POST", "/v1/sessions/"+s1+"/close", map[string]string{"reason": "Week done"},
		"If-Match", rec.Header().Get("ETag"))
	w.ok(http.StatusOK, &current, w.p1, "GET", "/v1/sessions/"+s1, nil)
	assert.Equal(t, string(care.StateClosed), current.State)

	// The audit timeline lists it all, for the clinic's auditor.
	var timeline PageResponse[audit.Entry]
	w.ok(http.StatusOK, &timeline, w.auditor1, "GET", "/v1/audit/clients/"+w.k1.ID+"/timeline", nil,
		HeaderMinPosition, strconv.FormatInt(closed.Position, 10))
	types := map[string]bool{}
	for _, e := range timeline.Items {
		types[e.Type] = true
	}
	for _, want := range []string{
		care.SessionScheduled{}.EventType(), care.AssignmentGiven{}.EventType(), care.SessionActivated{}.EventType(),
		care.AssignmentStarted{}.EventType(), care.AssignmentCompleted{}.EventType(),
		care.AssignmentFeedbackGiven{}.EventType(), care.AssignmentCommentPosted{}.EventType(),
		care.SessionMessagePosted{}.EventType(), care.SessionDiscussionPosted{}.EventType(),
		care.SessionNoteWritten{}.EventType(), care.SessionClosed{}.EventType(),
	} {
		assert.True(t, types[want], "the timeline lists %s", want)
	}
	assert.NotContains(t, w.do(w.auditor1, "GET", "/v1/audit/clients/"+w.k1.ID+"/timeline", nil).Body.String(),
		"hard week", "the timeline shows envelopes, never bodies")

	// The same timeline as of before the session started stops there, and
	// pages with a cursor.
	var early PageResponse[audit.Entry]
	w.ok(http.StatusOK, &early, w.auditor1, "GET",
		"/v1/audit/clients/"+w.k1.ID+"/timeline?limit=2&asOf="+url.QueryEscape(beforeStart.Format(time.RFC3339Nano)), nil)
	require.Len(t, early.Items, 2)
	require.NotEmpty(t, early.NextCursor)
	for _, e := range early.Items {
		assert.False(t, e.RecordedAt.After(beforeStart))
	}
	var rest PageResponse[audit.Entry]
	w.ok(http.StatusOK, &rest, w.auditor1, "GET", "/v1/audit/clients/"+w.k1.ID+"/timeline?limit=200&cursor="+
		early.NextCursor+"&asOf="+url.QueryEscape(beforeStart.Format(time.RFC3339Nano)), nil)
	for _, e := range rest.Items {
		assert.NotEqual(t, care.SessionActivated{}.EventType(), e.Type, "not activated as of then")
		assert.Greater(t, e.Position, early.Items[1].Position)
	}

	// The session as of before it started: scheduled, its PHQ-9 given.
	var then audit.SessionSnapshot
	w.ok(http.StatusOK, &then, w.p1, "GET", "/v1/sessions/"+s1+"?asOf="+url.QueryEscape(beforeStart.Format(time.RFC3339Nano)), nil)
	assert.Equal(t, string(care.StateScheduled), then.Session.Status)
	require.Len(t, then.Session.Assignments, 1)
	assert.Equal(t, string(care.AssignmentGivenStatus), then.Session.Assignments[0].Status)
	assert.Zero(t, then.Session.Notes)
	// ... and as of now: closed, with a note.
	var now audit.SessionSnapshot
	w.ok(http.StatusOK, &now, w.auditor1, "GET", "/v1/sessions/"+s1+"?asOf="+url.QueryEscape(w.clock.Now().Format(time.RFC3339Nano)), nil)
	assert.Equal(t, string(care.StateClosed), now.Session.Status)
	assert.Equal(t, 1, now.Session.Notes)

	// The stream's history, for the clinic admin.
	var history PageResponse[audit.Entry]
	w.ok(http.StatusOK, &history, w.admin1, "GET", "/v1/audit/streams/session-"+s1, nil)
	require.NotEmpty(t, history.Items)
	assert.Equal(t, care.SessionScheduled{}.EventType(), history.Items[0].Type)
	assert.Equal(t, care.SessionClosed{}.EventType(), history.Items[len(history.Items)-1].Type)

	// Scores over time and the clinic overview.
	var scores views.ScoreSeries
	w.ok(http.StatusOK, &scores, w.k1, "GET", "/v1/clients/"+w.k1.ID+"/scores?bookId="+books.PHQ9ID, nil)
	require.Len(t, scores.Points, 1)
	assert.Equal(t, 10, scores.Points[0].Total)
	assert.True(t, scores.Points[0].Urgent)
	var overview views.ClinicReport
	w.ok(http.StatusOK, &overview, w.admin1, "GET", "/v1/clinics/"+w.clinic1+"/overview", nil)
	assert.Equal(t, "Main", overview.ClinicName)
	assert.Equal(t, 1, overview.Sessions.Closed)
}
