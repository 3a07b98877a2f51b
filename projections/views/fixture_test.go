package views_test

import (
	"context"
	"fmt"
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
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/views"
	"github.com/careflow/careflow/projections/views/viewstest"
)

// generous bounds waits that end long before it; no test asserts on it.
const generous = 30 * time.Second

// careStart is when the first session starts; the clock starts a day
// before.
var careStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// world is a clinic driven through the real command handlers on the memory
// store, with every read model of views kept up to date by a runner:
//
//	clinic c: providers p1, p2, p3; client k1 (team p1, p2), client k2
//	(team p1).
type world struct {
	t     *testing.T
	ctx   context.Context
	reg   *codec.Registry
	store *memory.Store
	deps  commands.Deps
	org   *commands.Organization
	care  *commands.Care

	db     *projections.DB
	runner *projections.Runner
	// sealer holds the clients' keys the views seal PHI under.
	sealer *viewstest.Sealer
	dbPath string

	clinic     string
	sys        domain.Actor
	p1, p2, p3 domain.Actor
	k1, k2     domain.Actor
	module     string // a module book of the clinic

	mu  sync.Mutex
	now time.Time
	seq uint64
	cmd int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldCleanup(t, t.Cleanup)
}

// newWorldCleanup is newWorld with the world's cleanup handed to cleanup,
// for property tests that build many worlds in one test.
func newWorldCleanup(t *testing.T, cleanup func(func())) *world {
	t.Helper()
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	w := &world{t: t, ctx: context.Background(), reg: reg, now: careStart.Add(-day)}
	w.store = memory.New(eventstore.Options{Types: reg, Clock: w.clock})
	cleanup(func() { _ = w.store.Close() })
	w.deps = commands.Deps{Store: w.store, Codec: reg, Clock: w.clock, NewID: w.newID}
	w.org = commands.NewOrganization(w.deps)
	w.care = commands.NewCare(w.deps, w.org)

	w.sealer, w.dbPath = viewstest.NewSealer(), viewsLocation(t, "views.db")
	w.db, w.runner = startViews(t, cleanup, w.store, reg, w.sealer, w.dbPath)

	w.sys = domain.Actor{ID: "sys", Role: domain.RoleSystemAdmin}
	inst, err := w.org.CreateInstitute(w.ctx, w.meta(w.sys), commands.CreateInstitute{Name: "North"})
	require.NoError(t, err)
	clinic, err := w.org.CreateClinic(w.ctx, w.meta(w.sys), commands.CreateClinic{InstituteID: inst.Stream.ID, Name: "Main"})
	require.NoError(t, err)
	w.clinic = clinic.Stream.ID
	w.p1 = w.registerProvider("Dr One")
	w.p2 = w.registerProvider("Dr Two")
	w.p3 = w.registerProvider("Dr Three")
	w.k1 = w.registerClient("Kim", w.p1.ID, w.p2.ID)
	w.k2 = w.registerClient("Lee", w.p1.ID)
	module, err := w.org.DefineBook(w.ctx, w.meta(w.p1), commands.DefineBook{ClinicID: w.clinic, Spec: books.Spec{
		Kind: books.KindModule, Title: "Breathing", Content: "Breathe in for four, out for six.",
	}})
	require.NoError(t, err)
	w.module = module.Stream.ID
	return w
}

// startViews opens a read-model database at path and runs every view over
// store until the test ends, sealing PHI with sealer.
func startViews(t *testing.T, cleanup func(func()), store eventstore.Store, reg *codec.Registry, sealer eventstore.Sealer,
	path string) (*projections.DB, *projections.Runner) {
	t.Helper()
	db, err := projections.OpenDB(context.Background(), path)
	require.NoError(t, err)
	all, err := views.All(reg, sealer)
	require.NoError(t, err)
	runner, err := projections.NewRunner(store, db, nil, all...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, runner.Prepare(ctx))
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
		assert.NoError(t, db.Close())
	})
	// WaitFor answers false at once while Run has not started.
	require.Eventually(t, func() bool {
		st, err := runner.Status(ctx)
		return err == nil && len(st) > 0 && st[0].State != projections.StateStopped
	}, generous, time.Millisecond)
	return db, runner
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) at(t time.Time) {
	w.mu.Lock()
	w.now = t
	w.mu.Unlock()
}

func (w *world) newID() uuid.UUID {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "id-%d", w.seq))
}

// meta gives every command its own id.
func (w *world) meta(a domain.Actor) commands.Meta {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cmd++
	return commands.Meta{Actor: a, CommandID: fmt.Sprintf("cmd-%d", w.cmd)}
}

func (w *world) registerProvider(name string) domain.Actor {
	w.t.Helper()
	reg, err := w.org.RegisterProvider(w.ctx, w.meta(w.sys), commands.RegisterProvider{ClinicID: w.clinic, DisplayName: name})
	require.NoError(w.t, err)
	return domain.Actor{ID: reg.ProviderID, Role: domain.RoleProvider}
}

func (w *world) registerClient(name string, team ...string) domain.Actor {
	w.t.Helper()
	res, err := w.org.RegisterClient(w.ctx, w.meta(w.p1), commands.RegisterClient{ClinicID: w.clinic, DisplayName: name, CareTeam: team})
	require.NoError(w.t, err)
	return domain.Actor{ID: res.Stream.ID, Role: domain.RoleClient}
}

// session loads a session's state from the store.
func (w *world) session(id string) care.SessionView {
	w.t.Helper()
	s, err := commands.Load(w.ctx, w.deps, eventstore.NewStreamID(care.StreamType, id), care.New)
	require.NoError(w.t, err)
	return s.View()
}

// caughtUp waits until every view has applied the whole log.
func (w *world) caughtUp() {
	w.t.Helper()
	waitViews(w.t, w.ctx, w.store, w.runner)
}

func waitViews(t *testing.T, ctx context.Context, store eventstore.Store, runner *projections.Runner) {
	t.Helper()
	head, err := store.HeadPosition(ctx)
	require.NoError(t, err)
	for _, name := range viewNames {
		reached, err := runner.WaitFor(ctx, name, head, generous)
		require.NoError(t, err)
		require.True(t, reached, "%s did not reach position %d", name, head)
	}
}

var viewNames = []string{
	views.InboxProjection, views.ClientSessionsProjection, views.SessionViewProjection,
	views.ClinicOverviewProjection, views.ScoreHistoryProjection,
}

// answers answers every item of a built-in book with values in order (the
// last one repeats).
func answers(bookID string, values ...int) []books.Answer {
	b, _ := books.BuiltInBook(bookID)
	var out []books.Answer
	for i, it := range b.Items() {
		out = append(out, books.Answer{ItemID: it.ID, Value: values[min(i, len(values)-1)]})
	}
	return out
}

// openedTables reads every table of every view in db, by logical name,
// with the sealed values opened: two builds of the views are equal when
// these are (their stored bytes differ by the random nonces of sealing).
func openedTables(t *testing.T, ctx context.Context, db *projections.DB) map[string]views.Table {
	t.Helper()
	out := map[string]views.Table{}
	for _, name := range viewNames {
		tables, err := views.OpenedTables(ctx, db, name)
		require.NoError(t, err)
		for logical, table := range tables {
			out[name+"."+logical] = table
		}
	}
	return out
}
