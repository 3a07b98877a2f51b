package reactions

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/projections/notify"
)

const hookSecret = "whsec-0123456789abcdef"

// received is one request the receiver answered.
type received struct {
	path     string
	body     WebhookBody
	raw      string
	attempt  string
	status   int
	verified bool
}

// receiver is a real HTTP endpoint on 127.0.0.1 that checks every
// delivery's signature the way docs/webhooks.md tells receivers to.
type receiver struct {
	clock  *fakeClock
	secret string
	// status decides the answer to a delivery (nil: 200).
	status func(b WebhookBody, seen int) int

	mu   sync.Mutex
	got  []received
	seen map[string]int
}

func newReceiver(clock *fakeClock, status func(b WebhookBody, seen int) int) *receiver {
	return &receiver{clock: clock, secret: hookSecret, status: status, seen: map[string]int{}}
}

func (rc *receiver) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	verified := VerifySignature(rc.secret, req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderSignature), raw, rc.clock.Now(), 5*time.Minute) == nil
	var b WebhookBody
	decodeErr := json.Unmarshal(raw, &b)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seen[b.ID]++
	status := http.StatusOK
	switch {
	case !verified || decodeErr != nil || req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json":
		status = http.StatusUnauthorized
	case rc.status != nil:
		status = rc.status(b, rc.seen[b.ID])
	}
	rc.got = append(rc.got, received{path: req.URL.Path, body: b, raw: string(raw), attempt: req.Header.Get(HeaderAttempt), status: status, verified: verified})
	rw.WriteHeader(status)
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// accepted lists the deliveries the receiver answered 2xx, in order.
func (rc *receiver) accepted() []WebhookBody {
	var out []WebhookBody
	for _, r := range rc.all() {
		if r.status >= 200 && r.status < 300 {
			out = append(out, r.body)
		}
	}
	return out
}

// acceptedOn lists the deliveries accepted on one path, in order.
func (rc *receiver) acceptedOn(path string) []WebhookBody {
	var out []WebhookBody
	for _, r := range rc.all() {
		if r.path == path && r.status >= 200 && r.status < 300 {
			out = append(out, r.body)
		}
	}
	return out
}

func (w *world) serve(h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	w.t.Cleanup(srv.Close)
	return srv
}

func (w *world) register(url string, types ...string) Endpoint {
	w.t.Helper()
	ep, err := w.r.Webhooks().RegisterWebhook(w.ctx, w.admin, w.clinic, url, types, hookSecret)
	require.NoError(w.t, err)
	return ep
}

func (w *world) deliverDue() int {
	w.t.Helper()
	n, err := w.r.Webhooks().DeliverDue(w.ctx)
	require.NoError(w.t, err)
	return n
}

// assertStreamOrder checks that bodies hold each event once and every
// stream's versions ascending.
func assertOncePerEventInStreamOrder(t *testing.T, bodies []WebhookBody) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int64{}
	for _, b := range bodies {
		assert.False(t, seen[b.ID], "event %s delivered twice", b.ID)
		seen[b.ID] = true
		assert.Greater(t, b.Version, last[b.Stream], "stream %s out of order", b.Stream)
		last[b.Stream] = b.Version
	}
}

func TestRegisterWebhookValidatesAndAuthorizes(t *testing.T) {
	w := newWorld(t)
	hooks := w.r.Webhooks()
	register := func(a domain.Actor, clinic, url string, types []string, secret string) error {
		_, err := hooks.RegisterWebhook(w.ctx, a, clinic, url, types, secret)
		return err
	}
	all := []string{"*"}
	for url, ok := range map[string]bool{
		"https://hooks.example.org/careflow": true,
		"http://127.0.0.1:8080/hook":         true,
		"http://[::1]:8080/hook":             true,
		"http://localhost/hook":              true,
		"http://hooks.example.org/careflow":  false,
		"http://10.0.0.1/hook":               false,
		"ftp://hooks.example.org/":           false,
		"https://user:pw@hooks.example.org/": false,
		"https://hooks.example.org/#x":       false,
		"/relative":                          false,
		"":                                   false,
		"https://":                           false,
	} {
		err := register(w.admin, w.clinic, url, all, hookSecret)
		if ok {
			assert.NoError(t, err, url)
		} else {
			assert.ErrorIs(t, err, &domain.Error{Slug: "webhook-url-invalid"}, url)
		}
	}
	for name, types := range map[string][]string{
		"none":           nil,
		"unknown type":   {"session.exploded"},
		"unknown family": {"gossip.*"},
		"malformed":      {"Session Scheduled"},
		"twice":          {"session.*", "session.*"},
		"star and more":  {"*", "session.*"},
	} {
		err := register(w.admin, w.clinic, "https://hooks.example.org/", types, hookSecret)
		assert.ErrorIs(t, err, &domain.Error{Slug: "webhook-types-invalid"}, name)
	}
	assert.ErrorIs(t, register(w.admin, w.clinic, "https://hooks.example.org/", all, "short"), &domain.Error{Slug: "webhook-secret-invalid"})
	assert.ErrorIs(t, register(w.admin, w.clinic, "https://hooks.example.org/", all, "ünïcødé-secret-1234"), &domain.Error{Slug: "webhook-secret-invalid"})

	assert.ErrorIs(t, register(w.p1, w.clinic, "https://hooks.example.org/", all, hookSecret), &domain.Error{Slug: "forbidden"})
	assert.ErrorIs(t, register(w.otherAdmin, w.clinic, "https://hooks.example.org/", all, hookSecret), &domain.Error{Slug: "clinic-not-found"})
	assert.ErrorIs(t, register(w.sys, "no-such-clinic", "https://hooks.example.org/", all, hookSecret), &domain.Error{Slug: "clinic-not-found"})
	bySys, err := hooks.RegisterWebhook(w.ctx, w.sys, w.clinic, "HTTPS://Hooks.Example.org/x", []string{"session.*", "assignment.completed"}, hookSecret)
	require.NoError(t, err)
	assert.Equal(t, "https://hooks.example.org/x", bySys.URL)

	eps, err := hooks.Endpoints(w.ctx, w.admin, w.clinic)
	require.NoError(t, err)
	require.Len(t, eps, 5)
	got, err := hooks.Endpoint(w.ctx, w.admin, w.clinic, bySys.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"assignment.completed", "session.*"}, got.Types, "sorted")
	assert.Equal(t, EndpointActive, got.State)
	assert.Equal(t, w.sys.ID, got.RegisteredBy)
	_, err = hooks.Endpoints(w.ctx, w.otherAdmin, w.clinic)
	assert.ErrorIs(t, err, &domain.Error{Slug: "clinic-not-found"})
}

func TestDeliveriesAreSlimSignedAndFiltered(t *testing.T) {
	w := newWorld(t)
	rc := newReceiver(w.clock, nil)
	srv := w.serve(rc)
	all := w.register(srv.URL+"/all", "*")
	completedOnly := w.register(srv.URL+"/completed", "assignment.completed")
	_, err := w.r.Webhooks().RegisterWebhook(w.ctx, w.otherAdmin, w.otherClinic, srv.URL+"/other", []string{"*"}, hookSecret)
	require.NoError(t, err)

	session := w.schedule()
	assignment := w.assignmentOf(session)
	w.clock.Set(careStart)
	w.feed()
	w.tick()
	w.completePHQ9(session, assignment, 1)
	w.feed()
	w.deliverDue()

	got := rc.all()
	require.NotEmpty(t, got)
	for _, r := range got {
		assert.True(t, r.verified, "signature verifies")
		assert.Equal(t, "1", r.attempt)
		for _, phi := range []string{"PHI-SECRET", "answers", "itemId", "title"} {
			assert.NotContains(t, r.raw, phi)
		}
		var fields map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.raw), &fields))
		assert.Len(t, fields, 6, "id, type, stream, version, clinic, time: %s", r.raw)
		if r.path == "/other" {
			assert.Equal(t, w.otherClinic, r.body.Clinic, "only the clinic's own events")
		} else {
			assert.Equal(t, w.clinic, r.body.Clinic, "only the clinic's own events")
		}
	}
	types := map[string]int{}
	for _, path := range []string{"/all", "/completed"} {
		for _, b := range rc.acceptedOn(path) {
			types[b.Type]++
		}
	}
	// session.scheduled, assignment.given, session.activated to /all;
	// assignment.completed to both.
	assert.Equal(t, map[string]int{"session.scheduled": 1, "assignment.given": 1, "session.activated": 1, "assignment.completed": 2}, types)
	assertOncePerEventInStreamOrder(t, rc.acceptedOn("/all"))
	assert.Empty(t, rc.acceptedOn("/other"), "nothing happened in the other clinic")

	attempts, err := w.r.Webhooks().Attempts(w.ctx, w.admin, w.clinic, completedOnly.ID, 0)
	require.NoError(t, err)
	require.Len(t, attempts, 1)
	assert.Equal(t, "assignment.completed", attempts[0].EventType)
	assert.True(t, attempts[0].Succeeded)
	assert.Equal(t, 200, attempts[0].StatusCode)
	_, err = w.r.Webhooks().Attempts(w.ctx, w.otherAdmin, w.clinic, all.ID, 0)
	assert.ErrorIs(t, err, &domain.Error{Slug: "clinic-not-found"})
	_, err = w.r.Webhooks().Attempts(w.ctx, w.admin, w.clinic, "no-such-endpoint", 0)
	assert.ErrorIs(t, err, &domain.Error{Slug: "webhook-not-found"})

	assert.Zero(t, w.deliverDue(), "nothing is delivered twice")
}

func TestSignatureVerification(t *testing.T) {
	body := []byte(`{"id":"e1"}`)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	sig := Sign(hookSecret, now.Unix(), body)
	ts := strconv.FormatInt(now.Unix(), 10)
	assert.Regexp(t, `^v1=[0-9a-f]{64}$`, sig)
	assert.NoError(t, VerifySignature(hookSecret, ts, sig, body, now, 5*time.Minute))
	assert.NoError(t, VerifySignature(hookSecret, ts, "v1=00, "+sig, body, now, 5*time.Minute), "one of several signatures (secret rotation)")
	assert.ErrorIs(t, VerifySignature(hookSecret, ts, sig, []byte(`{"id":"e2"}`), now, 5*time.Minute), ErrBadSignature)
	assert.ErrorIs(t, VerifySignature("another-secret-123456", ts, sig, body, now, 5*time.Minute), ErrBadSignature)
	assert.ErrorIs(t, VerifySignature(hookSecret, ts, sig, body, now.Add(6*time.Minute), 5*time.Minute), ErrBadSignature, "replayed later")
	assert.ErrorIs(t, VerifySignature(hookSecret, "soon", sig, body, now, 5*time.Minute), ErrBadSignature)
}

func TestFailedDeliveriesAreRetriedWithExponentialBackoff(t *testing.T) {
	w := newWorld(t)
	rc := newReceiver(w.clock, func(_ WebhookBody, seen int) int {
		if seen <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	ep := w.register(w.serve(rc).URL, "session.scheduled")
	w.schedule()
	w.feed()
	start := w.clock.Now()

	assert.Zero(t, w.deliverDue())
	next, ok, err := w.r.Webhooks().Next(w.ctx)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, start.Add(time.Minute), next, "first retry after RetryInitial")
	assert.Zero(t, w.deliverDue(), "not before the retry is due")
	assert.Len(t, rc.all(), 1)

	w.clock.Set(next)
	assert.Zero(t, w.deliverDue())
	next, _, err = w.r.Webhooks().Next(w.ctx)
	require.NoError(t, err)
	assert.Equal(t, start.Add(3*time.Minute), next, "the wait doubles")

	w.clock.Set(next)
	assert.Equal(t, 1, w.deliverDue())
	got := rc.all()
	require.Len(t, got, 3)
	assert.Equal(t, []string{"1", "2", "3"}, []string{got[0].attempt, got[1].attempt, got[2].attempt})
	for _, r := range got {
		assert.True(t, r.verified)
	}

	attempts, err := w.r.Webhooks().Attempts(w.ctx, w.admin, w.clinic, ep.ID, 0)
	require.NoError(t, err)
	require.Len(t, attempts, 3)
	assert.Equal(t, []int{204, 503, 503}, []int{attempts[0].StatusCode, attempts[1].StatusCode, attempts[2].StatusCode}, "newest first")
	assert.Equal(t, "HTTP 503", attempts[1].Error)
	assert.Equal(t, 3, attempts[0].Number)
	_, ok, err = w.r.Webhooks().Next(w.ctx)
	require.NoError(t, err)
	assert.False(t, ok, "nothing left")
}

func TestBackoffHasJitterAndACap(t *testing.T) {
	w := newWorld(t)
	hooks := w.r.Webhooks()
	hooks.cfg.Jitter = func(d time.Duration) time.Duration { return d - 1 }
	assert.Equal(t, time.Minute+30*time.Second-1, hooks.backoff(1))
	assert.Equal(t, 2*time.Minute+time.Minute-1, hooks.backoff(2))
	assert.Equal(t, 4*time.Hour+2*time.Hour-1, hooks.backoff(30), "capped at RetryMax plus jitter")
}

func TestAReceiverThatWasDownGetsEveryEventOnceInOrder(t *testing.T) {
	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // the receiver is down
	w.register("http://"+addr+"/hook", "session.*", "assignment.*")

	a := w.schedule()
	b := w.schedule()
	w.feed()
	w.clock.Set(careStart)
	w.tick()
	w.feed()
	for range 4 {
		assert.Zero(t, w.deliverDue())
		w.clock.Advance(10 * time.Minute)
	}

	rc := newReceiver(w.clock, nil)
	up, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(rc)
	srv.Listener = up
	srv.Start()
	t.Cleanup(srv.Close)

	w.clock.Advance(5 * time.Hour) // past the longest backoff
	assert.Equal(t, 6, w.deliverDue())
	bodies := rc.accepted()
	require.Len(t, bodies, 6, "scheduled, given and activated of two sessions")
	assertOncePerEventInStreamOrder(t, bodies)
	streams := map[string]int{}
	for _, body := range bodies {
		streams[body.Stream]++
	}
	assert.Equal(t, map[string]int{"session-" + a: 3, "session-" + b: 3}, streams)
	assert.Zero(t, w.deliverDue())
}

func TestOrderPerStreamIsKeptWhileAnEarlierVersionFails(t *testing.T) {
	w := newWorld(t)
	var failOnce sync.Once
	var failedID string
	rc := newReceiver(w.clock, func(body WebhookBody, seen int) int {
		status := http.StatusOK
		if body.Version == 1 {
			failOnce.Do(func() { failedID, status = body.ID, http.StatusInternalServerError })
		}
		return status
	})
	w.register(w.serve(rc).URL, "*")
	a := w.schedule()
	b := w.schedule()
	w.feed()

	w.deliverDue()
	bodies := rc.accepted()
	require.Len(t, bodies, 2, "the other stream went through, the failed one waits")
	require.NotEmpty(t, failedID)
	var failedStream string
	for _, r := range rc.all() {
		if r.body.ID == failedID {
			failedStream = r.body.Stream
		}
	}
	for _, body := range bodies {
		assert.NotEqual(t, failedStream, body.Stream, "nothing of the failed stream before its version 1")
	}

	w.clock.Advance(2 * time.Minute)
	assert.Equal(t, 2, w.deliverDue())
	bodies = rc.accepted()
	require.Len(t, bodies, 4)
	assertOncePerEventInStreamOrder(t, bodies)
	assert.ElementsMatch(t, []string{"session-" + a, "session-" + b}, []string{failedStream, otherStream(failedStream, a, b)})
}

func otherStream(s, a, b string) string {
	if s == "session-"+a {
		return "session-" + b
	}
	return "session-" + a
}

func TestEndpointIsDisabledAfterTheRetryWindowAndTheAdminNotified(t *testing.T) {
	w := newWorld(t)
	var healthy sync.Mutex
	up := false
	rc := newReceiver(w.clock, func(WebhookBody, int) int {
		healthy.Lock()
		defer healthy.Unlock()
		if up {
			return http.StatusOK
		}
		return http.StatusBadGateway
	})
	ep := w.register(w.serve(rc).URL, "session.scheduled")
	w.schedule()
	w.feed()
	first := w.clock.Now()

	for i := 0; ; i++ {
		require.Less(t, i, 200, "the retry window must end")
		w.deliverDue()
		next, ok, err := w.r.Webhooks().Next(w.ctx)
		require.NoError(t, err)
		if !ok {
			break
		}
		w.clock.Set(next)
	}
	eps, err := w.r.Webhooks().Endpoints(w.ctx, w.admin, w.clinic)
	require.NoError(t, err)
	require.Len(t, eps, 1)
	assert.Equal(t, EndpointDisabled, eps[0].State)
	assert.Equal(t, first.Add(DefaultRetryWindow), eps[0].DisabledAt, "the last retry is at the end of the window")

	attempts := rc.all()
	assert.Greater(t, len(attempts), 10)
	assert.Equal(t, first.Add(DefaultRetryWindow).Unix(), w.clock.Now().Unix())

	notes := w.notificationsOf(w.admin.ID)
	require.Len(t, notes, 1)
	assert.Equal(t, notify.KindWebhookDisabled, notes[0].Kind)
	assert.Equal(t, ep.ID, notes[0].WebhookID)
	assert.Equal(t, w.clinic, notes[0].ClinicID)

	// Disabled: nothing more is sent, new events are not queued.
	w.clock.Advance(day)
	w.schedule()
	w.feed()
	w.deliverDue()
	assert.Len(t, rc.all(), len(attempts))

	// The admin fixes the receiver and enables the endpoint again.
	healthy.Lock()
	up = true
	healthy.Unlock()
	enabled, err := w.r.Webhooks().EnableWebhook(w.ctx, w.admin, w.clinic, ep.ID)
	require.NoError(t, err)
	assert.Equal(t, EndpointActive, enabled.State)
	assert.Equal(t, 1, w.deliverDue())
	require.Len(t, rc.accepted(), 1)
}

func TestDeleteWebhookRemovesItsDeliveries(t *testing.T) {
	w := newWorld(t)
	rc := newReceiver(w.clock, func(WebhookBody, int) int { return http.StatusInternalServerError })
	ep := w.register(w.serve(rc).URL, "*")
	w.schedule()
	w.feed()
	w.deliverDue()
	require.ErrorIs(t, w.r.Webhooks().DeleteWebhook(w.ctx, w.p1, w.clinic, ep.ID), &domain.Error{Slug: "forbidden"})
	require.NoError(t, w.r.Webhooks().DeleteWebhook(w.ctx, w.admin, w.clinic, ep.ID))
	_, ok, err := w.r.Webhooks().Next(w.ctx)
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = w.r.Webhooks().Endpoint(w.ctx, w.admin, w.clinic, ep.ID)
	assert.ErrorIs(t, err, &domain.Error{Slug: "webhook-not-found"})
}

func TestWebhooksRefuseAClientThatFollowsRedirects(t *testing.T) {
	w := newWorld(t)
	_, err := NewWebhooks(w.ctx, WebhookConfig{
		DB: w.db, Codec: w.codec, Staff: w.org, Notifications: w.r.notifications, Clock: w.clock.Now,
		Client: &http.Client{},
	})
	require.Error(t, err)
}

func TestEventsHandedOverOutOfOrderAreDeliveredInOrder(t *testing.T) {
	w := newWorld(t)
	rc := newReceiver(w.clock, nil)
	w.register(w.serve(rc).URL, "*")
	session := w.schedule()
	events, err := w.store.ReadAll(w.ctx, w.fed, 100)
	require.NoError(t, err)
	require.Len(t, events, 2, "session.scheduled (v1) and assignment.given (v2), on two topics")
	handler := w.handle(w.r.Webhooks().Handler(w.r.Inbox()))

	// The assignment topic is faster than the session topic.
	require.NoError(t, handler(events[1]))
	assert.Zero(t, w.deliverDue(), "version 2 waits for version 1")
	require.NoError(t, handler(events[0]))
	assert.Equal(t, 2, w.deliverDue())
	bodies := rc.accepted()
	require.Len(t, bodies, 2)
	assert.Equal(t, []int64{1, 2}, []int64{bodies[0].Version, bodies[1].Version})
	assert.Equal(t, "session-"+session, bodies[0].Stream)
}

func TestAGapNeverFilledIsWaitedOutOnce(t *testing.T) {
	w := newWorld(t)
	rc := newReceiver(w.clock, nil)
	w.register(w.serve(rc).URL, "*")
	session := w.schedule()
	events, err := w.store.ReadAll(w.ctx, w.fed, 100)
	require.NoError(t, err)
	handler := w.handle(w.r.Webhooks().Handler(w.r.Inbox()))

	// Version 1 went by before this consumer existed.
	require.NoError(t, handler(events[1]))
	assert.Zero(t, w.deliverDue())
	next, ok, err := w.r.Webhooks().Next(w.ctx)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, w.clock.Now().Add(5*time.Minute), next, "due when the order grace ends")

	w.clock.Set(next)
	assert.Equal(t, 1, w.deliverDue())
	// Later versions follow at once: the gap is not waited for again.
	w.clock.Set(careStart)
	_, err = w.care.ActivateSession(w.ctx, commands.Meta{Actor: w.p1}, commands.ActivateSession{SessionID: session})
	require.NoError(t, err)
	w.fed = events[1].Position
	w.feed()
	assert.Equal(t, 1, w.deliverDue())
	bodies := rc.accepted()
	require.Len(t, bodies, 2)
	assert.Equal(t, []int64{2, 3}, []int64{bodies[0].Version, bodies[1].Version})
	assert.Equal(t, "session-"+session, bodies[1].Stream)
}
