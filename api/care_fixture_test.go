package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/views"
	"github.com/careflow/careflow/projections/views/viewstest"
)

// careWaitBound bounds read-your-write waits in care tests: reads return
// as soon as the read model catches up, long before it.
const careWaitBound = 30 * time.Second

// careWorld is the API over the real command handlers on a memory store,
// with a real projections runner (views, audit trail, assignment index) on
// a temporary SQLite database and a SQLite access log:
//
//	clinic c1: providers p1, p2 (care team of k1), p3 (not on k1's team);
//	clients k1 (team p1, p2) and k2 (team p1); clinic admin admin1 and
//	auditor auditor1.
//	clinic c2 (another institute): provider p4, client k9, admin admin2.
type careWorld struct {
	t      testing.TB
	ctx    context.Context
	clock  *testClock
	store  *memory.Store
	org    *commands.Organization
	care   *commands.Care
	db     *projections.DB
	runner *projections.Runner
	access *SQLiteAccessLog
	sealer *viewstest.Sealer // the read models' (Destroy: as a forgotten client's)
	server *Server
	tokens *Tokens

	clinic1, clinic2         string
	p1, p2, p3, p4           domain.Actor
	k1, k2, k9               domain.Actor
	admin1, auditor1, admin2 domain.Actor
	sys                      domain.Actor

	mu  sync.Mutex
	cmd int
}

func newCareWorld(t testing.TB, adjust ...func(*CareConfig)) *careWorld {
	t.Helper()
	ctx := context.Background()
	clock := newTestClock()
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	store := memory.New(eventstore.Options{Types: reg, Clock: clock.Now})
	t.Cleanup(func() { _ = store.Close() })
	deps := commands.Deps{Store: store, Codec: reg, Clock: clock.Now, NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }}
	w := &careWorld{t: t, ctx: ctx, clock: clock, store: store}
	w.org = commands.NewOrganization(deps)
	w.care = commands.NewCare(deps, w.org)
	w.sys = domain.Actor{ID: "sys", Role: domain.RoleSystemAdmin}

	// The read models, run by a real runner until the test ends.
	dir := t.TempDir()
	w.db, err = projections.OpenDB(ctx, filepath.Join(dir, "views.db"))
	require.NoError(t, err)
	w.sealer = viewstest.NewSealer()
	phi, err := views.All(reg, w.sealer)
	require.NoError(t, err)
	all := append(phi, audit.NewTrail(), NewAssignmentIndex())
	w.runner, err = projections.NewRunner(store, w.db, nil, all...)
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	require.NoError(t, w.runner.Prepare(runCtx))
	done := make(chan error, 1)
	go func() { done <- w.runner.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
		assert.NoError(t, w.db.Close())
	})
	// WaitFor answers false at once while Run has not started.
	require.Eventually(t, func() bool {
		st, err := w.runner.Status(ctx)
		return err == nil && len(st) > 0 && st[0].State != projections.StateStopped
	}, careWaitBound, time.Millisecond)

	w.access, err = OpenSQLiteAccessLog(ctx, filepath.Join(dir, "access.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.access.Close() })

	care := CareConfig{
		Commands: w.care, Directory: w.org, Views: w.db, Freshness: w.runner,
		TimeTravel: audit.NewTimeTravel(store, reg), AccessLog: w.access, MaxWait: careWaitBound,
	}
	for _, f := range adjust {
		f(&care)
	}
	hasher, err := identity.NewHasher(identity.TestArgon2Params())
	require.NoError(t, err)
	w.server, err = NewServer(Config{
		Store: store, Accounts: commands.NewAccounts(deps, hasher), Refresh: NewMemoryRefreshTokens(clock.Now),
		Tokens: testTokenConfig(clock.Now), Clock: clock.Now, Care: care,
	})
	require.NoError(t, err)
	w.tokens, err = NewTokens(testTokenConfig(clock.Now))
	require.NoError(t, err)

	w.setUpOrganization()
	return w
}

func (w *careWorld) setUpOrganization() {
	t, ctx := w.t, w.ctx
	inst1, err := w.org.CreateInstitute(ctx, w.meta(w.sys), commands.CreateInstitute{Name: "North"})
	require.NoError(t, err)
	inst2, err := w.org.CreateInstitute(ctx, w.meta(w.sys), commands.CreateInstitute{Name: "South"})
	require.NoError(t, err)
	w.clinic1 = w.createClinic(inst1.Stream.ID, "Main")
	w.clinic2 = w.createClinic(inst2.Stream.ID, "Other")
	w.p1 = w.registerProvider(w.clinic1, "Dr One")
	w.p2 = w.registerProvider(w.clinic1, "Dr Two")
	w.p3 = w.registerProvider(w.clinic1, "Dr Three")
	w.p4 = w.registerProvider(w.clinic2, "Dr Four")
	w.k1 = w.registerClient(w.clinic1, w.p1, "Kim Secretname", w.p1.ID, w.p2.ID)
	w.k2 = w.registerClient(w.clinic1, w.p1, "Lee", w.p1.ID)
	w.k9 = w.registerClient(w.clinic2, w.p4, "Nine", w.p4.ID)
	w.admin1 = w.addStaff(w.clinic1, "admin-1", domain.RoleClinicAdmin)
	w.auditor1 = w.addStaff(w.clinic1, "auditor-1", domain.RoleAuditor)
	w.admin2 = w.addStaff(w.clinic2, "admin-2", domain.RoleClinicAdmin)
}

func (w *careWorld) meta(a domain.Actor) commands.Meta {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cmd++
	return commands.Meta{Actor: a, CommandID: fmt.Sprintf("setup-%d", w.cmd)}
}

func (w *careWorld) createClinic(institute, name string) string {
	w.t.Helper()
	res, err := w.org.CreateClinic(w.ctx, w.meta(w.sys), commands.CreateClinic{InstituteID: institute, Name: name})
	require.NoError(w.t, err)
	return res.Stream.ID
}

func (w *careWorld) registerProvider(clinic, name string) domain.Actor {
	w.t.Helper()
	reg, err := w.org.RegisterProvider(w.ctx, w.meta(w.sys), commands.RegisterProvider{ClinicID: clinic, DisplayName: name})
	require.NoError(w.t, err)
	return domain.Actor{ID: reg.ProviderID, Role: domain.RoleProvider}
}

func (w *careWorld) registerClient(clinic string, by domain.Actor, name string, team ...string) domain.Actor {
	w.t.Helper()
	res, err := w.org.RegisterClient(w.ctx, w.meta(by), commands.RegisterClient{ClinicID: clinic, DisplayName: name, CareTeam: team})
	require.NoError(w.t, err)
	return domain.Actor{ID: res.Stream.ID, Role: domain.RoleClient}
}

func (w *careWorld) addStaff(clinic, userID string, role domain.Role) domain.Actor {
	w.t.Helper()
	_, err := w.org.AddStaff(w.ctx, w.meta(w.sys), commands.AddStaff{ClinicID: clinic, UserID: userID, Role: role})
	require.NoError(w.t, err)
	return domain.Actor{ID: userID, Role: role}
}

// bearer is a fresh access token for a (issued now, so the test clock can
// move on between requests).
func (w *careWorld) bearer(a domain.Actor) string {
	w.t.Helper()
	clinics := []string{}
	for _, c := range []string{w.clinic1, w.clinic2} {
		roles, err := w.org.ClinicRoles(w.ctx, c, a.ID)
		require.NoError(w.t, err)
		if len(roles) > 0 {
			clinics = append(clinics, c)
		}
	}
	raw, err := w.tokens.Issue(Principal{UserID: "u-" + a.ID, ActorID: a.ID, Role: a.Role, Clinics: clinics})
	require.NoError(w.t, err)
	return "Bearer " + raw
}

// anonymous sends no token.
var anonymous = domain.Actor{}

// do sends a request as a (anonymous: without a token).
func (w *careWorld) do(a domain.Actor, method, path string, body any, header ...string) *httptest.ResponseRecorder {
	w.t.Helper()
	if a != anonymous {
		header = append(header, "Authorization", w.bearer(a))
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(w.t, err)
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	w.server.ServeHTTP(rec, req)
	return rec
}

// ok sends a request that must answer status, and decodes the body into
// out (when not nil).
func (w *careWorld) ok(status int, out any, a domain.Actor, method, path string, body any, header ...string) *httptest.ResponseRecorder {
	w.t.Helper()
	rec := w.do(a, method, path, body, header...)
	require.Equal(w.t, status, rec.Code, "%s %s: %s", method, path, rec.Body.String())
	if out != nil {
		require.NoError(w.t, json.Unmarshal(rec.Body.Bytes(), out))
	}
	return rec
}

func positionOf(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	pos := rec.Header().Get(HeaderPosition)
	n, err := strconv.ParseInt(pos, 10, 64)
	require.NoError(t, err)
	require.Positive(t, n)
	return pos
}

func (w *careWorld) head() int64 {
	w.t.Helper()
	h, err := w.store.HeadPosition(w.ctx)
	require.NoError(w.t, err)
	return h
}

// phq9 answers every PHQ-9 item with value, item 9 with item9.
func phq9(value, item9 int) []books.Answer {
	b, ok := books.BuiltInBook(books.PHQ9ID)
	if !ok {
		panic("PHQ-9 is built in")
	}
	var out []books.Answer
	for _, it := range b.Items() {
		v := value
		if it.ID == "9" {
			v = item9
		}
		out = append(out, books.Answer{ItemID: it.ID, Value: v})
	}
	return out
}

// scheduled is a session series as POST /v1/sessions answered it.
type scheduledAnswer struct {
	CommandResponse
	Sessions []scheduledSession `json:"sessions"`
}

// scheduleForK1 schedules weekly PHQ-9 sessions for k1 starting a day
// from now, through the API as p1.
func (w *careWorld) scheduleForK1(repeat int) (scheduledAnswer, string) {
	w.t.Helper()
	var out scheduledAnswer
	rec := w.ok(http.StatusCreated, &out, w.p1, "POST", "/v1/sessions", map[string]any{
		"clientId": w.k1.ID, "clinicId": w.clinic1, "title": "Mood check", "description": "Weekly check-in",
		"startsAt": w.clock.Now().Add(24 * time.Hour), "repeat": repeat, "bookIds": []string{books.PHQ9ID},
		"remindDaysBefore": []int{1},
	})
	require.Len(w.t, out.Sessions, repeat)
	return out, positionOf(w.t, rec)
}

// assignmentsOf reads a session's assignment ids through the API as p1.
func (w *careWorld) assignmentsOf(sessionID string) []string {
	w.t.Helper()
	var s views.SessionDetail
	w.ok(http.StatusOK, &s, w.p1, "GET", "/v1/sessions/"+sessionID, nil)
	ids := []string{}
	for _, a := range s.Assignments {
		ids = append(ids, a.ID)
	}
	return ids
}

// activate starts a session as the time reactor would, once it is due.
func (w *careWorld) activate(sessionID string) {
	w.t.Helper()
	_, err := w.care.ActivateSession(w.ctx, w.meta(w.sys), commands.ActivateSession{SessionID: sessionID})
	require.NoError(w.t, err)
}
