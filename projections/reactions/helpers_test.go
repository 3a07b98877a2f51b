package reactions

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/projections/bus"
	"github.com/careflow/careflow/projections/notify"
)

// waitBound bounds every wait in these tests against hanging; it is not a
// speed assertion.
const waitBound = 30 * time.Second

// careStart is when the test session starts; the clock starts a day
// before. The session lasts a week, so its homework is due at careEnd.
var (
	careStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	careEnd   = careStart.Add(7 * 24 * time.Hour)
)

const day = 24 * time.Hour

// secretTitle and secretDescription are PHI that must never leave in a
// notification or a webhook.
const (
	secretTitle       = "Grief after losing PHI-SECRET-title"
	secretDescription = "talks about PHI-SECRET-description"
)

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// fakeClock is moved by the tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// recordingDeliverer remembers every notification it delivered.
type recordingDeliverer struct {
	mu        sync.Mutex
	delivered []notify.Notification
}

func (d *recordingDeliverer) Deliver(_ context.Context, n notify.Notification) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.delivered = append(d.delivered, n)
	return nil
}

func (d *recordingDeliverer) all() []notify.Notification {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]notify.Notification(nil), d.delivered...)
}

// world is a clinic with a care team, the care handlers over a memory
// store, and the reactions over a SQLite file, all on one fake clock:
//
//	clinic c: admin, providers p1, p2 (care team of client k1), p3 (not on
//	  it); clinic other: its admin.
type world struct {
	t     testing.TB
	ctx   context.Context
	clock *fakeClock
	store *memory.Store
	codec *codec.Registry
	deps  commands.Deps
	org   *commands.Organization
	care  *commands.Care

	clinic, otherClinic string
	sys, admin          domain.Actor
	otherAdmin          domain.Actor
	p1, p2, p3          domain.Actor
	k1                  domain.Actor

	path      string
	db        *sql.DB
	r         *Reactions
	deliverer *recordingDeliverer
	jitter    func(time.Duration) time.Duration

	idMu sync.Mutex
	seq  uint64
	// fed is the last store position handed to the consumers.
	fed int64
}

func newWorld(t testing.TB) *world {
	t.Helper()
	c, err := commands.NewRegistry()
	require.NoError(t, err)
	w := &world{t: t, ctx: testContext(t), clock: &fakeClock{now: careStart.Add(-day)}, codec: c}
	w.store = memory.New(eventstore.Options{Types: c, Clock: w.clock.Now})
	t.Cleanup(func() { _ = w.store.Close() })
	w.deps = commands.Deps{Store: w.store, Codec: c, Clock: w.clock.Now, NewID: w.newID}
	w.org = commands.NewOrganization(w.deps)
	w.care = commands.NewCare(w.deps, w.org)

	w.sys = domain.Actor{ID: "sys", Role: domain.RoleSystemAdmin}
	inst, err := w.org.CreateInstitute(w.ctx, commands.Meta{Actor: w.sys}, commands.CreateInstitute{Name: "North"})
	require.NoError(t, err)
	w.clinic = w.createClinic(inst.Stream.ID, "Main")
	w.otherClinic = w.createClinic(inst.Stream.ID, "Other")
	w.admin = w.addAdmin(w.clinic, "admin-1")
	w.otherAdmin = w.addAdmin(w.otherClinic, "admin-2")
	w.p1 = w.registerProvider("Dr One")
	w.p2 = w.registerProvider("Dr Two")
	w.p3 = w.registerProvider("Dr Three")
	res, err := w.org.RegisterClient(w.ctx, commands.Meta{Actor: w.p1}, commands.RegisterClient{
		ClinicID: w.clinic, DisplayName: "PHI-SECRET-name", CareTeam: []string{w.p1.ID, w.p2.ID},
	})
	require.NoError(t, err)
	w.k1 = domain.Actor{ID: res.Stream.ID, Role: domain.RoleClient}

	// The organization's history went by before the reactions existed.
	w.fed, err = w.store.HeadPosition(w.ctx)
	require.NoError(t, err)

	w.path = testDBLocation(t, "reactions.db")
	w.deliverer = &recordingDeliverer{}
	w.jitter = func(time.Duration) time.Duration { return 0 }
	w.open()
	return w
}

func (w *world) newID() uuid.UUID {
	w.idMu.Lock()
	defer w.idMu.Unlock()
	w.seq++
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(w.seq >> 16), byte(w.seq >> 8), byte(w.seq)})
}

func (w *world) createClinic(institute, name string) string {
	res, err := w.org.CreateClinic(w.ctx, commands.Meta{Actor: w.sys}, commands.CreateClinic{InstituteID: institute, Name: name})
	require.NoError(w.t, err)
	return res.Stream.ID
}

func (w *world) addAdmin(clinic, id string) domain.Actor {
	_, err := w.org.AddStaff(w.ctx, commands.Meta{Actor: w.sys}, commands.AddStaff{ClinicID: clinic, UserID: id, Role: domain.RoleClinicAdmin})
	require.NoError(w.t, err)
	return domain.Actor{ID: id, Role: domain.RoleClinicAdmin}
}

func (w *world) registerProvider(name string) domain.Actor {
	reg, err := w.org.RegisterProvider(w.ctx, commands.Meta{Actor: w.sys}, commands.RegisterProvider{ClinicID: w.clinic, DisplayName: name})
	require.NoError(w.t, err)
	return domain.Actor{ID: reg.ProviderID, Role: domain.RoleProvider}
}

// open opens the reactions over the world's file, as a process start does.
func (w *world) open() {
	w.t.Helper()
	db, err := OpenDB(w.ctx, w.path)
	require.NoError(w.t, err)
	r, err := New(w.ctx, Config{
		DB: db, Store: w.store, Codec: w.codec, Care: w.care, Clients: w.org, Staff: w.org,
		Deliverer: w.deliverer, Clock: w.clock.Now, NewID: w.newID,
		WebhookRetryInitial: time.Minute, WebhookRetryMax: 4 * time.Hour, Jitter: w.jitter,
		WebhookAllowInternalTargets: true, // the receivers run on 127.0.0.1
	})
	require.NoError(w.t, err)
	w.db, w.r = db, r
	w.t.Cleanup(func() { _ = db.Close() })
}

// restart closes the reactions' database and opens it again: everything
// not on disk is gone.
func (w *world) restart() {
	w.t.Helper()
	require.NoError(w.t, w.db.Close())
	w.open()
}

// feed hands every event committed since the last feed to the three
// consumers, as the bus would, through their inbox handlers.
func (w *world) feed() {
	w.t.Helper()
	events, err := w.store.ReadAll(w.ctx, w.fed, 10_000)
	require.NoError(w.t, err)
	handlers := []func(eventstore.RecordedEvent) error{
		w.handle(w.r.reactor.Handler(w.r.inbox)),
		w.handle(w.r.notifier.Handler(w.r.inbox)),
		w.handle(w.r.webhooks.Handler(w.r.inbox)),
	}
	for _, e := range events {
		for _, h := range handlers {
			require.NoError(w.t, h(e))
		}
		w.fed = e.Position
	}
}

func (w *world) handle(h func(*message.Message) error) func(eventstore.RecordedEvent) error {
	return func(e eventstore.RecordedEvent) error {
		_, msg, err := bus.ToMessage(e)
		if err != nil {
			return err
		}
		msg.SetContext(w.ctx)
		return h(msg)
	}
}

// schedule schedules one week-long session for k1 held by p1 with PHQ-9
// as homework, reminded the given days before it is due.
func (w *world) schedule(reminders ...int) string {
	w.t.Helper()
	res, err := w.care.ScheduleSession(w.ctx, commands.Meta{Actor: w.p1}, commands.ScheduleSession{
		ClientID: w.k1.ID, Title: secretTitle, Description: secretDescription, Start: careStart,
		Homework: []string{books.PHQ9ID}, Reminders: reminders,
	})
	require.NoError(w.t, err)
	require.Len(w.t, res.Sessions, 1)
	return res.Sessions[0].ID
}

// assignmentOf returns the (only) assignment id of a session.
func (w *world) assignmentOf(sessionID string) string {
	w.t.Helper()
	view := w.session(sessionID)
	require.Len(w.t, view.Assignments, 1)
	return view.Assignments[0].ID
}

func (w *world) session(sessionID string) care.SessionView {
	w.t.Helper()
	s, err := commands.Load(w.ctx, w.deps, eventstore.NewStreamID("session", sessionID), care.New)
	require.NoError(w.t, err)
	return s.View()
}

// completePHQ9 has k1 complete the PHQ-9 with item9 as the answer to item 9
// (every other item 1).
func (w *world) completePHQ9(sessionID, assignmentID string, item9 int) {
	w.t.Helper()
	answers := make([]books.Answer, 0, 9)
	for i := 1; i <= 9; i++ {
		v := 1
		if i == 9 {
			v = item9
		}
		answers = append(answers, books.Answer{ItemID: strconv.Itoa(i), Value: v})
	}
	_, err := w.care.CompleteAssignment(w.ctx, commands.Meta{Actor: w.k1}, commands.CompleteAssignment{
		SessionID: sessionID, AssignmentID: assignmentID, Answers: answers,
	})
	require.NoError(w.t, err)
}

// eventsOf returns the events of type typ in a session's stream.
func (w *world) eventsOf(sessionID, typ string) []eventstore.RecordedEvent {
	w.t.Helper()
	recs, err := w.store.ReadStream(w.ctx, eventstore.NewStreamID("session", sessionID), 1)
	require.NoError(w.t, err)
	var out []eventstore.RecordedEvent
	for _, r := range recs {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func (w *world) notificationsOf(recipient string) []notify.Notification {
	w.t.Helper()
	page, err := w.r.Notifications().List(w.ctx, recipient, notify.ListOptions{Limit: notify.MaxListLimit})
	require.NoError(w.t, err)
	return page.Notifications
}

func (w *world) tick() int {
	w.t.Helper()
	n, err := w.r.TimeReactor().Tick(w.ctx)
	require.NoError(w.t, err)
	return n
}

func (w *world) timer(kind TimerKind, sessionID, assignmentID string, days int) Timer {
	w.t.Helper()
	t, err := w.r.Timers().Get(w.ctx, TimerID(kind, sessionID, assignmentID, days))
	require.NoError(w.t, err)
	return t
}

// failingFinish is a timer store whose Finish fails once: a crash after
// the command but before the timer was marked fired.
type failingFinish struct {
	TimerStore
	mu     sync.Mutex
	failed bool
}

var errCrash = errors.New("crash before marking the timer fired (injected)")

func (f *failingFinish) Finish(ctx context.Context, id string, at time.Time, outcome string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failed {
		f.failed = true
		return errCrash
	}
	return f.TimerStore.Finish(ctx, id, at, outcome)
}
