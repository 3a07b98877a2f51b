package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/projections/views"
)

// A client's session list is cut to a page per group; next.<group> pages
// through the rest of that group with ?state=.
func TestClientSessionListIsPaginatedPerGroup(t *testing.T) {
	w := newCareWorld(t)
	sched, pos := w.scheduleForK1(5)
	base := "/v1/clients/" + w.k1.ID + "/sessions"

	var all clientSessionsPage
	w.ok(http.StatusOK, &all, w.k1, "GET", base, nil, HeaderMinPosition, pos)
	require.Len(t, all.Upcoming, 5, "the default page holds them all")
	assert.Empty(t, all.Next)

	var first clientSessionsPage
	w.ok(http.StatusOK, &first, w.k1, "GET", base+"?limit=2", nil)
	require.Len(t, first.Upcoming, 2)
	assert.Equal(t, sched.Sessions[0].ID, first.Upcoming[0].ID)
	assert.Empty(t, first.Active)
	require.Contains(t, first.Next, "upcoming")
	assert.NotContains(t, first.Next, "closed", "only the groups that were cut have a cursor")

	seen := []string{first.Upcoming[0].ID, first.Upcoming[1].ID}
	cursor := first.Next["upcoming"]
	for cursor != "" {
		var page PageResponse[views.ClientSession]
		w.ok(http.StatusOK, &page, w.k1, "GET", base+"?state=upcoming&limit=2&cursor="+cursor, nil)
		for _, s := range page.Items {
			seen = append(seen, s.ID)
		}
		cursor = page.NextCursor
	}
	want := make([]string, 0, len(sched.Sessions))
	for _, s := range sched.Sessions {
		want = append(want, s.ID)
	}
	assert.Equal(t, want, seen, "every session once, in order")

	var closed PageResponse[views.ClientSession]
	w.ok(http.StatusOK, &closed, w.p1, "GET", base+"?state=closed", nil)
	assert.Empty(t, closed.Items)
	assert.Empty(t, closed.NextCursor)
}

// Bad paging is refused before anything is read, so no access record is
// written for it.
func TestClientListsRefuseBadPaging(t *testing.T) {
	w := newCareWorld(t)
	_, pos := w.scheduleForK1(2)
	base := "/v1/clients/" + w.k1.ID
	records := func() int {
		all, err := w.access.ForClient(w.ctx, w.k1.ID, 0, 1000)
		require.NoError(t, err)
		return len(all)
	}
	before := records()
	for _, path := range []string{
		"/sessions?cursor=" + EncodeCursor("x"), // a cursor names its group
		"/sessions?state=later",                 // no such group
		"/sessions?state=upcoming&cursor=" + EncodeCursor("no-such-session"),
		"/sessions?limit=0",
		"/scores?bookId=" + books.PHQ9ID + "&limit=x",
		"/scores?bookId=" + books.PHQ9ID + "&cursor=" + EncodeCursor("no-such-assignment"),
	} {
		rec := w.do(w.k1, "GET", base+path, nil, HeaderMinPosition, pos)
		requireProblem(t, rec, http.StatusBadRequest, SlugInvalidRequest)
	}
	assert.Equal(t, before, records(), "refused reads are not recorded")
}

// A client's scores come a page at a time, oldest first.
func TestClientScoresArePaginated(t *testing.T) {
	w := newCareWorld(t)
	sched, _ := w.scheduleForK1(2)
	var (
		completed []string
		pos       string
	)
	for i, s := range sched.Sessions {
		w.clock.Advance(s.StartsAt.Add(time.Hour).Sub(w.clock.Now()))
		w.activate(s.ID)
		a := w.assignmentsOf(s.ID)[0]
		rec := w.ok(http.StatusOK, nil, w.k1, "POST", "/v1/assignments/"+a+"/responses", map[string]any{"answers": phq9(i+1, 0)})
		completed, pos = append(completed, a), positionOf(t, rec)
	}
	base := "/v1/clients/" + w.k1.ID + "/scores?bookId=" + books.PHQ9ID
	var all scoresPage
	w.ok(http.StatusOK, &all, w.p1, "GET", base, nil, HeaderMinPosition, pos)
	require.Len(t, all.Points, 2)
	assert.Empty(t, all.NextCursor)

	var first, second scoresPage
	w.ok(http.StatusOK, &first, w.p1, "GET", base+"&limit=1", nil)
	require.Len(t, first.Points, 1)
	assert.Equal(t, completed[0], first.Points[0].AssignmentID, "oldest first")
	require.NotEmpty(t, first.NextCursor)
	w.ok(http.StatusOK, &second, w.p1, "GET", base+"&limit=1&cursor="+first.NextCursor, nil)
	require.Len(t, second.Points, 1)
	assert.Equal(t, completed[1], second.Points[0].AssignmentID)
	assert.Empty(t, second.NextCursor, "the last page")
}
