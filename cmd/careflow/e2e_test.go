package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/api"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/views"
)

// e2eOverallBound bounds a whole end-to-end test, build included.
const e2eOverallBound = 5 * time.Minute

// Passwords of the walkthrough's people (README: "Walkthrough: one care
// loop with curl").
const (
	e2eClinicAdminPassword = "clinic admin password"
	e2eProviderPassword    = "provider password"
	e2eClientPassword      = "client password"
	e2eAuditorPassword     = "auditor password"
)

// careLoop is what the walkthrough made and saw, for the checks after a
// restart.
type careLoop struct {
	clinic, provider, client string
	session, assignment      string
	feedback                 string
	comments                 []string
	beforeClose              time.Time
	closedAt                 int64 // position of session.closed
	timeline                 []audit.Entry
}

// TestCareLoopWalkthroughAgainstTheRealBinary builds careflow, starts
// `careflow serve` as a child process and drives the README walkthrough
// over HTTP; then stops it with SIGTERM (a clean exit), starts it again
// on the same store and finds everything where it was.
func TestCareLoopWalkthroughAgainstTheRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the careflow binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eOverallBound)
	defer cancel()
	bin := buildCareflow(t, ctx)
	dir := t.TempDir()

	proc := startServe(t, ctx, bin, dir)
	loop := walkThroughOneCareLoop(t, newE2EClient(t, ctx, proc.base))
	proc.stop()

	// The same store after a restart: the session, its thread and the
	// audit trail are all there, and the first admin is not made twice.
	proc = startServe(t, ctx, bin, dir)
	c := newE2EClient(t, ctx, proc.base)
	c.signIn(e2eAdminUser, e2eAdminPassword)
	prov := c.signIn("ada", e2eProviderPassword)
	auditor := c.signIn("auditor", e2eAuditorPassword)
	kim := c.signIn("kim", e2eClientPassword)

	var session views.SessionDetail
	c.call(http.StatusOK, &session, prov, "GET", "/v1/sessions/"+loop.session, nil,
		api.HeaderMinPosition, strconv.FormatInt(loop.closedAt, 10))
	assert.Equal(t, string(care.StateClosed), session.State)
	require.Len(t, session.Assignments, 1)
	assert.Equal(t, string(care.AssignmentCompletedStatus), session.Assignments[0].Status)
	require.NotNil(t, session.Assignments[0].Total)
	assert.Equal(t, 13, *session.Assignments[0].Total)

	var threads api.PageResponse[views.FeedbackThread]
	c.call(http.StatusOK, &threads, kim, "GET", "/v1/assignments/"+loop.assignment+"/comments", nil)
	require.Len(t, threads.Items, 1)
	assert.Equal(t, loop.feedback, threads.Items[0].ID)
	assert.Equal(t, loop.comments, postIDs(threads.Items[0].Comments))

	var timeline api.PageResponse[audit.Entry]
	c.call(http.StatusOK, &timeline, auditor, "GET", "/v1/audit/clients/"+loop.client+"/timeline?limit=200", nil,
		api.HeaderMinPosition, strconv.FormatInt(loop.closedAt, 10))
	assert.Equal(t, loop.timeline, timeline.Items, "the same timeline after a restart")

	var then audit.SessionSnapshot
	c.call(http.StatusOK, &then, auditor, "GET", "/v1/sessions/"+loop.session+"?asOf="+asOf(loop.beforeClose), nil)
	assert.Equal(t, string(care.StateActive), then.Session.Status, "as of before the close, after a restart")
	proc.stop()
}

// walkThroughOneCareLoop is the README walkthrough, step by step.
func walkThroughOneCareLoop(t *testing.T, c *e2eClient) careLoop {
	var loop careLoop

	// The first system administrator, made at start from the environment.
	admin := c.signIn(e2eAdminUser, e2eAdminPassword)

	// An institute and a clinic in it.
	institute := c.command(http.StatusCreated, nil, admin, "POST", "/v1/institutes", map[string]string{"name": "North"})
	instituteID := institute.IDs["instituteId"]
	require.NotEmpty(t, instituteID)
	clinic := c.command(http.StatusCreated, nil, admin, "POST", "/v1/institutes/"+instituteID+"/clinics",
		map[string]string{"name": "North Main"})
	loop.clinic = clinic.IDs["clinicId"]
	require.NotEmpty(t, loop.clinic)
	assert.Greater(t, clinic.Position, institute.Position)

	// The clinic's admin, who takes on a provider and a client with the
	// provider on their care team, and names an auditor.
	staff := c.command(http.StatusCreated, nil, admin, "POST", "/v1/clinics/"+loop.clinic+"/staff",
		map[string]string{"username": "clinicadmin", "password": e2eClinicAdminPassword, "role": "clinic_admin"})
	require.NotEmpty(t, staff.IDs["userId"])
	clinicAdmin := c.signIn("clinicadmin", e2eClinicAdminPassword)

	providerBody := map[string]string{"displayName": "Dr Ada", "username": "ada", "password": e2eProviderPassword}
	provider := c.command(http.StatusCreated, nil, clinicAdmin, "POST", "/v1/clinics/"+loop.clinic+"/providers",
		providerBody, api.HeaderIdempotencyKey, "take-on-dr-ada")
	loop.provider = provider.IDs["providerId"]
	require.NotEmpty(t, loop.provider)
	assert.NotEmpty(t, provider.IDs["userId"])
	assert.False(t, provider.Duplicate)
	// The same Idempotency-Key again is answered, not repeated.
	replay := c.call(http.StatusOK, nil, clinicAdmin, "POST", "/v1/clinics/"+loop.clinic+"/providers",
		providerBody, api.HeaderIdempotencyKey, "take-on-dr-ada")
	assert.Equal(t, "true", replay.Header.Get(api.HeaderReplayed))
	var replayed api.CommandResponse
	require.NoError(t, json.Unmarshal(replay.Body, &replayed))
	assert.Equal(t, provider.IDs, replayed.IDs)
	assert.Equal(t, provider.Position, replayed.Position)

	client := c.command(http.StatusCreated, nil, clinicAdmin, "POST", "/v1/clinics/"+loop.clinic+"/clients",
		map[string]any{"displayName": "Kim", "username": "kim", "password": e2eClientPassword, "careTeam": []string{loop.provider}})
	loop.client = client.IDs["clientId"]
	require.NotEmpty(t, loop.client)
	c.command(http.StatusCreated, nil, clinicAdmin, "POST", "/v1/clinics/"+loop.clinic+"/staff",
		map[string]string{"username": "auditor", "password": e2eAuditorPassword, "role": "auditor"})

	// The provider signs in and acts as their provider id.
	prov := c.signIn("ada", e2eProviderPassword)
	var me api.MeResponse
	c.call(http.StatusOK, &me, prov, "GET", "/v1/auth/me", nil)
	assert.Equal(t, loop.provider, me.ActorID)
	assert.Equal(t, []string{loop.clinic}, me.Clinics)

	// Three weekly sessions with a PHQ-9 each, the first starting now.
	startsAt := time.Now().UTC().Truncate(time.Second)
	var scheduled struct {
		api.CommandResponse
		Sessions []struct {
			ID       string    `json:"id"`
			StartsAt time.Time `json:"startsAt"`
			EndsAt   time.Time `json:"endsAt"`
		} `json:"sessions"`
	}
	c.command(http.StatusCreated, &scheduled, prov, "POST", "/v1/sessions", map[string]any{
		"clientId": loop.client, "title": "Weekly check-in", "startsAt": startsAt.Format(time.RFC3339),
		"repeat": 3, "bookIds": []string{books.PHQ9ID},
	})
	require.Len(t, scheduled.Sessions, 3)
	loop.session = scheduled.Sessions[0].ID
	assert.Equal(t, loop.session, scheduled.IDs["sessionId"])
	for i, s := range scheduled.Sessions {
		assert.True(t, s.StartsAt.Equal(startsAt.Add(time.Duration(i)*7*24*time.Hour)), "session %d starts a week after the one before", i+1)
		assert.Equal(t, 7*24*time.Hour, s.EndsAt.Sub(s.StartsAt), "a session lasts a week")
	}

	// The time reactor activates the first session at its start: now.
	c.eventually("the first session activates", func() error {
		var s views.SessionDetail
		res, err := c.send(prov, "GET", "/v1/sessions/"+loop.session, nil)
		if err != nil || res.Status != http.StatusOK {
			return notYet("%v %d %s", err, res.Status, res.Body)
		}
		if err := json.Unmarshal(res.Body, &s); err != nil {
			return err
		}
		if s.State != string(care.StateActive) {
			return notYet("state %s", s.State)
		}
		return nil
	})

	// The client signs in and finds the PHQ-9 in their active session.
	kim := c.signIn("kim", e2eClientPassword)
	var mine views.ClientSessionList
	c.eventually("the client sees the active session", func() error {
		res, err := c.send(kim, "GET", "/v1/clients/"+loop.client+"/sessions", nil)
		if err != nil || res.Status != http.StatusOK {
			return notYet("%v %d %s", err, res.Status, res.Body)
		}
		if err := json.Unmarshal(res.Body, &mine); err != nil {
			return err
		}
		if len(mine.Active) != 1 {
			return notYet("%d active sessions", len(mine.Active))
		}
		return nil
	})
	assert.Equal(t, loop.session, mine.Active[0].ID)
	assert.Len(t, mine.Upcoming, 2, "the two later sessions are upcoming")
	require.Len(t, mine.Active[0].Assignments, 1)
	loop.assignment = mine.Active[0].Assignments[0].ID
	assert.Equal(t, books.PHQ9ID, mine.Active[0].Assignments[0].BookID)

	// The client starts and completes the PHQ-9, with item 9 above zero.
	c.command(http.StatusOK, nil, kim, "POST", "/v1/assignments/"+loop.assignment+"/start", nil)
	var scored struct {
		api.CommandResponse
		Scored   bool         `json:"scored"`
		Score    *int         `json:"score"`
		Severity string       `json:"severity"`
		Flags    []books.Flag `json:"flags"`
	}
	completed := c.command(http.StatusOK, &scored, kim, "POST", "/v1/assignments/"+loop.assignment+"/responses",
		map[string]any{"answers": walkthroughAnswers()})
	require.True(t, scored.Scored)
	require.NotNil(t, scored.Score)
	assert.Equal(t, 13, *scored.Score)
	assert.Equal(t, "moderate", scored.Severity)
	require.Len(t, scored.Flags, 1)
	assert.Equal(t, "9", scored.Flags[0].ItemID)
	assert.True(t, scored.Flags[0].Urgent)

	// The provider's inbox shows the urgent risk first.
	var inbox views.ProviderInbox
	res := c.call(http.StatusOK, &inbox, prov, "GET", "/v1/providers/"+loop.provider+"/inbox", nil,
		api.HeaderMinPosition, strconv.FormatInt(completed.Position, 10))
	assert.Equal(t, "true", res.Header.Get(api.HeaderFresh))
	require.NotEmpty(t, inbox.Items)
	assert.Equal(t, views.KindRisk, inbox.Items[0].Kind)
	assert.Equal(t, loop.assignment, inbox.Items[0].AssignmentID)
	assert.Equal(t, loop.client, inbox.Items[0].ClientID)
	assert.Equal(t, 1, inbox.Counts.Risk)

	// Feedback, the client's comment and the provider's reply.
	fb := c.command(http.StatusCreated, nil, prov, "POST", "/v1/assignments/"+loop.assignment+"/feedback",
		map[string]string{"text": "Thank you for answering. Let us talk about question 9."})
	loop.feedback = fb.IDs["feedbackId"]
	require.NotEmpty(t, loop.feedback)
	asked := c.command(http.StatusCreated, nil, kim, "POST", "/v1/assignments/"+loop.assignment+"/comments",
		map[string]string{"feedbackId": loop.feedback, "text": "It was a hard week."})
	replied := c.command(http.StatusCreated, nil, prov, "POST", "/v1/assignments/"+loop.assignment+"/comments",
		map[string]string{"feedbackId": loop.feedback, "text": "I hear you. Call the crisis line if it gets worse."})
	loop.comments = []string{asked.IDs["commentId"], replied.IDs["commentId"]}
	require.NotEmpty(t, loop.comments[0])
	require.NotEmpty(t, loop.comments[1])
	var threads api.PageResponse[views.FeedbackThread]
	c.call(http.StatusOK, &threads, kim, "GET", "/v1/assignments/"+loop.assignment+"/comments", nil,
		api.HeaderMinPosition, strconv.FormatInt(replied.Position, 10))
	require.Len(t, threads.Items, 1)
	assert.Equal(t, loop.feedback, threads.Items[0].ID)
	require.Len(t, threads.Items[0].Comments, 2)
	assert.Equal(t, loop.comments, postIDs(threads.Items[0].Comments))
	assert.Equal(t, "client", threads.Items[0].Comments[0].AuthorRole)
	assert.Equal(t, "It was a hard week.", threads.Items[0].Comments[0].Text)
	assert.Equal(t, "provider", threads.Items[0].Comments[1].AuthorRole)

	// Everything so far is recorded: this instant is "before the close".
	loop.beforeClose = time.Now().UTC()

	// Close the session with the version last seen (If-Match); a stale
	// version is refused.
	var open views.SessionDetail
	res = c.call(http.StatusOK, &open, prov, "GET", "/v1/sessions/"+loop.session, nil)
	assert.Equal(t, string(care.StateActive), open.State)
	etag := res.Header.Get("ETag")
	require.NotEmpty(t, etag)
	c.call(http.StatusPreconditionFailed, nil, prov, "POST", "/v1/sessions/"+loop.session+"/close",
		map[string]string{"reason": "Week done"}, "If-Match", `"1"`)
	closed := c.command(http.StatusOK, nil, prov, "POST", "/v1/sessions/"+loop.session+"/close",
		map[string]string{"reason": "Week done"}, "If-Match", etag)
	loop.closedAt = closed.Position
	var after views.SessionDetail
	c.call(http.StatusOK, &after, prov, "GET", "/v1/sessions/"+loop.session, nil)
	assert.Equal(t, string(care.StateClosed), after.State)
	assert.Equal(t, "Week done", after.CloseReason)

	// The auditor reads the client's audit timeline: every step, in order,
	// envelopes without bodies.
	auditor := c.signIn("auditor", e2eAuditorPassword)
	var timeline api.PageResponse[audit.Entry]
	res = c.call(http.StatusOK, &timeline, auditor, "GET", "/v1/audit/clients/"+loop.client+"/timeline?limit=200", nil,
		api.HeaderMinPosition, strconv.FormatInt(closed.Position, 10), api.HeaderPurpose, "quarterly review")
	assert.Equal(t, "true", res.Header.Get(api.HeaderFresh))
	assert.NotContains(t, string(res.Body), "hard week", "the timeline shows envelopes, never bodies")
	loop.timeline = timeline.Items
	assert.True(t, slices.IsSortedFunc(timeline.Items, func(a, b audit.Entry) int { return int(a.Position - b.Position) }),
		"the timeline is in log order")
	var all, ofSession []string
	for _, e := range timeline.Items {
		all = append(all, e.Type)
		if e.StreamID == loop.session {
			ofSession = append(ofSession, e.Type)
		}
	}
	assertSubsequence(t, []string{"client.registered", care.SessionScheduled{}.EventType(),
		care.SessionScheduled{}.EventType(), care.SessionScheduled{}.EventType()}, all)
	assert.Equal(t, []string{
		care.SessionScheduled{}.EventType(), care.AssignmentGiven{}.EventType(), care.SessionActivated{}.EventType(),
		care.AssignmentStarted{}.EventType(), care.AssignmentCompleted{}.EventType(), care.AssignmentFeedbackGiven{}.EventType(),
		care.AssignmentCommentPosted{}.EventType(), care.AssignmentCommentPosted{}.EventType(), care.SessionClosed{}.EventType(),
	}, ofSession, "the session's steps, in order")
	last := timeline.Items[len(timeline.Items)-1]
	assert.Equal(t, care.SessionClosed{}.EventType(), last.Type)
	assert.Equal(t, closed.Position, last.Position)
	assert.Equal(t, loop.provider, last.ActorID)
	assert.Equal(t, "provider", last.ActorRole)

	// The session as of before the close: active, the PHQ-9 completed.
	var then audit.SessionSnapshot
	c.call(http.StatusOK, &then, auditor, "GET", "/v1/sessions/"+loop.session+"?asOf="+asOf(loop.beforeClose), nil)
	assert.Equal(t, string(care.StateActive), then.Session.Status)
	require.Len(t, then.Session.Assignments, 1)
	assert.Equal(t, string(care.AssignmentCompletedStatus), then.Session.Assignments[0].Status)
	assert.Less(t, then.Position, closed.Position)
	// ... and the clinic admin may read the same timeline.
	c.call(http.StatusOK, nil, clinicAdmin, "GET", "/v1/audit/clients/"+loop.client+"/timeline", nil)

	// Every read of the client's information is on record, with its
	// purpose when one was given.
	var accessLog api.PageResponse[api.AccessRecord]
	c.call(http.StatusOK, &accessLog, auditor, "GET", "/v1/clients/"+loop.client+"/access-log", nil)
	var reads []string
	for _, r := range accessLog.Items {
		assert.Equal(t, []string{loop.client}, r.ClientIDs)
		reads = append(reads, r.Role+" "+r.Route+" "+r.Purpose)
	}
	assertSubsequence(t, []string{
		"client GET /v1/clients/{clientId}/sessions ",
		"provider GET /v1/providers/{providerId}/inbox ",
		"client GET /v1/assignments/{assignmentId}/comments ",
		"auditor GET /v1/audit/clients/{clientId}/timeline quarterly review",
		"auditor GET /v1/sessions/{sessionId} ",
	}, reads)
	return loop
}

// walkthroughAnswers are the README's PHQ-9 answers: a total of 13
// (moderate) with item 9 at 1.
func walkthroughAnswers() []books.Answer {
	values := []int{2, 2, 1, 2, 1, 2, 1, 1, 1}
	out := make([]books.Answer, len(values))
	for i, v := range values {
		out[i] = books.Answer{ItemID: strconv.Itoa(i + 1), Value: v}
	}
	return out
}

// asOf formats an instant for ?asOf=.
func asOf(at time.Time) string { return url.QueryEscape(at.Format(time.RFC3339Nano)) }

func postIDs(posts []views.Post) []string {
	ids := make([]string, len(posts))
	for i, p := range posts {
		ids[i] = p.ID
	}
	return ids
}

// assertSubsequence asserts that want appears in got in order.
func assertSubsequence(t *testing.T, want, got []string) {
	t.Helper()
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	assert.Equal(t, len(want), i, "expected %v in order within %v", want, got)
}

// acknowledged is a command the service answered 2xx.
type acknowledged struct {
	writer                        int
	session, messageID, text, key string
	position                      int64
}

// TestAnAcknowledgedEventSurvivesACrash posts messages from several
// goroutines, SIGKILLs `careflow serve` while they are still posting, and
// after a restart finds every message that was answered 2xx, at the
// position it was answered with.
func TestAnAcknowledgedEventSurvivesACrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the careflow binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eOverallBound)
	defer cancel()
	bin := buildCareflow(t, ctx)
	dir := t.TempDir()
	proc := startServe(t, ctx, bin, dir)
	c := newE2EClient(t, ctx, proc.base)

	// A clinic, its admin, a provider and a client with one session per
	// writer, so the writers do not contend for one stream.
	const writers = 4
	admin := c.signIn(e2eAdminUser, e2eAdminPassword)
	institute := c.command(http.StatusCreated, nil, admin, "POST", "/v1/institutes", map[string]string{"name": "Crash"}).IDs["instituteId"]
	clinic := c.command(http.StatusCreated, nil, admin, "POST", "/v1/institutes/"+institute+"/clinics",
		map[string]string{"name": "Crash Clinic"}).IDs["clinicId"]
	c.command(http.StatusCreated, nil, admin, "POST", "/v1/clinics/"+clinic+"/staff",
		map[string]string{"username": "clinicadmin", "password": e2eClinicAdminPassword, "role": "clinic_admin"})
	clinicAdmin := c.signIn("clinicadmin", e2eClinicAdminPassword)
	provider := c.command(http.StatusCreated, nil, clinicAdmin, "POST", "/v1/clinics/"+clinic+"/providers",
		map[string]string{"displayName": "Dr Ada", "username": "ada", "password": e2eProviderPassword}).IDs["providerId"]
	client := c.command(http.StatusCreated, nil, clinicAdmin, "POST", "/v1/clinics/"+clinic+"/clients",
		map[string]any{"displayName": "Kim", "username": "kim", "password": e2eClientPassword, "careTeam": []string{provider}}).IDs["clientId"]
	prov := c.signIn("ada", e2eProviderPassword)
	kim := c.signIn("kim", e2eClientPassword)
	var scheduled struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	c.command(http.StatusCreated, &scheduled, prov, "POST", "/v1/sessions", map[string]any{
		"clientId": client, "title": "Messages", "startsAt": time.Now().UTC().Format(time.RFC3339), "repeat": writers,
	})
	require.Len(t, scheduled.Sessions, writers)

	// The writers post until the process dies; the kill comes once enough
	// posts were acknowledged, with the writers still posting.
	const killAfter = 60
	var (
		acked    atomic.Int64
		mu       sync.Mutex
		answered []acknowledged
		wg       sync.WaitGroup
		killNow  = make(chan struct{})
		once     sync.Once
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			session := scheduled.Sessions[w].ID
			token := kim
			if w%2 == 1 {
				token = prov
			}
			for i := 0; ; i++ {
				text := fmt.Sprintf("writer %d message %d", w, i)
				key := fmt.Sprintf("crash-%d-%d", w, i)
				res, err := c.send(token, "POST", "/v1/sessions/"+session+"/messages", map[string]string{"text": text},
					api.HeaderIdempotencyKey, key)
				if err != nil {
					return // the process is gone
				}
				if res.Status/100 != 2 {
					continue // refused or failed: not acknowledged, nothing promised
				}
				var cr api.CommandResponse
				if json.Unmarshal(res.Body, &cr) != nil {
					continue
				}
				mu.Lock()
				answered = append(answered, acknowledged{writer: w, session: session, messageID: cr.IDs["messageId"], text: text, key: key, position: cr.Position})
				mu.Unlock()
				if acked.Add(1) >= killAfter {
					once.Do(func() { close(killNow) })
				}
			}
		}()
	}
	select {
	case <-killNow:
	case <-ctx.Done():
		t.Fatal("the writers were not acknowledged in time")
	}
	proc.kill()
	wg.Wait()
	require.GreaterOrEqual(t, len(answered), killAfter)
	t.Logf("%d messages acknowledged before the kill", len(answered))

	// After a restart on the same store, every acknowledged message is in
	// its session's stream at the position it was answered with, and in
	// the session view.
	proc = startServe(t, ctx, bin, dir)
	c = newE2EClient(t, ctx, proc.base)
	clinicAdmin = c.signIn("clinicadmin", e2eClinicAdminPassword)
	prov = c.signIn("ada", e2eProviderPassword)
	var highest int64
	for _, a := range answered {
		highest = max(highest, a.position)
	}
	bySession := map[string][]acknowledged{}
	for _, a := range answered {
		require.NotEmpty(t, a.messageID, "an acknowledged message names its id")
		bySession[a.session] = append(bySession[a.session], a)
	}
	for session, acks := range bySession {
		var history api.PageResponse[audit.Entry]
		c.call(http.StatusOK, &history, clinicAdmin, "GET", "/v1/audit/streams/session-"+session, nil)
		atPosition := map[int64]audit.Entry{}
		for _, e := range history.Items {
			atPosition[e.Position] = e
		}
		for _, a := range acks {
			e, ok := atPosition[a.position]
			if assert.True(t, ok, "acknowledged message %s (position %d) survives the crash", a.messageID, a.position) {
				assert.Equal(t, care.SessionMessagePosted{}.EventType(), e.Type)
				assert.Equal(t, "message:"+a.messageID, e.Subject)
			}
		}

		var view views.SessionDetail
		c.eventually("the session view catches up after the restart", func() error {
			res, err := c.send(prov, "GET", "/v1/sessions/"+session, nil, api.HeaderMinPosition, strconv.FormatInt(highest, 10))
			if err != nil || res.Status != http.StatusOK {
				return notYet("%v %d %s", err, res.Status, res.Body)
			}
			if res.Header.Get(api.HeaderFresh) == "false" {
				return notYet("not fresh")
			}
			return json.Unmarshal(res.Body, &view)
		})
		texts := map[string]string{}
		for _, m := range view.Messages {
			_, seen := texts[m.ID]
			assert.False(t, seen, "message %s is in the view once", m.ID)
			texts[m.ID] = m.Text
		}
		for _, a := range acks {
			assert.Equal(t, a.text, texts[a.messageID], "acknowledged message %s is in the session view", a.messageID)
		}
	}

	// A retry of an acknowledged command after the crash is answered with
	// its first answer, not written again.
	a := answered[0]
	token := c.signIn("kim", e2eClientPassword)
	if a.writer%2 == 1 {
		token = prov
	}
	var again api.CommandResponse
	res := c.call(http.StatusOK, &again, token, "POST", "/v1/sessions/"+a.session+"/messages",
		map[string]string{"text": a.text}, api.HeaderIdempotencyKey, a.key)
	assert.Equal(t, "true", res.Header.Get(api.HeaderReplayed))
	assert.True(t, again.Duplicate)
	assert.Equal(t, a.messageID, again.IDs["messageId"])
	assert.Equal(t, a.position, again.Position)
	proc.stop()
}
