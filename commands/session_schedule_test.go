package commands_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
)

func TestScheduleSessionWithHomework(t *testing.T) {
	w := newCareWorld(t)
	now := w.clock()
	res, err := w.care.ScheduleSession(w.ctx, careMeta(w.p1), commands.ScheduleSession{
		ClientID: w.k1.ID, ProviderID: w.p2.ID, Title: "Week 1", Description: "Getting started",
		Start: careStart, Homework: []string{books.PHQ9ID}, Reminders: []int{1, 2},
	})
	require.NoError(t, err)
	require.Len(t, res.Sessions, 1)
	id := res.Sessions[0].ID
	assert.Equal(t, commands.ScheduledSession{ID: id, Start: careStart, End: careStart.Add(careWeek)}, res.Sessions[0])
	assert.Equal(t, int64(2), res.Version)
	assert.False(t, res.Duplicate)

	s := w.session(id)
	require.Equal(t, 1, s.AssignmentCount())
	assignmentID := s.View().Assignments[0].ID
	phq9, _ := books.BuiltInBook(books.PHQ9ID)
	w.then(id, 0,
		care.SessionScheduled{
			SessionID: id, ClinicID: w.clinic, ClientID: w.k1.ID, ProviderID: w.p2.ID, ScheduledBy: w.p1.ID,
			Title: "Week 1", Description: "Getting started", Start: careStart, End: careStart.Add(careWeek),
			ReminderDays: []int{2, 1}, At: now,
		},
		care.AssignmentGiven{
			SessionID: id, ClientID: w.k1.ID, AssignmentID: assignmentID, BookID: books.PHQ9ID, BookVersion: 1,
			BookKind: books.KindQuestionnaire, BookTitle: phq9.Title(), Due: careStart.Add(careWeek),
			ReminderDays: []int{2, 1}, By: w.p1.ID, At: now,
		})
}

func TestScheduleSessionStampsTheClinicInTheMetadata(t *testing.T) {
	w := newCareWorld(t)
	id := w.schedule(books.GAD7ID)
	recs, err := w.store.ReadStream(w.ctx, eventstore.NewStreamID(care.StreamType, id), 1)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	for _, r := range recs {
		assert.Equal(t, w.clinic, r.Metadata.ClinicID)
		assert.Equal(t, w.p1.ID, r.Metadata.ActorID)
		assert.Equal(t, string(domain.RoleProvider), r.Metadata.ActorRole)
		assert.NotEmpty(t, r.Metadata.CommandID)
	}
}

func TestScheduleSessionRepeatsBackToBack(t *testing.T) {
	w := newCareWorld(t)
	res, err := w.care.ScheduleSession(w.ctx, careMeta(w.p1), commands.ScheduleSession{
		ClientID: w.k1.ID, Title: "Weekly", Start: careStart, Length: 3 * 24 * time.Hour, Repeat: 4, Homework: []string{books.GAD7ID},
	})
	require.NoError(t, err)
	require.Len(t, res.Sessions, 4)
	seen := map[string]bool{}
	for i, s := range res.Sessions {
		assert.False(t, seen[s.ID], "each session has its own stream")
		seen[s.ID] = true
		assert.Equal(t, careStart.Add(time.Duration(i)*3*24*time.Hour), s.Start)
		if i > 0 {
			assert.Equal(t, res.Sessions[i-1].End, s.Start, "each starts when the previous ends")
		}
		v := w.session(s.ID).View()
		assert.Equal(t, care.StateScheduled, v.State)
		require.NotNil(t, v.Series)
		assert.Equal(t, i+1, v.Series.Index)
		assert.Equal(t, 4, v.Series.Count)
		assert.Len(t, v.Assignments, 1)
	}
}

func TestScheduleSessionRetryCreatesNothingTwice(t *testing.T) {
	w := newCareWorld(t)
	m := commands.Meta{Actor: w.p1, CommandID: "retry-me"}
	cmd := commands.ScheduleSession{ClientID: w.k1.ID, Title: "Weekly", Start: careStart, Repeat: 3, Homework: []string{books.PHQ9ID}}
	first, err := w.care.ScheduleSession(w.ctx, m, cmd)
	require.NoError(t, err)
	head := w.head()

	again, err := w.care.ScheduleSession(w.ctx, m, cmd)
	require.NoError(t, err)
	assert.True(t, again.Duplicate)
	assert.Equal(t, first.Sessions, again.Sessions)
	assert.Equal(t, head, w.head(), "a retry writes nothing")
}

func TestScheduleSessionRefusals(t *testing.T) {
	w := newCareWorld(t)
	ok := commands.ScheduleSession{ClientID: w.k1.ID, Title: "Week 1", Start: careStart}
	with := func(change func(*commands.ScheduleSession)) commands.ScheduleSession {
		c := ok
		change(&c)
		return c
	}
	cases := []struct {
		name  string
		actor domain.Actor
		cmd   commands.ScheduleSession
		kind  domain.Kind
		slug  string
	}{
		{"a client", w.k1, ok, domain.KindForbidden, "forbidden"},
		{"a clinic admin", domain.Actor{ID: "ca", Role: domain.RoleClinicAdmin}, ok, domain.KindForbidden, "forbidden"},
		{"not on the team", w.p3, ok, domain.KindForbidden, "not-on-care-team"},
		{"other clinic", w.p4, ok, domain.KindNotFound, "client-not-found"},
		{"unknown client", w.p1, with(func(c *commands.ScheduleSession) { c.ClientID = "nobody" }), domain.KindNotFound, "client-not-found"},
		{"holder not on the team", w.p1, with(func(c *commands.ScheduleSession) { c.ProviderID = w.p3.ID }), domain.KindValidation, "provider-not-on-care-team"},
		{"no title", w.p1, with(func(c *commands.ScheduleSession) { c.Title = " " }), domain.KindValidation, "title-required"},
		{"no start", w.p1, with(func(c *commands.ScheduleSession) { c.Start = time.Time{} }), domain.KindValidation, "start-required"},
		{"negative length", w.p1, with(func(c *commands.ScheduleSession) { c.Length = -time.Hour }), domain.KindValidation, "length-out-of-range"},
		{"already over", w.p1, with(func(c *commands.ScheduleSession) { c.Start = careStart.Add(-3 * careWeek) }), domain.KindValidation, "session-in-past"},
		{"repeat 53", w.p1, with(func(c *commands.ScheduleSession) { c.Repeat = 53 }), domain.KindValidation, "repeat-out-of-range"},
		{"repeat -1", w.p1, with(func(c *commands.ScheduleSession) { c.Repeat = -1 }), domain.KindValidation, "repeat-out-of-range"},
		{"bad reminder", w.p1, with(func(c *commands.ScheduleSession) { c.Reminders = []int{-1} }), domain.KindValidation, "reminders-invalid"},
		{"unknown book", w.p1, with(func(c *commands.ScheduleSession) { c.Homework = []string{"nope"} }), domain.KindValidation, "unknown-book"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := w.head()
			_, err := w.care.ScheduleSession(w.ctx, careMeta(tc.actor), tc.cmd)
			w.refusedIn(t, err, before, tc.kind, tc.slug)
		})
	}
}

func TestScheduleSessionRefusesAnInactiveClient(t *testing.T) {
	w := newCareWorld(t)
	_, err := w.org.DeactivateClient(w.ctx, careMeta(w.p1), commands.DeactivateClient{ClientID: w.k1.ID, Reason: "discharged"})
	require.NoError(t, err)
	before := w.head()
	_, err = w.care.ScheduleSession(w.ctx, careMeta(w.p1), commands.ScheduleSession{ClientID: w.k1.ID, Title: "x", Start: careStart})
	w.refused(err, before, domain.KindConflict, "client-inactive")
}

func TestScheduleSessionAheadOfTime(t *testing.T) {
	w := newCareWorld(t)
	res, err := w.care.ScheduleSession(w.ctx, careMeta(w.p2), commands.ScheduleSession{
		ClientID: w.k1.ID, Title: "Later", Start: careStart.Add(26 * careWeek),
	})
	require.NoError(t, err)
	assert.Equal(t, care.StateScheduled, w.session(res.Sessions[0].ID).State())
}
