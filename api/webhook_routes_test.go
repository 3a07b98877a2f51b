package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/projections/notify"
	"github.com/careflow/careflow/projections/reactions"
)

const webhookSecret = "whsec-api-test-0123456789"

// hookReceiver is a real HTTP endpoint on 127.0.0.1 that verifies each
// delivery's signature as docs/webhooks.md tells receivers to, and answers
// with status.
type hookReceiver struct {
	clock *testClock

	mu     sync.Mutex
	status int
	got    []reactions.WebhookBody
}

func (h *hookReceiver) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	if reactions.VerifySignature(webhookSecret, req.Header.Get(reactions.HeaderTimestamp), req.Header.Get(reactions.HeaderSignature),
		raw, h.clock.Now(), 5*time.Minute) != nil {
		rw.WriteHeader(http.StatusUnauthorized)
		return
	}
	var b reactions.WebhookBody
	if json.Unmarshal(raw, &b) != nil {
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.status == http.StatusOK {
		h.got = append(h.got, b)
	}
	rw.WriteHeader(h.status)
}

func (h *hookReceiver) answer(status int) {
	h.mu.Lock()
	h.status = status
	h.mu.Unlock()
}

func (h *hookReceiver) accepted() []reactions.WebhookBody {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]reactions.WebhookBody(nil), h.got...)
}

func newHookReceiver(t *testing.T, clock *testClock) (*hookReceiver, string) {
	t.Helper()
	h := &hookReceiver{clock: clock, status: http.StatusOK}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv.URL + "/careflow"
}

func (w *reactionsWorld) deliver() int {
	w.t.Helper()
	n, err := w.rx.Webhooks().DeliverDue(w.ctx)
	require.NoError(w.t, err)
	return n
}

func webhookPath(clinic string, rest ...string) string {
	p := "/v1/clinics/" + clinic + "/webhooks"
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

func TestWebhookLifecycleOverHTTP(t *testing.T) {
	w := newReactionsWorld(t)
	hook, hookURL := newHookReceiver(t, w.clock)

	// Register: 201, where it is, and never the secret.
	rec := w.ok(http.StatusCreated, nil, w.admin1, "POST", webhookPath(w.clinic1),
		map[string]any{"url": hookURL, "types": []string{"session.*"}, "secret": webhookSecret})
	assert.NotContains(t, rec.Body.String(), webhookSecret)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	assert.NotContains(t, raw, "secret")
	var ep endpointView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ep))
	require.NotEmpty(t, ep.ID)
	assert.Equal(t, webhookPath(w.clinic1, ep.ID), rec.Header().Get("Location"))
	assert.Equal(t, w.clinic1, ep.ClinicID)
	assert.Equal(t, hookURL, ep.URL)
	assert.Equal(t, []string{"session.*"}, ep.Types)
	assert.Equal(t, w.admin1.ID, ep.RegisteredBy)
	assert.Equal(t, "active", ep.State)
	assert.Nil(t, ep.DisabledAt)

	// Admins and auditors of the clinic list and read it.
	for _, a := range []domain.Actor{w.admin1, w.auditor1} {
		var list endpointList
		rec := w.ok(http.StatusOK, &list, a, "GET", webhookPath(w.clinic1), nil)
		assert.NotContains(t, rec.Body.String(), webhookSecret)
		require.Len(t, list.Items, 1, a.ID)
		assert.Equal(t, ep, list.Items[0])
		var got endpointView
		w.ok(http.StatusOK, &got, a, "GET", webhookPath(w.clinic1, ep.ID), nil)
		assert.Equal(t, ep, got)
	}

	// A system admin reads every clinic's; an unknown clinic is not found.
	var sysList endpointList
	w.ok(http.StatusOK, &sysList, w.sys, "GET", webhookPath(w.clinic1), nil)
	assert.Equal(t, []endpointView{ep}, sysList.Items)
	p := requireProblem(t, w.do(w.sys, "GET", webhookPath("no-such-clinic"), nil), http.StatusNotFound, SlugNotFound)
	assert.Equal(t, "clinic-not-found", p.Code)

	// A session is scheduled: the receiver gets session.scheduled, signed,
	// and the attempt is listed.
	sched, _ := w.scheduleForK1(1)
	w.feed()
	require.Equal(t, 1, w.deliver())
	got := hook.accepted()
	require.Len(t, got, 1)
	assert.Equal(t, "session.scheduled", got[0].Type)
	assert.Equal(t, w.clinic1, got[0].Clinic)
	assert.Equal(t, "session-"+sched.Sessions[0].ID, got[0].Stream)
	for _, a := range []domain.Actor{w.admin1, w.auditor1} {
		var attempts attemptList
		rec := w.ok(http.StatusOK, &attempts, a, "GET", webhookPath(w.clinic1, ep.ID, "attempts"), nil)
		assert.NotContains(t, rec.Body.String(), "Mood check", "no PHI in attempts")
		require.Len(t, attempts.Items, 1)
		at := attempts.Items[0]
		assert.True(t, at.Succeeded)
		assert.Equal(t, http.StatusOK, at.StatusCode)
		assert.Empty(t, at.Error)
		assert.Equal(t, 1, at.Number)
		assert.Equal(t, got[0].ID, at.EventID)
		assert.Equal(t, "session.scheduled", at.EventType)
		assert.Equal(t, int64(1), at.Version)
	}
	var one attemptList
	w.ok(http.StatusOK, &one, w.admin1, "GET", webhookPath(w.clinic1, ep.ID, "attempts")+"?limit=1", nil)
	assert.Len(t, one.Items, 1)
	for _, bad := range []string{"0", "501", "-3"} {
		p := requireProblem(t, w.do(w.admin1, "GET", webhookPath(w.clinic1, ep.ID, "attempts")+"?limit="+bad, nil), StatusValidation, SlugValidation)
		assert.Equal(t, "limit-out-of-range", p.Code, bad)
	}
	requireProblem(t, w.do(w.admin1, "GET", webhookPath(w.clinic1, ep.ID, "attempts")+"?limit=many", nil), http.StatusBadRequest, SlugInvalidRequest)

	// Enabling an active endpoint keeps it active.
	var enabled endpointView
	w.ok(http.StatusOK, &enabled, w.admin1, "POST", webhookPath(w.clinic1, ep.ID, "enable"), nil)
	assert.Equal(t, "active", enabled.State)

	// Delete: 204, then it is gone.
	rec = w.ok(http.StatusNoContent, nil, w.admin1, "DELETE", webhookPath(w.clinic1, ep.ID), nil)
	assert.Empty(t, rec.Body.String())
	p = requireProblem(t, w.do(w.admin1, "GET", webhookPath(w.clinic1, ep.ID), nil), http.StatusNotFound, SlugNotFound)
	assert.Equal(t, "webhook-not-found", p.Code)
	requireProblem(t, w.do(w.admin1, "DELETE", webhookPath(w.clinic1, ep.ID), nil), http.StatusNotFound, SlugNotFound)
	requireProblem(t, w.do(w.admin1, "GET", webhookPath(w.clinic1, ep.ID, "attempts"), nil), http.StatusNotFound, SlugNotFound)
	var list endpointList
	w.ok(http.StatusOK, &list, w.admin1, "GET", webhookPath(w.clinic1), nil)
	assert.Empty(t, list.Items)
}

// TestWebhookDisabledAndEnabledAgain: an endpoint failing for the whole
// retry window is disabled, its admin is notified, and enabling it
// delivers what waited.
func TestWebhookDisabledAndEnabledAgain(t *testing.T) {
	w := newReactionsWorld(t)
	hook, hookURL := newHookReceiver(t, w.clock)
	hook.answer(http.StatusServiceUnavailable)
	var ep endpointView
	w.ok(http.StatusCreated, &ep, w.admin1, "POST", webhookPath(w.clinic1),
		map[string]any{"url": hookURL, "types": []string{"session.scheduled"}, "secret": webhookSecret})
	w.scheduleForK1(1)
	w.feed()
	assert.Zero(t, w.deliver())

	// Retry until the window is over (bounded: the backoff caps at 6 h).
	for range 40 {
		w.ok(http.StatusOK, &ep, w.admin1, "GET", webhookPath(w.clinic1, ep.ID), nil)
		if ep.State == "disabled" {
			break
		}
		w.clock.Advance(6 * time.Hour)
		w.deliver()
	}
	require.Equal(t, "disabled", ep.State)
	require.NotNil(t, ep.DisabledAt)
	var attempts attemptList
	w.ok(http.StatusOK, &attempts, w.auditor1, "GET", webhookPath(w.clinic1, ep.ID, "attempts"), nil)
	require.Greater(t, len(attempts.Items), 1)
	assert.False(t, attempts.Items[0].Succeeded)
	assert.Equal(t, http.StatusServiceUnavailable, attempts.Items[0].StatusCode)
	assert.Equal(t, len(attempts.Items), attempts.Items[0].Number, "newest first")

	// The admin who registered it is told, by ids.
	page := w.notifications(w.admin1, "")
	require.Len(t, page.Items, 1)
	assert.Equal(t, string(notify.KindWebhookDisabled), page.Items[0].Kind)
	assert.Equal(t, ep.ID, page.Items[0].WebhookID)
	assert.Equal(t, w.clinic1, page.Items[0].ClinicID)

	// Auditors may not enable it; the admin does, and what waited goes.
	requireProblem(t, w.do(w.auditor1, "POST", webhookPath(w.clinic1, ep.ID, "enable"), nil), http.StatusForbidden, SlugForbidden)
	hook.answer(http.StatusOK)
	var enabled endpointView
	w.ok(http.StatusOK, &enabled, w.admin1, "POST", webhookPath(w.clinic1, ep.ID, "enable"), nil)
	assert.Equal(t, "active", enabled.State)
	assert.Nil(t, enabled.DisabledAt)
	assert.Equal(t, 1, w.deliver())
	require.Len(t, hook.accepted(), 1)
	assert.Equal(t, "session.scheduled", hook.accepted()[0].Type)
}

func TestWebhookRefusals(t *testing.T) {
	w := newReactionsWorld(t)
	_, hookURL := newHookReceiver(t, w.clock)
	valid := map[string]any{"url": hookURL, "types": []string{"*"}, "secret": webhookSecret}
	var ep endpointView
	w.ok(http.StatusCreated, &ep, w.admin1, "POST", webhookPath(w.clinic1), valid)

	reads := []struct{ method, path string }{
		{"GET", webhookPath(w.clinic1)},
		{"GET", webhookPath(w.clinic1, ep.ID)},
		{"GET", webhookPath(w.clinic1, ep.ID, "attempts")},
	}
	writes := []struct{ method, path string }{
		{"POST", webhookPath(w.clinic1)},
		{"POST", webhookPath(w.clinic1, ep.ID, "enable")},
		{"DELETE", webhookPath(w.clinic1, ep.ID)},
	}
	all := append(append([]struct{ method, path string }{}, reads...), writes...)
	for _, req := range all {
		// Without a token: 401.
		requireProblem(t, w.do(anonymous, req.method, req.path, valid), http.StatusUnauthorized, SlugUnauthorized)
		// Another clinic's admin does not learn the clinic exists.
		p := requireProblem(t, w.do(w.admin2, req.method, req.path, valid), http.StatusNotFound, SlugNotFound)
		assert.Equal(t, "clinic-not-found", p.Code, req.path)
		// Providers and clients of the clinic: 403.
		for _, a := range []domain.Actor{w.p1, w.k1} {
			requireProblem(t, w.do(a, req.method, req.path, valid), http.StatusForbidden, SlugForbidden)
		}
	}
	// Auditors read but never write.
	for _, req := range writes {
		requireProblem(t, w.do(w.auditor1, req.method, req.path, valid), http.StatusForbidden, SlugForbidden)
	}
	// Nothing was written by the refused calls.
	var list endpointList
	w.ok(http.StatusOK, &list, w.admin1, "GET", webhookPath(w.clinic1), nil)
	require.Len(t, list.Items, 1)
	assert.Equal(t, "active", list.Items[0].State)

	// The other clinic's admin sees their own clinic's (none), not ours.
	w.ok(http.StatusOK, &list, w.admin2, "GET", webhookPath(w.clinic2), nil)
	assert.Empty(t, list.Items)
	// An endpoint id of clinic 1 under clinic 2 does not exist.
	p := requireProblem(t, w.do(w.admin2, "GET", webhookPath(w.clinic2, ep.ID), nil), http.StatusNotFound, SlugNotFound)
	assert.Equal(t, "webhook-not-found", p.Code)

	// An auditor removed from the clinic loses access at once, whatever
	// their token says.
	_, err := w.org.RemoveStaff(w.ctx, w.meta(w.sys), commands.RemoveStaff{ClinicID: w.clinic1, UserID: w.auditor1.ID, Role: domain.RoleAuditor})
	require.NoError(t, err)
	stale := w.bearerWith(w.auditor1, w.clinic1)
	for _, req := range reads {
		rec := w.do(anonymous, req.method, req.path, nil, "Authorization", stale)
		p := requireProblem(t, rec, http.StatusNotFound, SlugNotFound)
		assert.Equal(t, "clinic-not-found", p.Code)
	}
}

// bearerWith is a token for a claiming clinics (as one issued before a
// membership changed).
func (w *reactionsWorld) bearerWith(a domain.Actor, clinics ...string) string {
	w.t.Helper()
	raw, err := w.tokens.Issue(Principal{UserID: "u-" + a.ID, ActorID: a.ID, Role: a.Role, Clinics: clinics})
	require.NoError(w.t, err)
	return "Bearer " + raw
}

func TestWebhookRegistrationValidation(t *testing.T) {
	w := newReactionsWorld(t)
	_, hookURL := newHookReceiver(t, w.clock)
	cases := []struct {
		name   string
		body   map[string]any
		fields map[string]string // field -> code
	}{
		{"plain http off loopback", map[string]any{"url": "http://hooks.example.org/x", "types": []string{"*"}, "secret": webhookSecret},
			map[string]string{"url": "webhook-url-invalid"}},
		{"not a url", map[string]any{"url": "hooks", "types": []string{"*"}, "secret": webhookSecret},
			map[string]string{"url": "webhook-url-invalid"}},
		{"unknown type", map[string]any{"url": hookURL, "types": []string{"nope.thing"}, "secret": webhookSecret},
			map[string]string{"types[0]": "webhook-types-invalid"}},
		{"no types", map[string]any{"url": hookURL, "types": []string{}, "secret": webhookSecret},
			map[string]string{"types": "webhook-types-invalid"}},
		{"short secret", map[string]any{"url": hookURL, "types": []string{"*"}, "secret": "short"},
			map[string]string{"secret": "webhook-secret-invalid"}},
		{"everything wrong", map[string]any{"url": "ftp://x", "types": []string{"session.*", "bogus.*"}, "secret": ""},
			map[string]string{"url": "webhook-url-invalid", "types[1]": "webhook-types-invalid", "secret": "webhook-secret-invalid"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := requireProblem(t, w.do(w.admin1, "POST", webhookPath(w.clinic1), c.body), StatusValidation, SlugValidation)
			got := map[string]string{}
			for _, e := range p.Errors {
				got[e.Field] = e.Slug
			}
			assert.Equal(t, c.fields, got)
		})
	}
	// Bodies that cannot be read are 400.
	requireProblem(t, w.do(w.admin1, "POST", webhookPath(w.clinic1), map[string]any{"url": hookURL, "extra": 1}), http.StatusBadRequest, SlugInvalidJSON)
	requireProblem(t, w.do(w.admin1, "POST", webhookPath(w.clinic1), nil), http.StatusBadRequest, SlugInvalidJSON)

	// At most 20 per clinic: the 21st is a conflict.
	for range reactions.MaxWebhooksClinic {
		w.ok(http.StatusCreated, nil, w.admin1, "POST", webhookPath(w.clinic1), map[string]any{"url": hookURL, "types": []string{"*"}, "secret": webhookSecret})
	}
	p := requireProblem(t, w.do(w.admin1, "POST", webhookPath(w.clinic1), map[string]any{"url": hookURL, "types": []string{"*"}, "secret": webhookSecret}),
		http.StatusConflict, SlugConflict)
	assert.Equal(t, "too-many-webhooks", p.Code)
}

// TestWebhooksOfAnInstituteAdmin: an institute admin manages the webhooks
// of their institute's clinics; the reactions check the current
// administration again, so a token claiming another institute's clinic
// gets nowhere.
func TestWebhooksOfAnInstituteAdmin(t *testing.T) {
	w := newReactionsWorld(t)
	_, hookURL := newHookReceiver(t, w.clock)
	inst, err := w.org.CreateInstitute(w.ctx, w.meta(w.sys), commands.CreateInstitute{Name: "East"})
	require.NoError(t, err)
	clinic := w.createClinic(inst.Stream.ID, "East Main")
	_, err = w.org.AppointInstituteAdmin(w.ctx, w.meta(w.sys), commands.AppointInstituteAdmin{InstituteID: inst.Stream.ID, UserID: "inst-admin"})
	require.NoError(t, err)
	instAdmin := domain.Actor{ID: "inst-admin", Role: domain.RoleInstituteAdmin}
	bearer := w.bearerWith(instAdmin, clinic, w.clinic1)
	body := map[string]any{"url": hookURL, "types": []string{"assignment.completed"}, "secret": webhookSecret}

	rec := w.do(anonymous, "POST", webhookPath(clinic), body, "Authorization", bearer)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var ep endpointView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ep))
	assert.Equal(t, instAdmin.ID, ep.RegisteredBy)
	rec = w.do(anonymous, "GET", webhookPath(clinic, ep.ID), nil, "Authorization", bearer)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	// Clinic 1 belongs to another institute: the token's claim is not
	// enough.
	p := requireProblem(t, w.do(anonymous, "POST", webhookPath(w.clinic1), body, "Authorization", bearer), http.StatusNotFound, SlugNotFound)
	assert.Equal(t, "clinic-not-found", p.Code)
	var list endpointList
	w.ok(http.StatusOK, &list, w.admin1, "GET", webhookPath(w.clinic1), nil)
	assert.Empty(t, list.Items)
}
