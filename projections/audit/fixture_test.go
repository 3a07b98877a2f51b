package audit_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/eventstore/sqlite"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/views"
	"github.com/careflow/careflow/projections/views/viewstest"
)

// generous bounds a wait that ends long before it; no test asserts on it.
const generous = 30 * time.Second

// careStart is when the first session starts; the clock starts a day
// before.
var careStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const week = 7 * 24 * time.Hour

// Canaries are written into every free-text field of the history; none
// may reach the audit tables or the time-travel views.
const (
	canaryName       = "CANARY-NAME-Jordan"
	canaryDesc       = "CANARY-DESCRIPTION-insomnia"
	canaryMessage    = "CANARY-MESSAGE-provider"
	canaryClientMsg  = "CANARY-MESSAGE-client-feels-low"
	canaryFeedback   = "CANARY-FEEDBACK-moderate"
	canaryComment    = "CANARY-COMMENT-question"
	canaryReply      = "CANARY-COMMENT-reply"
	canaryNote       = "CANARY-NOTE-reflection"
	canaryLateNote   = "CANARY-NOTE-after-close"
	canaryDiscussion = "CANARY-DISCUSSION-team"
	canaryClose      = "CANARY-CLOSE-REASON"
	canaryCancel     = "CANARY-CANCEL-REASON"
)

var canaries = []string{
	canaryName, canaryDesc, canaryMessage, canaryClientMsg, canaryFeedback, canaryComment, canaryReply,
	canaryNote, canaryLateNote, canaryDiscussion, canaryClose, canaryCancel,
}

// world is a clinic driven through the real command handlers, with the
// audit trail running over the same store:
//
//	clinic c: providers p1, p2, p3; client k1 (team p1, p2), client k2 (team p1).
type world struct {
	t     *testing.T
	ctx   context.Context
	store eventstore.Store
	codec *codec.Registry
	deps  commands.Deps
	org   *commands.Organization
	care  *commands.Care
	db    *projections.DB
	run   *projections.Runner
	tt    *audit.TimeTravel

	sys        domain.Actor
	clinic     string
	p1, p2, p3 domain.Actor
	k1, k2     domain.Actor

	mu  sync.Mutex
	now time.Time
	seq uint64
}

// backends are the event stores the history runs on.
var backends = map[string]func(t *testing.T, opts eventstore.Options) eventstore.Store{
	"memory": func(t *testing.T, opts eventstore.Options) eventstore.Store {
		s := memory.New(opts)
		t.Cleanup(func() { _ = s.Close() })
		return s
	},
	"sqlite": func(t *testing.T, opts eventstore.Options) eventstore.Store {
		s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")}, opts)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	},
}

func newWorld(t *testing.T, backend string) *world {
	t.Helper()
	registry, err := commands.NewRegistry()
	require.NoError(t, err)
	w := &world{t: t, ctx: context.Background(), codec: registry, now: careStart.Add(-24 * time.Hour)}
	open, ok := backends[backend]
	require.True(t, ok, "backend %q", backend)
	store := open(t, eventstore.Options{Types: registry, Clock: w.clock})
	w.store = store
	w.deps = commands.Deps{Store: store, Codec: registry, Clock: w.clock, NewID: w.newID}
	w.org = commands.NewOrganization(w.deps)
	w.care = commands.NewCare(w.deps, w.org)
	w.tt = audit.NewTimeTravel(store, registry)

	w.db, err = projections.OpenDB(w.ctx, readModelsAt(t, "read.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.db.Close() })
	// The care team's session view runs beside the trail: what it showed
	// live is compared with time travel too.
	sessionView, err := views.NewSessionView(registry, viewstest.NewSealer())
	require.NoError(t, err)
	w.run, err = projections.NewRunner(store, w.db, nil, audit.NewTrail(), sessionView)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- w.run.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	w.sys = domain.Actor{ID: "sys", Role: domain.RoleSystemAdmin}
	inst, err := w.org.CreateInstitute(w.ctx, meta(w.sys), commands.CreateInstitute{Name: "North"})
	require.NoError(t, err)
	clinic, err := w.org.CreateClinic(w.ctx, meta(w.sys), commands.CreateClinic{InstituteID: inst.Stream.ID, Name: "Main"})
	require.NoError(t, err)
	w.clinic = clinic.Stream.ID
	w.p1 = w.registerProvider("Dr One")
	w.p2 = w.registerProvider("Dr Two")
	w.p3 = w.registerProvider("Dr Three")
	w.k1 = w.registerClient(canaryName, w.p1.ID, w.p2.ID)
	w.k2 = w.registerClient("Sam", w.p1.ID)
	return w
}

func meta(a domain.Actor) commands.Meta { return commands.Meta{Actor: a} }

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

// at sets the clock.
func (w *world) at(t time.Time) {
	w.mu.Lock()
	w.now = t
	w.mu.Unlock()
}

// tick moves the clock on by d and returns the new instant.
func (w *world) tick(d time.Duration) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = w.now.Add(d)
	return w.now
}

func (w *world) newID() uuid.UUID {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(w.seq >> 16), byte(w.seq >> 8), byte(w.seq)})
}

func (w *world) registerProvider(name string) domain.Actor {
	w.t.Helper()
	reg, err := w.org.RegisterProvider(w.ctx, meta(w.sys), commands.RegisterProvider{ClinicID: w.clinic, DisplayName: name})
	require.NoError(w.t, err)
	return domain.Actor{ID: reg.ProviderID, Role: domain.RoleProvider}
}

func (w *world) registerClient(name string, team ...string) domain.Actor {
	w.t.Helper()
	res, err := w.org.RegisterClient(w.ctx, meta(w.p1), commands.RegisterClient{ClinicID: w.clinic, DisplayName: name, CareTeam: team})
	require.NoError(w.t, err)
	return domain.Actor{ID: res.Stream.ID, Role: domain.RoleClient}
}

// head is the position of the last event.
func (w *world) head() int64 {
	w.t.Helper()
	p, err := w.store.HeadPosition(w.ctx)
	require.NoError(w.t, err)
	return p
}

// caughtUp waits until the audit trail and the session view have applied
// the whole log.
func (w *world) caughtUp() {
	w.t.Helper()
	head := w.head()
	for _, name := range []string{audit.TrailName, views.SessionViewProjection} {
		// WaitFor answers false at once while Run is still starting, so
		// ask again until it has started and caught up.
		require.Eventually(w.t, func() bool {
			reached, err := w.run.WaitFor(w.ctx, name, head, time.Second)
			return err == nil && reached
		}, generous, time.Millisecond, "%s catches up", name)
	}
}

// liveSession is a session as the aggregate holds it now.
func (w *world) liveSession(id string) (*care.Session, int64) {
	w.t.Helper()
	s, err := commands.Load(w.ctx, w.deps, eventstore.NewStreamID(care.StreamType, id), care.New)
	require.NoError(w.t, err)
	return s, s.Version()
}

// liveClient is a client as the aggregate holds it now.
func (w *world) liveClient(id string) *organization.Client {
	w.t.Helper()
	c, err := commands.Load(w.ctx, w.deps, eventstore.NewStreamID(commands.StreamClient, id), organization.NewClient)
	require.NoError(w.t, err)
	return c
}

// timeline is a client's whole timeline from the read model.
func (w *world) timeline(clientID string, from, to time.Time) []audit.Entry {
	w.t.Helper()
	page, err := audit.ClientTimeline(w.ctx, w.db, w.store, clientID, from, to, audit.Page{Limit: audit.MaxPageSize})
	require.NoError(w.t, err)
	require.Zero(w.t, page.Next, "the whole timeline fits one page")
	return page.Entries
}

// answersFor answers every item of a built-in book with value.
func answersFor(t *testing.T, bookID string, value int) []books.Answer {
	t.Helper()
	b, ok := books.BuiltInBook(bookID)
	require.True(t, ok)
	var out []books.Answer
	for _, it := range b.Items() {
		out = append(out, books.Answer{ItemID: it.ID, Value: value})
	}
	return out
}

// snapshot is what the live system showed right after one step.
type snapshot struct {
	step     string
	at       time.Time
	head     int64
	sessions map[string]audit.SessionState
	versions map[string]int64
	// viewed are the sessions as the care team's read model showed them.
	viewed   map[string]audit.SessionState
	client   audit.ClientState
	timeline []audit.Entry // k1's, from the read model
}

// history is the scripted care history and what was seen along the way.
type history struct {
	w              *world
	s1, s2, s3     string
	a1, a2, a3     string // a1 (PHQ-9) and a2 (GAD-7) in s1, a3 (GAD-7) in s2
	feedback       string
	steps          []snapshot
	closedS1       int64 // version of s1 once closed
	activatedS1    int64 // version of s1 once activated
	teamChangedAt  int64 // version of client k1 after the care-team change
	clientStreamK1 eventstore.StreamID
}

// runHistory drives a care history through the handlers, moving the
// clock between steps, and records the live view after each step.
func runHistory(t *testing.T) *history { return runHistoryOn(t, "memory") }

// runHistoryOn is runHistory on the named event store backend.
func runHistoryOn(t *testing.T, backend string) *history {
	w := newWorld(t, backend)
	h := &history{w: w, clientStreamK1: eventstore.NewStreamID(commands.StreamClient, w.k1.ID)}
	ctx := w.ctx
	step := func(name string, at time.Time, do func()) {
		t.Helper()
		w.at(at)
		do()
		h.observe(name, at)
	}
	next := func() time.Time { return w.clock().Add(10 * time.Minute) }

	step("schedule s1 with homework", next(), func() {
		res, err := w.care.ScheduleSession(ctx, meta(w.p1), commands.ScheduleSession{
			ClientID: w.k1.ID, Title: "Week 1", Description: canaryDesc, Start: careStart,
			Homework: []string{books.PHQ9ID, books.GAD7ID},
		})
		require.NoError(t, err)
		h.s1 = res.Sessions[0].ID
		s, _ := w.liveSession(h.s1)
		h.a1, h.a2 = s.View().Assignments[0].ID, s.View().Assignments[1].ID
	})
	step("schedule s2", next(), func() {
		res, err := w.care.ScheduleSession(ctx, meta(w.p2), commands.ScheduleSession{
			ClientID: w.k1.ID, Title: "Week 2", Start: careStart.Add(week),
		})
		require.NoError(t, err)
		h.s2 = res.Sessions[0].ID
	})
	step("schedule s3 for another client", next(), func() {
		res, err := w.care.ScheduleSession(ctx, meta(w.p1), commands.ScheduleSession{ClientID: w.k2.ID, Title: "Intake", Start: careStart})
		require.NoError(t, err)
		h.s3 = res.Sessions[0].ID
	})
	step("provider messages before the start", next(), func() {
		_, err := w.care.PostMessage(ctx, meta(w.p1), commands.PostMessage{SessionID: h.s1, Text: canaryMessage})
		require.NoError(t, err)
	})
	step("activate s1", careStart.Add(time.Minute), func() {
		_, err := w.care.ActivateSession(ctx, meta(w.sys), commands.ActivateSession{SessionID: h.s1})
		require.NoError(t, err)
		_, h.activatedS1 = w.liveSession(h.s1)
	})
	step("client starts PHQ-9", next(), func() {
		_, err := w.care.StartAssignment(ctx, meta(w.k1), commands.StartAssignment{SessionID: h.s1, AssignmentID: h.a1})
		require.NoError(t, err)
	})
	step("client completes PHQ-9", next(), func() {
		_, err := w.care.CompleteAssignment(ctx, meta(w.k1), commands.CompleteAssignment{
			SessionID: h.s1, AssignmentID: h.a1, Answers: answersFor(t, books.PHQ9ID, 2),
		})
		require.NoError(t, err)
	})
	step("p2 gives feedback", next(), func() {
		res, err := w.care.GiveFeedback(ctx, meta(w.p2), commands.GiveFeedback{SessionID: h.s1, AssignmentID: h.a1, Text: canaryFeedback})
		require.NoError(t, err)
		h.feedback = res.ID
	})
	step("client asks about the feedback", next(), func() {
		_, err := w.care.CommentOnFeedback(ctx, meta(w.k1), commands.CommentOnFeedback{
			SessionID: h.s1, AssignmentID: h.a1, FeedbackID: h.feedback, Text: canaryComment,
		})
		require.NoError(t, err)
	})
	step("p2 replies", next(), func() {
		_, err := w.care.CommentOnFeedback(ctx, meta(w.p2), commands.CommentOnFeedback{
			SessionID: h.s1, AssignmentID: h.a1, FeedbackID: h.feedback, Text: canaryReply,
		})
		require.NoError(t, err)
	})
	step("p1 writes a note", next(), func() {
		_, err := w.care.WriteNote(ctx, meta(w.p1), commands.WriteNote{SessionID: h.s1, Text: canaryNote})
		require.NoError(t, err)
	})
	step("p2 posts in the discussion", next(), func() {
		_, err := w.care.PostDiscussion(ctx, meta(w.p2), commands.PostDiscussion{SessionID: h.s1, Text: canaryDiscussion})
		require.NoError(t, err)
	})
	step("client messages", next(), func() {
		_, err := w.care.PostMessage(ctx, meta(w.k1), commands.PostMessage{SessionID: h.s1, Text: canaryClientMsg})
		require.NoError(t, err)
	})
	step("care team changes", next(), func() {
		_, err := w.org.ChangeCareTeam(ctx, meta(w.p1), commands.ChangeCareTeam{ClientID: w.k1.ID, CareTeam: []string{w.p1.ID, w.p3.ID}})
		require.NoError(t, err)
		h.teamChangedAt = w.liveClient(w.k1.ID).Version()
	})
	step("p3 assigns GAD-7 in s2", next(), func() {
		res, err := w.care.AssignHomework(ctx, meta(w.p3), commands.AssignHomework{SessionID: h.s2, BookID: books.GAD7ID})
		require.NoError(t, err)
		h.a3 = res.ID
	})
	step("s2 moves a day later", next(), func() {
		_, err := w.care.RescheduleSession(ctx, meta(w.p1), commands.RescheduleSession{SessionID: h.s2, Start: careStart.Add(week + 24*time.Hour)})
		require.NoError(t, err)
	})
	step("s1 closes early", next(), func() {
		_, err := w.care.CloseSession(ctx, meta(w.p1), commands.CloseSession{SessionID: h.s1, Reason: canaryClose})
		require.NoError(t, err)
		_, h.closedS1 = w.liveSession(h.s1)
	})
	step("s3 is cancelled", next(), func() {
		_, err := w.care.CancelSession(ctx, meta(w.p1), commands.CancelSession{SessionID: h.s3, Reason: canaryCancel})
		require.NoError(t, err)
	})
	step("note on the closed session", next(), func() {
		_, err := w.care.WriteNote(ctx, meta(w.p3), commands.WriteNote{SessionID: h.s1, Text: canaryLateNote})
		require.NoError(t, err)
	})
	step("s2 activates", careStart.Add(week+24*time.Hour+time.Minute), func() {
		_, err := w.care.ActivateSession(ctx, meta(w.sys), commands.ActivateSession{SessionID: h.s2})
		require.NoError(t, err)
	})
	step("GAD-7 in s2 goes overdue", careStart.Add(2*week+24*time.Hour+time.Hour), func() {
		_, err := w.care.MarkAssignmentOverdue(ctx, meta(w.sys), commands.MarkAssignmentOverdue{SessionID: h.s2, AssignmentID: h.a3})
		require.NoError(t, err)
	})
	return h
}

// observe records what the live system shows now: each session and the
// client k1 as their aggregates hold them, and k1's timeline as the audit
// trail read model answers it once caught up.
func (h *history) observe(name string, at time.Time) {
	w := h.w
	w.t.Helper()
	snap := snapshot{step: name, at: at, head: w.head(), sessions: map[string]audit.SessionState{}, versions: map[string]int64{}}
	for _, id := range []string{h.s1, h.s2, h.s3} {
		if id == "" {
			continue
		}
		s, version := w.liveSession(id)
		snap.sessions[id] = audit.SessionStateOf(s.View())
		snap.versions[id] = version
	}
	snap.client = audit.ClientStateOf(w.liveClient(w.k1.ID))
	w.caughtUp()
	snap.timeline = w.timeline(w.k1.ID, time.Time{}, time.Time{})
	snap.viewed = map[string]audit.SessionState{}
	for id := range snap.sessions {
		detail, err := views.SessionView(w.ctx, w.db, id)
		require.NoError(w.t, err)
		snap.viewed[id] = stateOfDetail(detail)
	}
	h.steps = append(h.steps, snap)
}

// stateOfDetail reads the care team's session view as an audit state, to
// compare with time travel. The view keeps no reminder days, so a history
// that compares through it sets none.
func stateOfDetail(d views.SessionDetail) audit.SessionState {
	at := func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return t.UTC()
	}
	out := audit.SessionState{
		SessionID: d.ID, ClinicID: d.ClinicID, ClientID: d.ClientID, ProviderID: d.ProviderID,
		ScheduledBy: d.ScheduledBy, Title: d.Title, Status: d.State, Start: d.Start.UTC(), End: d.End.UTC(),
		Series: d.Series, Plan: d.Plan, ScheduledAt: at(d.ScheduledAt), ActivatedAt: at(d.ActivatedAt),
		ClosedAt: at(d.ClosedAt), ClosedBy: d.ClosedBy, ClosedEarly: d.ClosedEarly,
		CancelledAt: at(d.CancelledAt), CancelledBy: d.CancelledBy,
		Assignments: []audit.AssignmentState{},
		Messages:    len(d.Messages), Discussion: len(d.Discussion), Notes: len(d.Notes),
	}
	for _, a := range d.Assignments {
		s := audit.AssignmentState{
			AssignmentID: a.ID, BookID: a.BookID, BookVersion: a.BookVersion, BookKind: a.BookKind,
			BookTitle: a.BookTitle, Due: a.Due.UTC(), GivenBy: a.GivenBy, GivenAt: at(a.GivenAt), Status: a.Status,
			StartedAt: at(a.StartedAt), CompletedAt: at(a.CompletedAt), Overdue: a.Overdue,
			Done:     a.Status == string(care.AssignmentCompletedStatus) && len(a.Feedback) > 0,
			Answered: len(a.Answers), Scored: a.Scored, Feedback: []audit.FeedbackState{},
		}
		if a.Scored {
			score := &audit.ScoreState{Severity: a.Severity, Urgent: a.Urgent}
			if a.Total != nil {
				score.Total = *a.Total
			}
			for _, f := range a.Flags {
				score.Flags = append(score.Flags, audit.FlagState{Kind: f.Kind, ItemID: f.ItemID, Urgent: f.Urgent})
			}
			s.Score = score
		}
		for _, f := range a.Feedback {
			s.Feedback = append(s.Feedback, audit.FeedbackState{FeedbackID: f.ID, By: f.By, At: f.At.UTC(), Comments: len(f.Comments)})
		}
		out.Assignments = append(out.Assignments, s)
	}
	return out
}
