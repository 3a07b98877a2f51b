package views_test

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/projections/views"
)

// propertyChecks is how many sequences the property test tries unless
// -rapid.checks says otherwise: each one opens and fills two read-model
// databases, so fewer, longer sequences find more per second.
const propertyChecks = "25"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set && os.Getenv("RAPID_CHECKS") == "" {
		if err := flag.Set("rapid.checks", propertyChecks); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

// TestIncrementalEqualsRebuilt runs random command sequences through the
// handlers while the runner applies them as they come (one small batch per
// command), then builds every view again from scratch in a fresh database:
// each table reads the same both ways, sealed values opened (their stored
// bytes differ by the random nonce each seal draws).
func TestIncrementalEqualsRebuilt(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var cleanups []func()
		defer func() {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}()
		w := newWorldCleanup(t, func(f func()) { cleanups = append(cleanups, f) })
		m := &randomCare{w: w}
		steps := rapid.IntRange(20, 100).Draw(rt, "steps")
		for i := range steps {
			m.act(rt, i)
			if rapid.IntRange(0, 3).Draw(rt, "wait") == 0 {
				w.caughtUp()
			}
		}
		w.caughtUp()
		incremental := openedTables(t, w.ctx, w.db)

		fresh, runner := startViews(t, func(f func()) { cleanups = append(cleanups, f) }, w.store, w.reg, w.sealer,
			viewsLocation(t, "rebuilt.db"))
		waitViews(t, w.ctx, w.store, runner)
		rebuilt := openedTables(t, w.ctx, fresh)
		require.Equal(t, incremental, rebuilt)

		// Every query reads whatever the sequence left.
		for _, p := range []domain.Actor{w.p1, w.p2, w.p3} {
			_, err := views.Inbox(w.ctx, w.db, p.ID, w.clock())
			require.NoError(t, err)
		}
		for _, k := range []domain.Actor{w.k1, w.k2} {
			_, err := views.ClientSessions(w.ctx, w.db, k.ID)
			require.NoError(t, err)
			_, err = views.ScoreHistory(w.ctx, w.db, k.ID, books.PHQ9ID)
			require.NoError(t, err)
		}
		for _, id := range m.sessions {
			_, err := views.SessionView(w.ctx, w.db, id)
			require.NoError(t, err)
		}
		_, err := views.ClinicOverview(w.ctx, w.db, w.clinic, w.clock())
		require.NoError(t, err)
	})
}

// randomCare draws commands against the world, mostly ones that can
// succeed; refusals are fine, other failures are not.
type randomCare struct {
	w        *world
	sessions []string
}

var randomActions = []string{
	"schedule", "schedule", "clock", "clock", "activate", "activate", "reschedule", "cancel", "close", "close",
	"assign", "start", "complete", "complete", "complete", "overdue", "feedback", "feedback", "feedback",
	"comment", "comment", "comment", "message", "message", "discussion", "note", "team", "deactivate", "reactivate",
	"providerOff", "providerOn",
}

func (m *randomCare) act(rt *rapid.T, step int) {
	w := m.w
	ctx := w.ctx
	action := rapid.SampledFrom(randomActions).Draw(rt, "action")
	provider := rapid.SampledFrom([]domain.Actor{w.p1, w.p1, w.p2, w.p3}).Draw(rt, "provider")
	var err error
	switch action {
	case "schedule":
		client := rapid.SampledFrom([]domain.Actor{w.k1, w.k1, w.k2}).Draw(rt, "client")
		res, e := w.care.ScheduleSession(ctx, w.meta(provider), commands.ScheduleSession{
			ClientID: client.ID, Title: fmt.Sprintf("Session %d", step),
			Start:    w.clock().Add(time.Duration(rapid.IntRange(-12, 72).Draw(rt, "startHours")) * time.Hour),
			Length:   time.Duration(rapid.IntRange(1, 7).Draw(rt, "days")) * day,
			Repeat:   rapid.IntRange(1, 2).Draw(rt, "repeat"),
			Homework: rapid.SliceOfNDistinct(rapid.SampledFrom([]string{books.PHQ9ID, books.GAD7ID, w.module}), 0, 2, rapid.ID[string]).Draw(rt, "homework"),
		})
		for _, s := range res.Sessions {
			m.sessions = append(m.sessions, s.ID)
		}
		err = e
	case "clock":
		w.at(w.clock().Add(time.Duration(rapid.IntRange(1, 72).Draw(rt, "hours")) * time.Hour))
	case "activate":
		id, s, ok := m.session(rt, func(s care.SessionView) bool { return s.State == care.StateScheduled })
		if !ok {
			return
		}
		if s.Start.After(w.clock()) {
			w.at(s.Start)
		}
		_, err = w.care.ActivateSession(ctx, w.meta(w.sys), commands.ActivateSession{SessionID: id})
	case "reschedule":
		id, _, ok := m.session(rt, func(s care.SessionView) bool { return s.State.Open() })
		if !ok {
			return
		}
		start := w.clock().Add(time.Duration(rapid.IntRange(-24, 72).Draw(rt, "startHours")) * time.Hour)
		_, err = w.care.RescheduleSession(ctx, w.meta(provider), commands.RescheduleSession{SessionID: id, Start: start})
	case "cancel":
		id, _, ok := m.session(rt, func(s care.SessionView) bool { return s.State.Open() })
		if !ok {
			return
		}
		_, err = w.care.CancelSession(ctx, w.meta(provider), commands.CancelSession{SessionID: id, Reason: "plans changed"})
	case "close":
		id, _, ok := m.session(rt, func(s care.SessionView) bool { return s.State == care.StateActive })
		if !ok {
			return
		}
		reason := rapid.SampledFrom([]string{"", "stopping early"}).Draw(rt, "reason")
		_, err = w.care.CloseSession(ctx, w.meta(provider), commands.CloseSession{SessionID: id, Reason: reason})
	case "assign":
		id, _, ok := m.session(rt, func(s care.SessionView) bool { return s.State.Open() })
		if !ok {
			return
		}
		book := rapid.SampledFrom([]string{books.PHQ9ID, books.GAD7ID, w.module}).Draw(rt, "book")
		_, err = w.care.AssignHomework(ctx, w.meta(provider), commands.AssignHomework{SessionID: id, BookID: book})
	case "start", "complete", "overdue", "feedback":
		id, s, a, ok := m.assignment(rt, action)
		if !ok {
			return
		}
		client := domain.Actor{ID: s.ClientID, Role: domain.RoleClient}
		switch action {
		case "start":
			_, err = w.care.StartAssignment(ctx, w.meta(client), commands.StartAssignment{SessionID: id, AssignmentID: a.ID})
		case "complete":
			var given []books.Answer
			if a.BookKind != books.KindModule {
				b, _ := books.BuiltInBook(a.BookID)
				for _, it := range b.Items() {
					given = append(given, books.Answer{ItemID: it.ID, Value: rapid.IntRange(0, 3).Draw(rt, "value")})
				}
			}
			_, err = w.care.CompleteAssignment(ctx, w.meta(client), commands.CompleteAssignment{SessionID: id, AssignmentID: a.ID, Answers: given})
		case "overdue":
			if a.Due.After(w.clock()) {
				w.at(a.Due.Add(time.Minute))
			}
			_, err = w.care.MarkAssignmentOverdue(ctx, w.meta(w.sys), commands.MarkAssignmentOverdue{SessionID: id, AssignmentID: a.ID})
		case "feedback":
			_, err = w.care.GiveFeedback(ctx, w.meta(provider), commands.GiveFeedback{SessionID: id, AssignmentID: a.ID, Text: "Feedback"})
		}
	case "comment":
		id, s, a, ok := m.assignment(rt, action)
		if !ok {
			return
		}
		fb := rapid.SampledFrom(a.Feedback).Draw(rt, "feedback")
		author := provider
		if rapid.Bool().Draw(rt, "byClient") {
			author = domain.Actor{ID: s.ClientID, Role: domain.RoleClient}
		}
		_, err = w.care.CommentOnFeedback(ctx, w.meta(author), commands.CommentOnFeedback{SessionID: id, AssignmentID: a.ID, FeedbackID: fb.ID, Text: "Comment"})
	case "message", "discussion", "note":
		id, s, ok := m.session(rt, func(s care.SessionView) bool { return s.State.Open() })
		if !ok {
			return
		}
		switch action {
		case "message":
			author := provider
			if rapid.Bool().Draw(rt, "byClient") {
				author = domain.Actor{ID: s.ClientID, Role: domain.RoleClient}
			}
			_, err = w.care.PostMessage(ctx, w.meta(author), commands.PostMessage{SessionID: id, Text: "Message"})
		case "discussion":
			_, err = w.care.PostDiscussion(ctx, w.meta(provider), commands.PostDiscussion{SessionID: id, Text: "Discussion"})
		case "note":
			_, err = w.care.WriteNote(ctx, w.meta(provider), commands.WriteNote{SessionID: id, Text: "Note"})
		}
	case "team":
		client := rapid.SampledFrom([]domain.Actor{w.k1, w.k2}).Draw(rt, "client")
		team := rapid.SliceOfNDistinct(rapid.SampledFrom([]string{w.p1.ID, w.p2.ID, w.p3.ID}), 1, 3, rapid.ID[string]).Draw(rt, "team")
		_, err = w.org.ChangeCareTeam(ctx, w.meta(w.p1), commands.ChangeCareTeam{ClientID: client.ID, CareTeam: team})
	case "deactivate":
		_, err = w.org.DeactivateClient(ctx, w.meta(w.p1), commands.DeactivateClient{ClientID: w.k2.ID, Reason: "discharged"})
	case "reactivate":
		_, err = w.org.ReactivateClient(ctx, w.meta(w.p1), commands.ReactivateClient{ClientID: w.k2.ID})
	case "providerOff":
		p := rapid.SampledFrom([]domain.Actor{w.p2, w.p3}).Draw(rt, "who")
		_, err = w.org.DeactivateProvider(ctx, w.meta(w.sys), commands.DeactivateProvider{ProviderID: p.ID, Reason: "leave"})
	case "providerOn":
		p := rapid.SampledFrom([]domain.Actor{w.p2, w.p3}).Draw(rt, "who")
		_, err = w.org.ReactivateProvider(ctx, w.meta(w.sys), commands.ReactivateProvider{ProviderID: p.ID})
	}
	if err != nil && domain.KindOf(err) == 0 {
		rt.Fatalf("step %d: %s failed with a non-domain error: %v", step, action, err)
	}
}

// session draws a known session, mostly one that prefer accepts.
func (m *randomCare) session(rt *rapid.T, prefer func(care.SessionView) bool) (string, care.SessionView, bool) {
	ids := m.sessions
	if rapid.IntRange(0, 3).Draw(rt, "prefer") > 0 {
		ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !prefer(m.w.session(id)) })
	}
	if len(ids) == 0 {
		return "", care.SessionView{}, false
	}
	id := rapid.SampledFrom(ids).Draw(rt, "session")
	return id, m.w.session(id), true
}

// assignment draws an assignment fit for action in an active session (an
// open one for overdue).
func (m *randomCare) assignment(rt *rapid.T, action string) (string, care.SessionView, care.AssignmentView, bool) {
	fits := map[string]func(care.AssignmentView) bool{
		"start":    func(a care.AssignmentView) bool { return a.Status == care.AssignmentGivenStatus },
		"complete": func(a care.AssignmentView) bool { return a.Status != care.AssignmentCompletedStatus },
		"overdue":  func(a care.AssignmentView) bool { return a.Status != care.AssignmentCompletedStatus && !a.Overdue },
		"feedback": func(a care.AssignmentView) bool { return a.Status == care.AssignmentCompletedStatus },
		"comment":  func(a care.AssignmentView) bool { return len(a.Feedback) > 0 },
	}[action]
	type pick struct {
		session care.SessionView
		a       care.AssignmentView
	}
	var picks []pick
	for _, id := range m.sessions {
		s := m.w.session(id)
		if s.State != care.StateActive && (action != "overdue" || !s.State.Open()) {
			continue
		}
		for _, a := range s.Assignments {
			if fits(a) {
				picks = append(picks, pick{s, a})
			}
		}
	}
	if len(picks) == 0 {
		return "", care.SessionView{}, care.AssignmentView{}, false
	}
	p := picks[rapid.IntRange(0, len(picks)-1).Draw(rt, "assignment")]
	return p.session.ID, p.session, p.a, true
}
