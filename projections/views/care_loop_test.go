package views_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/views"
)

const (
	discussionBody = "DISCUSSION-BODY: client seems withdrawn, consider a safety plan"
	noteBody       = "NOTE-BODY: quick reflection on week one"
)

func kinds(in views.ProviderInbox) []string {
	out := []string{}
	for _, it := range in.Items {
		out = append(out, it.Kind)
	}
	return out
}

// TestCareLoop drives one care loop through the command handlers and
// checks every read model after each step.
func TestCareLoop(t *testing.T) {
	w := newWorld(t)
	ctx := w.ctx
	inbox := func(p string, now time.Time) views.ProviderInbox {
		t.Helper()
		w.caughtUp()
		in, err := views.Inbox(ctx, w.db, p, now)
		require.NoError(t, err)
		return in
	}
	clientList := func() views.ClientSessionList {
		t.Helper()
		w.caughtUp()
		l, err := views.ClientSessions(ctx, w.db, w.k1.ID)
		require.NoError(t, err)
		return l
	}
	sessionView := func(id string) views.SessionDetail {
		t.Helper()
		w.caughtUp()
		s, err := views.SessionView(ctx, w.db, id)
		require.NoError(t, err)
		return s
	}
	overview := func(now time.Time) views.ClinicReport {
		t.Helper()
		w.caughtUp()
		o, err := views.ClinicOverview(ctx, w.db, w.clinic, now)
		require.NoError(t, err)
		return o
	}
	workload := func(o views.ClinicReport, provider string) views.ProviderWorkload {
		t.Helper()
		for _, p := range o.Providers {
			if p.ProviderID == provider {
				return p
			}
		}
		t.Fatalf("provider %s is not in the overview", provider)
		return views.ProviderWorkload{}
	}

	// Registered: nothing needs anyone yet.
	o := overview(w.clock())
	assert.Equal(t, "Main", o.ClinicName)
	assert.Equal(t, 2, o.ActiveClients)
	assert.Len(t, o.Providers, 3)
	assert.Equal(t, views.InboxCounts{}, inbox(w.p1.ID, w.clock()).Counts)

	// p1 schedules two weekly PHQ-9 sessions for k1.
	sched, err := w.care.ScheduleSession(ctx, w.meta(w.p1), commands.ScheduleSession{
		ClientID: w.k1.ID, Title: "Mood check", Start: careStart, Repeat: 2, Homework: []string{books.PHQ9ID},
	})
	require.NoError(t, err)
	require.Len(t, sched.Sessions, 2)
	s1, s2 := sched.Sessions[0].ID, sched.Sessions[1].ID
	a1 := w.session(s1).Assignments[0].ID
	a2 := w.session(s2).Assignments[0].ID

	list := clientList()
	require.Len(t, list.Upcoming, 2)
	assert.Empty(t, list.Active)
	assert.Equal(t, s1, list.Upcoming[0].ID, "soonest first")
	assert.Equal(t, 1, list.Upcoming[0].SeriesIndex)
	require.Len(t, list.Upcoming[0].Assignments, 1)
	assert.Equal(t, books.PHQ9ID, list.Upcoming[0].Assignments[0].BookID)
	assert.Equal(t, string(care.AssignmentGivenStatus), list.Upcoming[0].Assignments[0].Status)
	assert.True(t, list.Upcoming[0].Assignments[0].Due.Equal(sched.Sessions[0].End))
	assert.Equal(t, views.SessionCounts{Scheduled: 2}, overview(w.clock()).Sessions)
	assert.Equal(t, 2, workload(overview(w.clock()), w.p1.ID).OpenSessions)

	// Time-based: the first session ends within 48 hours only near its end.
	end1 := sched.Sessions[0].End
	assert.Zero(t, inbox(w.p1.ID, careStart).Counts.SessionsEnding)
	near := inbox(w.p2.ID, end1.Add(-24*time.Hour))
	assert.Equal(t, 1, near.Counts.SessionsEnding)
	assert.Equal(t, []string{views.KindSessionEnding}, kinds(near))
	assert.Equal(t, s1, near.Items[0].SessionID)
	assert.Zero(t, inbox(w.p3.ID, end1.Add(-24*time.Hour)).Counts.SessionsEnding, "p3 is not on k1's team")
	later := inbox(w.p1.ID, sched.Sessions[1].End.Add(-time.Hour))
	require.Equal(t, []string{views.KindSessionEnding}, kinds(later), "the first session has ended by then")
	assert.Equal(t, s2, later.Items[0].SessionID)

	// The session starts; the client writes first, then completes the
	// PHQ-9 with item 9 above zero.
	w.at(careStart)
	_, err = w.care.ActivateSession(ctx, w.meta(w.sys), commands.ActivateSession{SessionID: s1})
	require.NoError(t, err)
	list = clientList()
	require.Len(t, list.Active, 1)
	require.Len(t, list.Upcoming, 1)
	assert.Equal(t, s1, list.Active[0].ID)

	w.at(careStart.Add(time.Hour))
	msg, err := w.care.PostMessage(ctx, w.meta(w.k1), commands.PostMessage{SessionID: s1, Text: "I had a hard week"})
	require.NoError(t, err)
	in := inbox(w.p1.ID, w.clock())
	assert.Equal(t, views.InboxCounts{ClientMessages: 1, Total: 1}, in.Counts)
	assert.Equal(t, msg.ID, in.Items[0].MessageID)
	assert.Equal(t, "Kim", in.Items[0].ClientName)
	assert.Equal(t, "Mood check", in.Items[0].SessionTitle)

	w.at(careStart.Add(2 * time.Hour))
	_, err = w.care.StartAssignment(ctx, w.meta(w.k1), commands.StartAssignment{SessionID: s1, AssignmentID: a1})
	require.NoError(t, err)
	done, err := w.care.CompleteAssignment(ctx, w.meta(w.k1), commands.CompleteAssignment{
		SessionID: s1, AssignmentID: a1, Answers: answers(books.PHQ9ID, 1, 1, 1, 1, 1, 1, 1, 1, 2),
	})
	require.NoError(t, err)
	require.True(t, done.Score.Urgent())

	for _, p := range []string{w.p1.ID, w.p2.ID} {
		in = inbox(p, w.clock())
		assert.Equal(t, views.InboxCounts{Risk: 1, ClientMessages: 1, Total: 2}, in.Counts, p)
		require.Equal(t, []string{views.KindRisk, views.KindClientMessage}, kinds(in), "risk first, though the message is older")
		risk := in.Items[0]
		assert.Equal(t, a1, risk.AssignmentID)
		assert.Equal(t, "PHQ-9", risk.BookTitle)
		require.NotNil(t, risk.Total)
		assert.Equal(t, 10, *risk.Total)
		assert.Equal(t, "moderate", risk.Severity)
		require.Len(t, risk.Flags, 1)
		assert.Equal(t, "9", risk.Flags[0].ItemID)
		assert.True(t, risk.Flags[0].Urgent)
	}
	assert.Equal(t, views.InboxCounts{}, inbox(w.p3.ID, w.clock()).Counts, "p3 is not on the team")
	assert.Equal(t, 1, workload(overview(w.clock()), w.p1.ID).AwaitingFeedback)

	scores, err := views.ScoreHistory(ctx, w.db, w.k1.ID, books.PHQ9ID)
	require.NoError(t, err)
	require.Len(t, scores.Points, 1)
	assert.Equal(t, 10, scores.Points[0].Total)
	assert.True(t, scores.Points[0].Urgent)

	list = clientList()
	ca := list.Active[0].Assignments[0]
	assert.Equal(t, string(care.AssignmentCompletedStatus), ca.Status)
	require.NotNil(t, ca.Total)
	assert.Equal(t, 10, *ca.Total)

	// p1 gives feedback: the risk item leaves both inboxes.
	w.at(careStart.Add(3 * time.Hour))
	fb, err := w.care.GiveFeedback(ctx, w.meta(w.p1), commands.GiveFeedback{SessionID: s1, AssignmentID: a1, Text: "Thank you. Let's talk about item 9."})
	require.NoError(t, err)
	assert.Equal(t, []string{views.KindClientMessage}, kinds(inbox(w.p1.ID, w.clock())))
	assert.Equal(t, []string{views.KindClientMessage}, kinds(inbox(w.p2.ID, w.clock())))
	assert.Zero(t, workload(overview(w.clock()), w.p1.ID).AwaitingFeedback)

	// The client asks about the feedback; p2 replies in the thread.
	w.at(careStart.Add(4 * time.Hour))
	comment, err := w.care.CommentOnFeedback(ctx, w.meta(w.k1), commands.CommentOnFeedback{SessionID: s1, AssignmentID: a1, FeedbackID: fb.ID, Text: "What does item 9 mean?"})
	require.NoError(t, err)
	in = inbox(w.p1.ID, w.clock())
	assert.Equal(t, views.InboxCounts{ClientMessages: 1, ClientComments: 1, Total: 2}, in.Counts)
	assert.Equal(t, comment.ID, in.Items[1].CommentID)
	assert.Equal(t, fb.ID, in.Items[1].FeedbackID)
	_, err = w.care.CommentOnFeedback(ctx, w.meta(w.p2), commands.CommentOnFeedback{SessionID: s1, AssignmentID: a1, FeedbackID: fb.ID, Text: "It asks about thoughts of self-harm."})
	require.NoError(t, err)
	assert.Equal(t, views.InboxCounts{ClientMessages: 1, Total: 1}, inbox(w.p1.ID, w.clock()).Counts)

	// p2 answers the message.
	_, err = w.care.PostMessage(ctx, w.meta(w.p2), commands.PostMessage{SessionID: s1, Text: "I'm sorry to hear that. Let's talk."})
	require.NoError(t, err)
	assert.Equal(t, views.InboxCounts{}, inbox(w.p1.ID, w.clock()).Counts)
	assert.Equal(t, views.InboxCounts{}, inbox(w.p2.ID, w.clock()).Counts)

	// The team talks and writes notes; the client's view never shows them.
	_, err = w.care.PostDiscussion(ctx, w.meta(w.p1), commands.PostDiscussion{SessionID: s1, Text: discussionBody})
	require.NoError(t, err)
	_, err = w.care.WriteNote(ctx, w.meta(w.p2), commands.WriteNote{SessionID: s1, Text: noteBody})
	require.NoError(t, err)

	sv := sessionView(s1)
	assert.Equal(t, string(care.StateActive), sv.State)
	require.Len(t, sv.Assignments, 1)
	assert.Len(t, sv.Assignments[0].Answers, 9)
	assert.True(t, sv.Assignments[0].Urgent)
	require.Len(t, sv.Assignments[0].Feedback, 1)
	require.Len(t, sv.Assignments[0].Feedback[0].Comments, 2)
	assert.Equal(t, "client", sv.Assignments[0].Feedback[0].Comments[0].AuthorRole)
	assert.Equal(t, "provider", sv.Assignments[0].Feedback[0].Comments[1].AuthorRole)
	require.Len(t, sv.Messages, 2)
	require.Len(t, sv.Discussion, 1)
	assert.Equal(t, discussionBody, sv.Discussion[0].Text)
	require.Len(t, sv.Notes, 1)
	assert.Equal(t, noteBody, sv.Notes[0].Text)

	detail, err := views.ClientSessionDetail(ctx, w.db, w.k1.ID, s1)
	require.NoError(t, err)
	require.Len(t, detail.Messages, 2)
	require.Len(t, detail.Assignments[0].Feedback, 1)
	assert.Len(t, detail.Assignments[0].Feedback[0].Comments, 2)
	_, err = views.ClientSessionDetail(ctx, w.db, w.k2.ID, s1)
	assert.ErrorIs(t, err, views.ErrNotFound, "another client's session")
	assertClientViewHides(t, ctx, w.db, discussionBody, noteBody)

	// A new client message waits; the team changes from p1, p2 to p1, p3:
	// the item moves from p2 to p3.
	_, err = w.care.PostMessage(ctx, w.meta(w.k1), commands.PostMessage{SessionID: s1, Text: "Thanks. Can we talk tomorrow?"})
	require.NoError(t, err)
	assert.Equal(t, 1, inbox(w.p2.ID, w.clock()).Counts.ClientMessages)
	// p2 leaves the clinic: still on the team, but sees nothing of it.
	_, err = w.org.LeaveClinic(ctx, w.meta(w.p2), commands.LeaveClinic{ClinicID: w.clinic, ProviderID: w.p2.ID})
	require.NoError(t, err)
	assert.Equal(t, views.InboxCounts{}, inbox(w.p2.ID, w.clock()).Counts)
	assert.Equal(t, 1, inbox(w.p1.ID, w.clock()).Counts.ClientMessages)
	_, err = w.org.ChangeCareTeam(ctx, w.meta(w.p1), commands.ChangeCareTeam{ClientID: w.k1.ID, CareTeam: []string{w.p1.ID, w.p3.ID}})
	require.NoError(t, err)
	assert.Equal(t, views.InboxCounts{}, inbox(w.p2.ID, w.clock()).Counts)
	assert.Equal(t, views.InboxCounts{ClientMessages: 1, Total: 1}, inbox(w.p3.ID, w.clock()).Counts)
	assert.Equal(t, views.InboxCounts{ClientMessages: 1, Total: 1}, inbox(w.p1.ID, w.clock()).Counts)
	// A deactivated provider's inbox is empty until reactivated.
	_, err = w.org.DeactivateProvider(ctx, w.meta(w.sys), commands.DeactivateProvider{ProviderID: w.p3.ID, Reason: "leave"})
	require.NoError(t, err)
	assert.Equal(t, views.InboxCounts{}, inbox(w.p3.ID, w.clock()).Counts)
	_, err = w.org.ReactivateProvider(ctx, w.meta(w.sys), commands.ReactivateProvider{ProviderID: w.p3.ID})
	require.NoError(t, err)
	assert.Equal(t, views.InboxCounts{ClientMessages: 1, Total: 1}, inbox(w.p3.ID, w.clock()).Counts)

	// Closing the session clears what was left in it.
	w.at(careStart.Add(5 * time.Hour))
	_, err = w.care.CloseSession(ctx, w.meta(w.p1), commands.CloseSession{SessionID: s1})
	require.NoError(t, err)
	assert.Equal(t, views.InboxCounts{}, inbox(w.p3.ID, w.clock()).Counts)
	list = clientList()
	require.Len(t, list.Closed, 1)
	assert.Equal(t, s1, list.Closed[0].ID)
	require.NotNil(t, list.Closed[0].ClosedAt)
	assert.Len(t, list.Closed[0].Assignments[0].Feedback[0].Comments, 2)
	assert.Equal(t, views.SessionCounts{Scheduled: 1, Closed: 1}, overview(w.clock()).Sessions)

	// The second session: its assignment goes overdue, then is completed
	// without risk and waits for feedback.
	start2 := sched.Sessions[1].Start
	w.at(start2)
	_, err = w.care.ActivateSession(ctx, w.meta(w.sys), commands.ActivateSession{SessionID: s2})
	require.NoError(t, err)
	due2 := w.session(s2).Assignments[0].Due
	assert.Zero(t, workload(overview(w.clock()), w.p1.ID).OverdueAssignments)
	assert.Equal(t, 1, workload(overview(due2.Add(time.Minute)), w.p1.ID).OverdueAssignments, "late by the clock before any event")
	assert.Equal(t, 1, workload(overview(due2.Add(time.Minute)), w.p1.ID).SessionsPastEnd)
	w.at(due2.Add(time.Hour))
	_, err = w.care.MarkAssignmentOverdue(ctx, w.meta(w.sys), commands.MarkAssignmentOverdue{SessionID: s2, AssignmentID: a2})
	require.NoError(t, err)
	in = inbox(w.p3.ID, w.clock())
	assert.Equal(t, views.InboxCounts{Overdue: 1, Total: 1}, in.Counts)
	assert.Equal(t, a2, in.Items[0].AssignmentID)
	assert.True(t, clientList().Active[0].Assignments[0].Overdue)

	w.at(due2.Add(2 * time.Hour))
	_, err = w.care.CompleteAssignment(ctx, w.meta(w.k1), commands.CompleteAssignment{SessionID: s2, AssignmentID: a2, Answers: answers(books.PHQ9ID, 0, 1, 0)})
	require.NoError(t, err)
	in = inbox(w.p1.ID, w.clock())
	assert.Equal(t, views.InboxCounts{AwaitingFeedback: 1, Total: 1}, in.Counts)
	assert.Equal(t, 1, workload(overview(w.clock()), w.p1.ID).AwaitingFeedback)
	assert.Zero(t, workload(overview(w.clock()), w.p1.ID).OverdueAssignments)

	scores, err = views.ScoreHistory(ctx, w.db, w.k1.ID, books.PHQ9ID)
	require.NoError(t, err)
	require.Len(t, scores.Points, 2)
	assert.Equal(t, []int{10, 1}, []int{scores.Points[0].Total, scores.Points[1].Total}, "oldest first")
	assert.True(t, scores.Points[0].CompletedAt.Before(scores.Points[1].CompletedAt))
	assert.Equal(t, s2, scores.Points[1].SessionID)
	assert.False(t, scores.Points[1].Urgent)
	other, err := views.ScoreHistory(ctx, w.db, w.k2.ID, books.PHQ9ID)
	require.NoError(t, err)
	assert.Empty(t, other.Points)

	_, err = w.care.GiveFeedback(ctx, w.meta(w.p3), commands.GiveFeedback{SessionID: s2, AssignmentID: a2, Text: "Better this week."})
	require.NoError(t, err)
	assert.Equal(t, views.InboxCounts{}, inbox(w.p1.ID, w.clock()).Counts)
	assertClientViewHides(t, ctx, w.db, discussionBody, noteBody)

	// A discharged client no longer counts as active.
	_, err = w.org.DeactivateClient(ctx, w.meta(w.p1), commands.DeactivateClient{ClientID: w.k2.ID, Reason: "discharged"})
	require.NoError(t, err)
	o = overview(w.clock())
	assert.Equal(t, 1, o.ActiveClients)
	assert.Equal(t, 1, o.InactiveClients)
	assert.Equal(t, views.SessionCounts{Active: 1, Closed: 1}, o.Sessions)

	// The read models rebuilt from scratch equal the ones built as the
	// events came.
	before := openedTables(t, ctx, w.db)
	require.NoError(t, w.runner.Rebuild(ctx, projections.AllProjections))
	assert.Equal(t, before, openedTables(t, ctx, w.db))
	_, err = views.SessionView(ctx, w.db, "no-such-session")
	assert.ErrorIs(t, err, views.ErrNotFound)
}

// assertClientViewHides checks that no column of any table of the client
// session list holds any of the texts, sealed values opened.
func assertClientViewHides(t *testing.T, ctx context.Context, db *projections.DB, texts ...string) {
	t.Helper()
	tables, err := views.OpenedTables(ctx, db, views.ClientSessionsProjection)
	require.NoError(t, err)
	rows := 0
	for name, table := range tables {
		for _, row := range table.Rows {
			rows++
			for i, v := range row {
				s := fmt.Sprint(v)
				for _, text := range texts {
					assert.NotContains(t, s, text, "%s.%s", name, table.Columns[i])
					assert.NotContains(t, s, text[:strings.Index(text, ":")], "%s.%s", name, table.Columns[i])
				}
			}
		}
	}
	assert.Positive(t, rows, "the client's tables hold the session")
}

// TestJSONShape checks the API shape: camelCase keys and RFC 3339 times.
func TestJSONShape(t *testing.T) {
	w := newWorld(t)
	_, err := w.care.ScheduleSession(w.ctx, w.meta(w.p1), commands.ScheduleSession{
		ClientID: w.k1.ID, Title: "Week", Start: careStart, Homework: []string{books.PHQ9ID},
	})
	require.NoError(t, err)
	w.caughtUp()
	in, err := views.Inbox(w.ctx, w.db, w.p1.ID, careStart.Add(6*day))
	require.NoError(t, err)
	b, err := json.Marshal(in)
	require.NoError(t, err)
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(b, &decoded))
	assert.Contains(t, decoded, "providerId")
	assert.Contains(t, decoded["counts"], "sessionsEnding")
	item := decoded["items"].([]any)[0].(map[string]any)
	assert.Equal(t, "sessionEnding", item["kind"])
	at, err := time.Parse(time.RFC3339, item["at"].(string))
	require.NoError(t, err)
	assert.True(t, at.Equal(careStart.Add(7*day)))

	list, err := views.ClientSessions(w.ctx, w.db, w.k1.ID)
	require.NoError(t, err)
	b, err = json.Marshal(list)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"upcoming":[{"id":`)
	assert.Contains(t, string(b), `"bookTitle":"PHQ-9"`)
	assert.Contains(t, string(b), `"due":"2026-03-09T09:00:00Z"`)
}
