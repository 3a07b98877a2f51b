package commands_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/plans"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
)

// careStart is when the care tests' first session starts; the clock starts
// a day before.
var careStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const careWeek = 7 * 24 * time.Hour

// careWorld is the organization the care handler tests run in, built with
// the organization's own handlers:
//
//	clinic c1: providers p1, p2 (care team of client k1), p3 (not on it);
//	  client k2 (team p1); a module book; a two-week design plan.
//	clinic c2: provider p4, client k3 (team p4).
type careWorld struct {
	t     testing.TB
	ctx   context.Context
	store *memory.Store
	deps  commands.Deps
	org   *commands.Organization
	care  *commands.Care

	clinic, otherClinic string
	p1, p2, p3, p4      domain.Actor
	k1, k2, k3          domain.Actor
	moduleID, planID    string

	mu  sync.Mutex
	now time.Time
	seq uint64
}

func newCareWorld(t testing.TB) *careWorld {
	t.Helper()
	codec, err := commands.NewRegistry()
	require.NoError(t, err)
	w := &careWorld{t: t, ctx: context.Background(), now: careStart.Add(-24 * time.Hour)}
	w.store = memory.New(eventstore.Options{Types: codec, Clock: w.clock})
	t.Cleanup(func() { _ = w.store.Close() })
	w.deps = commands.Deps{Store: w.store, Codec: codec, Clock: w.clock, NewID: w.newID}
	w.org = commands.NewOrganization(w.deps)
	w.care = commands.NewCare(w.deps, w.org)

	sys := domain.Actor{ID: "sys", Role: domain.RoleSystemAdmin}
	inst, err := w.org.CreateInstitute(w.ctx, commands.Meta{Actor: sys}, commands.CreateInstitute{Name: "North"})
	require.NoError(t, err)
	w.clinic = w.createClinic(sys, inst.Stream.ID, "Main")
	w.otherClinic = w.createClinic(sys, inst.Stream.ID, "Other")
	w.p1 = w.registerProvider(sys, w.clinic, "Dr One")
	w.p2 = w.registerProvider(sys, w.clinic, "Dr Two")
	w.p3 = w.registerProvider(sys, w.clinic, "Dr Three")
	w.p4 = w.registerProvider(sys, w.otherClinic, "Dr Four")
	w.k1 = w.registerClient(w.p1, w.clinic, w.p1.ID, w.p2.ID)
	w.k2 = w.registerClient(w.p1, w.clinic, w.p1.ID)
	w.k3 = w.registerClient(w.p4, w.otherClinic, w.p4.ID)

	module, err := w.org.DefineBook(w.ctx, commands.Meta{Actor: w.p1}, commands.DefineBook{ClinicID: w.clinic, Spec: books.Spec{
		Kind: books.KindModule, Title: "Breathing", Content: "Breathe in for four, out for six.",
	}})
	require.NoError(t, err)
	w.moduleID = module.Stream.ID
	plan, err := w.org.CreateDesignPlan(w.ctx, commands.Meta{Actor: w.p1}, commands.CreateDesignPlan{
		ClinicID: w.clinic, Title: "Depression, two weeks",
		Weeks: []plans.Week{{Number: 1, Homework: []string{books.PHQ9ID, w.moduleID}}, {Number: 2, Homework: []string{books.PHQ9ID}}},
	})
	require.NoError(t, err)
	w.planID = plan.Stream.ID
	return w
}

func (w *careWorld) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

// at sets the clock.
func (w *careWorld) at(t time.Time) {
	w.mu.Lock()
	w.now = t
	w.mu.Unlock()
}

func (w *careWorld) newID() uuid.UUID {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(w.seq >> 16), byte(w.seq >> 8), byte(w.seq)})
}

func (w *careWorld) createClinic(sys domain.Actor, institute, name string) string {
	res, err := w.org.CreateClinic(w.ctx, commands.Meta{Actor: sys}, commands.CreateClinic{InstituteID: institute, Name: name})
	require.NoError(w.t, err)
	return res.Stream.ID
}

func (w *careWorld) registerProvider(sys domain.Actor, clinic, name string) domain.Actor {
	reg, err := w.org.RegisterProvider(w.ctx, commands.Meta{Actor: sys}, commands.RegisterProvider{ClinicID: clinic, DisplayName: name})
	require.NoError(w.t, err)
	return domain.Actor{ID: reg.ProviderID, Role: domain.RoleProvider}
}

func (w *careWorld) registerClient(by domain.Actor, clinic string, team ...string) domain.Actor {
	res, err := w.org.RegisterClient(w.ctx, commands.Meta{Actor: by}, commands.RegisterClient{ClinicID: clinic, DisplayName: "Client", CareTeam: team})
	require.NoError(w.t, err)
	return domain.Actor{ID: res.Stream.ID, Role: domain.RoleClient}
}

func careMeta(a domain.Actor) commands.Meta { return commands.Meta{Actor: a} }

// schedule schedules one week-long session for k1 held by p1, with homework.
func (w *careWorld) schedule(homework ...string) string {
	w.t.Helper()
	res, err := w.care.ScheduleSession(w.ctx, careMeta(w.p1), commands.ScheduleSession{
		ClientID: w.k1.ID, Title: "Week 1", Start: careStart, Homework: homework,
	})
	require.NoError(w.t, err)
	require.Len(w.t, res.Sessions, 1)
	return res.Sessions[0].ID
}

// active schedules a session with homework and activates it at its start.
func (w *careWorld) active(homework ...string) (string, []string) {
	w.t.Helper()
	id := w.schedule(homework...)
	w.at(careStart)
	_, err := w.care.ActivateSession(w.ctx, careMeta(w.p1), commands.ActivateSession{SessionID: id})
	require.NoError(w.t, err)
	var assignments []string
	for _, a := range w.session(id).View().Assignments {
		assignments = append(assignments, a.ID)
	}
	return id, assignments
}

// session loads a session from the store.
func (w *careWorld) session(id string) *care.Session {
	w.t.Helper()
	s, err := commands.Load(w.ctx, w.deps, eventstore.NewStreamID(care.StreamType, id), care.New)
	require.NoError(w.t, err)
	return s
}

// version is a session stream's version.
func (w *careWorld) version(id string) int64 {
	w.t.Helper()
	recs, err := w.store.ReadStream(w.ctx, eventstore.NewStreamID(care.StreamType, id), 1)
	require.NoError(w.t, err)
	return int64(len(recs))
}

// then checks the events a session stream got after version from.
func (w *careWorld) then(id string, from int64, want ...domain.Event) {
	w.t.Helper()
	recs, err := w.store.ReadStream(w.ctx, eventstore.NewStreamID(care.StreamType, id), from+1)
	require.NoError(w.t, err)
	got := []domain.Event{}
	for _, r := range recs {
		v, err := w.deps.Codec.Decode(r.Type, r.SchemaVersion, r.Data)
		require.NoError(w.t, err)
		got = append(got, v.(domain.Event))
	}
	if want == nil {
		want = []domain.Event{}
	}
	require.Equal(w.t, want, got)
}

// head is the global position of the last event.
func (w *careWorld) head() int64 {
	w.t.Helper()
	p, err := w.store.HeadPosition(w.ctx)
	require.NoError(w.t, err)
	return p
}

// refused checks a refusal's kind and slug, and that nothing was written.
func (w *careWorld) refused(err error, before int64, kind domain.Kind, slug string) {
	w.t.Helper()
	w.refusedIn(w.t, err, before, kind, slug)
}

// refusedIn is refused for a subtest.
func (w *careWorld) refusedIn(t testing.TB, err error, before int64, kind domain.Kind, slug string) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, kind, domain.KindOf(err), "kind of %v", err)
	var several domain.ValidationErrors
	if errors.As(err, &several) {
		var slugs []string
		for _, e := range several {
			slugs = append(slugs, e.Slug)
		}
		assert.Contains(t, slugs, slug, "slugs of %v", err)
	} else {
		assert.ErrorIs(t, err, &domain.Error{Slug: slug}, "slug of %v", err)
	}
	p, herr := w.store.HeadPosition(w.ctx)
	require.NoError(t, herr)
	assert.Equal(t, before, p, "a refused command writes nothing")
}

// answersFor answers every item of a built-in book with values in order
// (the last one repeats).
func answersFor(bookID string, values ...int) []books.Answer {
	b, _ := books.BuiltInBook(bookID)
	var out []books.Answer
	for i, it := range b.Items() {
		out = append(out, books.Answer{ItemID: it.ID, Value: values[min(i, len(values)-1)]})
	}
	return out
}
