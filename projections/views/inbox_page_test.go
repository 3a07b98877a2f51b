package views_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/projections/views"
)

// Paging through an inbox gives every item of the whole inbox once, in the
// same order, across the stored items (risk first) and the computed
// session endings; every page counts the whole inbox.
func TestInboxPages(t *testing.T) {
	w := newWorld(t)
	ctx := w.ctx
	// Two clients, each with a session ending within the window at now,
	// client messages in them, and one urgent PHQ-9 (a risk item).
	var sessions []string
	for _, client := range []string{w.k1.ID, w.k2.ID} {
		s, err := w.care.ScheduleSession(ctx, w.meta(w.p1), commands.ScheduleSession{
			ClientID: client, Title: "Week", Start: careStart, Homework: []string{books.PHQ9ID},
		})
		require.NoError(t, err)
		w.at(careStart)
		_, err = w.care.ActivateSession(ctx, w.meta(w.sys), commands.ActivateSession{SessionID: s.Sessions[0].ID})
		require.NoError(t, err)
		sessions = append(sessions, s.Sessions[0].ID)
	}
	for i := range 3 {
		w.at(careStart.Add(time.Duration(i+1) * time.Hour))
		_, err := w.care.PostMessage(ctx, w.meta(w.k1), commands.PostMessage{SessionID: sessions[0], Text: "hello"})
		require.NoError(t, err)
		_, err = w.care.PostMessage(ctx, w.meta(w.k2), commands.PostMessage{SessionID: sessions[1], Text: "hi"})
		require.NoError(t, err)
	}
	w.caughtUp()
	k2View := w.session(sessions[1])
	require.Len(t, k2View.Assignments, 1)
	a := k2View.Assignments[0].ID
	_, err := w.care.StartAssignment(ctx, w.meta(w.k2), commands.StartAssignment{SessionID: sessions[1], AssignmentID: a})
	require.NoError(t, err)
	_, err = w.care.CompleteAssignment(ctx, w.meta(w.k2), commands.CompleteAssignment{
		SessionID: sessions[1], AssignmentID: a, Answers: answers(books.PHQ9ID, 1, 1, 1, 1, 1, 1, 1, 1, 2),
	})
	require.NoError(t, err)
	w.caughtUp()

	now := careStart.Add(6 * day)
	all, err := views.Inbox(ctx, w.db, w.p1.ID, now)
	require.NoError(t, err)
	require.Equal(t, views.InboxCounts{Risk: 1, ClientMessages: 6, SessionsEnding: 2, Total: 9}, all.Counts)
	require.Len(t, all.Items, 9)
	assert.Equal(t, views.KindRisk, all.Items[0].Kind)
	assert.Equal(t, views.KindSessionEnding, all.Items[8].Kind)
	assert.Empty(t, all.Next)

	for _, limit := range []int{1, 2, 7, 8, 9, 10} {
		var paged []views.InboxItem
		after := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 20, "limit %d: paging must end", limit)
			page, err := views.ReadInbox(ctx, w.db, w.p1.ID, now, views.InboxPage{Limit: limit, After: after})
			require.NoError(t, err)
			assert.Equal(t, all.Counts, page.Counts, "limit %d: counts cover the whole inbox", limit)
			assert.LessOrEqual(t, len(page.Items), limit)
			paged = append(paged, page.Items...)
			if page.Next == "" {
				break
			}
			assert.Len(t, page.Items, limit, "limit %d: only the last page is short", limit)
			after = page.Next
		}
		assert.Equal(t, all.Items, paged, "limit %d", limit)
	}

	for _, bad := range []string{"x", "i:0:1", "i:a:1:2:item", "e:1", "e:x:session", "i:0:1:2:"} {
		_, err := views.ReadInbox(ctx, w.db, w.p1.ID, now, views.InboxPage{Limit: 2, After: bad})
		assert.ErrorIs(t, err, views.ErrBadInboxCursor, bad)
	}
}
