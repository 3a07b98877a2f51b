package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections/views"
)

// A session's views are cached by stream version: every read after a
// write to the session (the caller waited for the command) shows it, for
// the care team and for the client, though the same reads were answered
// from the cache before.
func TestViewCacheSessionReadsSeeEveryWrite(t *testing.T) {
	w := newCareWorld(t)
	sched, _ := w.scheduleForK1(1)
	s1 := sched.Sessions[0].ID
	w.clock.Advance(24*time.Hour + time.Minute)
	w.activate(s1)

	teamMessages := func() []string {
		var s views.SessionDetail
		w.ok(http.StatusOK, &s, w.p1, "GET", "/v1/sessions/"+s1, nil)
		return postTexts(s.Messages)
	}
	clientMessages := func() []string {
		var page PageResponse[views.Post]
		w.ok(http.StatusOK, &page, w.k1, "GET", "/v1/sessions/"+s1+"/messages", nil)
		return postTexts(page.Items)
	}
	var want []string
	for i, by := range []struct {
		name string
		post func(text string)
	}{
		{"client", func(text string) {
			w.ok(http.StatusCreated, nil, w.k1, "POST", "/v1/sessions/"+s1+"/messages", map[string]string{"text": text})
		}},
		{"provider", func(text string) {
			w.ok(http.StatusCreated, nil, w.p1, "POST", "/v1/sessions/"+s1+"/messages", map[string]string{"text": text})
		}},
		{"client again", func(text string) {
			w.ok(http.StatusCreated, nil, w.k1, "POST", "/v1/sessions/"+s1+"/messages", map[string]string{"text": text})
		}},
	} {
		// Read twice (the second from the cache), then write.
		require.Equal(t, want, teamMessages(), "before message %d", i)
		require.Equal(t, want, teamMessages(), "before message %d, again", i)
		require.Equal(t, want, clientMessages(), "before message %d", i)
		require.Equal(t, want, clientMessages(), "before message %d, again", i)
		text := "message " + strconv.Itoa(i) + " by the " + by.name
		by.post(text)
		want = append(want, text)
	}
	assert.Equal(t, want, teamMessages())
	assert.Equal(t, want, clientMessages())
}

func postTexts(posts []views.Post) []string {
	var out []string
	for _, p := range posts {
		out = append(out, p.Text)
	}
	return out
}

// The cache holds the care team's view of a session once: what each
// reader gets is still shaped for them on every read.
func TestViewCacheShapesTheAnswerForEachReader(t *testing.T) {
	w := newCareWorld(t)
	sched, _ := w.scheduleForK1(1)
	s1 := sched.Sessions[0].ID
	w.ok(http.StatusCreated, nil, w.p2, "POST", "/v1/sessions/"+s1+"/discussion", map[string]string{"text": "Team only: safety plan?"})
	w.ok(http.StatusCreated, nil, w.p1, "POST", "/v1/sessions/"+s1+"/notes", map[string]string{"text": "Team only: follow up."})

	// The provider's read fills the cache with discussion and notes.
	var full views.SessionDetail
	w.ok(http.StatusOK, &full, w.p1, "GET", "/v1/sessions/"+s1, nil)
	require.Len(t, full.Discussion, 1)
	require.Len(t, full.Notes, 1)

	for _, tc := range []struct {
		name   string
		reader func() *http.Response
		status int
	}{
		{"auditor", func() *http.Response { return w.do(w.auditor1, "GET", "/v1/sessions/"+s1, nil).Result() }, http.StatusOK},
		{"clinic admin", func() *http.Response { return w.do(w.admin1, "GET", "/v1/sessions/"+s1, nil).Result() }, http.StatusOK},
		{"client", func() *http.Response { return w.do(w.k1, "GET", "/v1/sessions/"+s1, nil).Result() }, http.StatusOK},
		{"provider off the team", func() *http.Response { return w.do(w.p3, "GET", "/v1/sessions/"+s1, nil).Result() }, http.StatusForbidden},
		{"another clinic's provider", func() *http.Response { return w.do(w.p4, "GET", "/v1/sessions/"+s1, nil).Result() }, http.StatusNotFound},
		{"another client", func() *http.Response { return w.do(w.k2, "GET", "/v1/sessions/"+s1, nil).Result() }, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 {
				res := tc.reader()
				require.Equal(t, tc.status, res.StatusCode)
				body, err := io.ReadAll(res.Body)
				require.NoError(t, err)
				assert.NotContains(t, string(body), "Team only")
			}
		})
	}
	// And the provider still gets all of it.
	w.ok(http.StatusOK, &full, w.p1, "GET", "/v1/sessions/"+s1, nil)
	assert.Len(t, full.Discussion, 1)
	assert.Len(t, full.Notes, 1)
}

// A client's session list and a provider's inbox are cached until an
// event changes them: a read naming the position of a write sees it, and
// so does a read without one once the write is past.
func TestViewCacheListsAndInboxSeeWrites(t *testing.T) {
	w := newCareWorld(t)
	list := func(header ...string) views.ClientSessionList {
		var out views.ClientSessionList
		w.ok(http.StatusOK, &out, w.k1, "GET", "/v1/clients/"+w.k1.ID+"/sessions", nil, header...)
		return out
	}
	inbox := func(header ...string) views.ProviderInbox {
		var out views.ProviderInbox
		w.ok(http.StatusOK, &out, w.p1, "GET", "/v1/providers/"+w.p1.ID+"/inbox", nil, header...)
		return out
	}
	sched, pos := w.scheduleForK1(1)
	s1 := sched.Sessions[0].ID
	require.Len(t, list(HeaderMinPosition, pos).Upcoming, 1)
	require.Len(t, list().Upcoming, 1)
	require.Empty(t, inbox(HeaderMinPosition, pos).Items)
	require.Empty(t, inbox().Items)

	// A second session and a client's message, read by position.
	sched2, pos := w.scheduleForK1(1)
	s2 := sched2.Sessions[0].ID
	got := list(HeaderMinPosition, pos)
	require.Len(t, got.Upcoming, 2)
	assert.Equal(t, []string{s1, s2}, []string{got.Upcoming[0].ID, got.Upcoming[1].ID})
	w.clock.Advance(24*time.Hour + time.Minute)
	w.activate(s1)
	rec := w.ok(http.StatusCreated, nil, w.k1, "POST", "/v1/sessions/"+s1+"/messages", map[string]string{"text": "Hello?"})
	pos = positionOf(t, rec)
	items := inbox(HeaderMinPosition, pos).Items
	require.Len(t, items, 1)
	assert.Equal(t, views.KindClientMessage, items[0].Kind)
	got = list(HeaderMinPosition, pos)
	require.Len(t, got.Active, 1, "s1 is active")
	assert.Equal(t, s1, got.Active[0].ID)

	// Without a position: the next reads see the write once the log is
	// followed that far (here at once or within moments).
	w.ok(http.StatusOK, nil, w.p1, "POST", "/v1/sessions/"+s2+"/cancel", map[string]string{"reason": "Holiday"})
	require.Eventually(t, func() bool { return len(list().Cancelled) == 1 }, careWaitBound, time.Millisecond)
	w.ok(http.StatusCreated, nil, w.p1, "POST", "/v1/sessions/"+s1+"/messages", map[string]string{"text": "Here."})
	require.Eventually(t, func() bool { return len(inbox().Items) == 0 }, careWaitBound, time.Millisecond,
		"the provider's answer clears the client's message")
}

// A forgotten client's PHI does not outlive their key in the cache: once
// the key is destroyed, reads that were answered from the cache show the
// sealed values redacted, as the read models do.
func TestViewCacheDropsPHIWhenTheKeyIsDestroyed(t *testing.T) {
	w := newCareWorld(t)
	sched, pos := w.scheduleForK1(1)
	s1 := sched.Sessions[0].ID
	w.clock.Advance(24*time.Hour + time.Minute)
	w.activate(s1)
	rec := w.ok(http.StatusCreated, nil, w.k1, "POST", "/v1/sessions/"+s1+"/messages", map[string]string{"text": "Kim's secret"})
	pos = positionOf(t, rec)

	reads := []struct {
		name string
		read func() string
	}{
		{"session, team", func() string {
			return w.ok(http.StatusOK, nil, w.p1, "GET", "/v1/sessions/"+s1, nil).Body.String()
		}},
		{"session, client", func() string {
			return w.ok(http.StatusOK, nil, w.k1, "GET", "/v1/sessions/"+s1, nil).Body.String()
		}},
		{"session list", func() string {
			return w.ok(http.StatusOK, nil, w.k1, "GET", "/v1/clients/"+w.k1.ID+"/sessions", nil, HeaderMinPosition, pos).Body.String()
		}},
		{"inbox", func() string {
			return w.ok(http.StatusOK, nil, w.p1, "GET", "/v1/providers/"+w.p1.ID+"/inbox", nil, HeaderMinPosition, pos).Body.String()
		}},
	}
	for _, r := range reads {
		for range 2 {
			body := r.read()
			assert.True(t, strings.Contains(body, "Mood check") || strings.Contains(body, "Kim Secretname"),
				"%s shows the PHI while the key lives: %s", r.name, body)
		}
	}
	w.sealer.Destroy(w.k1.ID)
	for _, r := range reads {
		body := r.read()
		assert.NotContains(t, body, "Mood check", r.name)
		assert.NotContains(t, body, "Kim's secret", r.name)
		assert.NotContains(t, body, "Kim Secretname", r.name)
		assert.Contains(t, body, eventstore.Redacted, r.name)
	}
}

func TestViewCacheIsBounded(t *testing.T) {
	budget := &atomic.Int64{}
	budget.Store(1 << 20)
	c := newViewCache[int](3, budget)
	always := func(cachedView[int]) bool { return true }
	_, keys := views.WithKeyProbe(context.Background()) // of reads that opened nothing
	for i := range 10 {
		c.put(strconv.Itoa(i), cachedView[int]{stamp: int64(i), value: i, keys: keys})
		assert.LessOrEqual(t, len(c.entries), 3)
	}
	v, _, ok := c.get("9", always)
	require.True(t, ok)
	assert.Equal(t, 9, v)

	// An entry no longer valid is dropped; an older one does not replace
	// a newer.
	c.put("a", cachedView[int]{stamp: 5, value: 5, keys: keys})
	c.put("a", cachedView[int]{stamp: 4, value: 4, keys: keys})
	v, _, ok = c.get("a", always)
	require.True(t, ok)
	assert.Equal(t, 5, v)
	_, _, ok = c.get("a", func(e cachedView[int]) bool { return e.stamp > 5 })
	assert.False(t, ok)
	_, _, ok = c.get("a", always)
	assert.False(t, ok, "dropped")
}

func TestChangeTrackerTellsWhoseRecordsChanged(t *testing.T) {
	known := map[string]string{"s-old": "k-old"}
	tr := newChangeTracker(nil, func(id string) (string, bool) {
		c, ok := known[id]
		return c, ok
	}, 100)
	tr.started, tr.start, tr.pos, tr.org, tr.clientFloor, tr.sessionFloor = true, 10, 10, 10, 10, 10
	event := func(pos int64, stream eventstore.StreamID, typ string, data any) eventstore.RecordedEvent {
		raw, err := json.Marshal(data)
		require.NoError(t, err)
		return eventstore.RecordedEvent{Stream: stream, Position: pos, Type: typ, Data: raw}
	}
	session := func(id string) eventstore.StreamID { return eventstore.NewStreamID(care.StreamType, id) }
	message := (care.SessionMessagePosted{}).EventType()

	assert.False(t, tr.unchangedSince("k1", 9), "before the tracker started")
	assert.True(t, tr.unchangedSince("k1", 10))
	tr.apply(event(11, session("s1"), (care.SessionScheduled{}).EventType(), map[string]string{"clientId": "k1"}))
	tr.apply(event(12, session("s1"), message, map[string]string{}))
	tr.apply(event(13, session("s-old"), message, map[string]string{}))
	tr.apply(event(14, eventstore.NewStreamID(clientStreamType, "k2"), "ClientRenamed", map[string]string{}))
	tr.apply(event(15, eventstore.NewStreamID("clinic", "c1"), "ClinicRenamed", map[string]string{}))
	for _, tc := range []struct {
		client string
		at     int64
		want   bool
	}{
		{"k1", 11, false}, {"k1", 12, true}, {"k-old", 12, false}, {"k-old", 13, true},
		{"k2", 13, false}, {"k2", 14, true}, {"k3", 10, true},
		{"", 14, false}, {"", 15, true},
	} {
		assert.Equal(t, tc.want, tr.unchangedSince(tc.client, tc.at), "%q since %d", tc.client, tc.at)
	}

	for _, tc := range []struct {
		session string
		at      int64
		want    bool
	}{
		{"s1", 11, false}, {"s1", 12, true}, {"s-old", 12, false}, {"s-old", 13, true}, {"s2", 10, true}, {"s2", 9, false},
	} {
		assert.Equal(t, tc.want, tr.sessionUnchangedSince(tc.session, tc.at), "session %s since %d", tc.session, tc.at)
	}
	for at, want := range map[int64]bool{9: false, 13: false, 14: false, 15: true} {
		assert.Equal(t, want, tr.orgUnchangedSince(at), "organization since %d", at)
	}

	// A session event whose client cannot be told counts as every
	// client's; the session's own header is still told apart.
	tr.apply(event(16, session("s-unknown"), message, map[string]string{}))
	assert.False(t, tr.unchangedSince("k3", 15))
	assert.True(t, tr.unchangedSince("k3", 16))
	assert.True(t, tr.sessionUnchangedSince("s1", 15))
	assert.False(t, tr.sessionUnchangedSince("s-unknown", 15))
	assert.True(t, tr.orgUnchangedSince(15), "a session's event is not the organization's")
}

// Who may read is kept in memory too (the client's facts, the session's
// header), yet a change of care team counts from the next request: the
// provider taken off reads nothing more, the one put on reads at once.
func TestViewCacheAuthorizationFollowsTheCareTeam(t *testing.T) {
	w := newCareWorld(t)
	sched, _ := w.scheduleForK1(1)
	s1 := sched.Sessions[0].ID
	a1 := w.assignmentsOf(s1)[0]
	reads := []string{"/v1/sessions/" + s1, "/v1/sessions/" + s1 + "/messages", "/v1/assignments/" + a1 + "/comments"}
	status := func(who string, path string) int {
		actor := map[string]func() int{
			"p2": func() int { return w.do(w.p2, "GET", path, nil).Code },
			"p3": func() int { return w.do(w.p3, "GET", path, nil).Code },
		}[who]
		return actor()
	}
	for range 2 {
		for _, path := range reads {
			require.Equal(t, http.StatusOK, status("p2", path), path)
			require.Equal(t, http.StatusForbidden, status("p3", path), path)
		}
	}
	_, err := w.org.ChangeCareTeam(w.ctx, w.meta(w.admin1), commands.ChangeCareTeam{ClientID: w.k1.ID, CareTeam: []string{w.p1.ID, w.p3.ID}})
	require.NoError(t, err)
	for _, path := range reads {
		assert.Equal(t, http.StatusForbidden, status("p2", path), "p2 after leaving the team: %s", path)
		assert.Equal(t, http.StatusOK, status("p3", path), "p3 after joining the team: %s", path)
	}
}

// The answers made from a cached value are kept by shape, within a byte
// budget all values share; each is the bytes writeJSON would send.
func TestEncodedBodiesByShape(t *testing.T) {
	budget := &atomic.Int64{}
	budget.Store(1 << 20)
	b := &encodedBodies{byShape: map[string][]byte{}, budget: budget}
	full := map[string]any{"discussion": []string{"team only"}}
	trimmed := map[string]any{"discussion": nil}
	raw, err := b.encode("provider GET /v1/sessions/{sessionId} /v1/sessions/s1?", full)
	require.NoError(t, err)
	assert.JSONEq(t, `{"discussion":["team only"]}`, string(raw))
	assert.True(t, strings.HasSuffix(string(raw), "}\n"), "as json.Encoder writes it")
	raw, err = b.encode("auditor GET /v1/sessions/{sessionId} /v1/sessions/s1?", trimmed)
	require.NoError(t, err)
	assert.JSONEq(t, `{"discussion":null}`, string(raw), "another shape is encoded anew")
	raw, err = b.encode("provider GET /v1/sessions/{sessionId} /v1/sessions/s1?", trimmed)
	require.NoError(t, err)
	assert.JSONEq(t, `{"discussion":["team only"]}`, string(raw), "the same shape answers what was kept")
	for i := range 2 * maxBodiesPerValue {
		_, err := b.encode(strconv.Itoa(i), i)
		require.NoError(t, err)
		assert.LessOrEqual(t, len(b.byShape), maxBodiesPerValue)
	}
	assert.Equal(t, int64(1<<20)-b.size, budget.Load(), "what is kept is counted")
	b.release()
	assert.Equal(t, int64(1<<20), budget.Load(), "a released value gives its bytes back")
	raw, err = b.encode("late", full)
	require.NoError(t, err)
	assert.JSONEq(t, `{"discussion":["team only"]}`, string(raw))
	assert.Empty(t, b.byShape, "a released value keeps nothing more")

	// Over budget, answers are encoded but not kept.
	budget.Store(10)
	small := &encodedBodies{byShape: map[string][]byte{}, budget: budget}
	raw, err = small.encode("a", full)
	require.NoError(t, err)
	assert.JSONEq(t, `{"discussion":["team only"]}`, string(raw))
	assert.Empty(t, small.byShape)
	assert.Equal(t, int64(10), budget.Load())

	var none *encodedBodies
	raw, err = none.encode("any", full)
	require.NoError(t, err)
	assert.JSONEq(t, `{"discussion":["team only"]}`, string(raw))
}

// Values leaving a cache give their answers' bytes back.
func TestViewCacheReleasesBodies(t *testing.T) {
	budget := &atomic.Int64{}
	budget.Store(1 << 20)
	c := newViewCache[int](2, budget)
	always := func(cachedView[int]) bool { return true }
	_, keys := views.WithKeyProbe(context.Background())
	for i := range 5 {
		bodies := c.put(strconv.Itoa(i), cachedView[int]{stamp: 1, value: i, keys: keys})
		require.NotNil(t, bodies)
		_, err := bodies.encode("shape", i)
		require.NoError(t, err)
	}
	_, bodies, ok := c.get("4", always)
	require.True(t, ok)
	c.put("4", cachedView[int]{stamp: 2, value: 4, keys: keys}) // replaces it
	assert.True(t, bodies.released)
	c.drop("4")
	var kept int64
	for _, e := range c.entries {
		kept += e.bodies.size
	}
	assert.Equal(t, int64(1<<20)-kept, budget.Load())
	assert.Nil(t, newViewCache[int](2, nil).put("x", cachedView[int]{}), "a cache without a budget keeps no answers")
}

func TestAssignmentSessionsStayBounded(t *testing.T) {
	a := &assignmentSessions{max: 2, sessions: map[string]string{}}
	_, ok := a.get("a1")
	assert.False(t, ok)
	a.put("a1", "s1")
	got, ok := a.get("a1")
	require.True(t, ok)
	assert.Equal(t, "s1", got)
	a.put("a2", "s1")
	a.put("a3", "s2")
	assert.LessOrEqual(t, len(a.sessions), 2)
	got, ok = a.get("a3")
	require.True(t, ok, "the newest is kept")
	assert.Equal(t, "s2", got)
}
