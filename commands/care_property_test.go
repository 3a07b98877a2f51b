package commands_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
)

// careModel is what the property test remembers between steps: the state
// each handler left each session in, and the last command to retry.
type careModel struct {
	w        *careWorld
	seen     map[string]care.SessionView
	versions map[string]int64
	order    []string // session ids in the order they were scheduled
	last     func(commands.Meta) error
	lastMeta commands.Meta
	step     int
}

// TestCareProperties runs random command sequences against the handlers on
// the memory store. After every step, each session rebuilt from its stored
// events equals the state the handler left it in; refused commands write
// nothing and are domain errors; retries write nothing; and the streams
// keep the session's invariants.
func TestCareProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		w := newCareWorld(t)
		m := &careModel{w: w, seen: map[string]care.SessionView{}, versions: map[string]int64{}}
		commands.ObserveCare(w.care, func(s *care.Session) {
			if _, known := m.seen[s.ID()]; !known {
				m.order = append(m.order, s.ID())
			}
			m.seen[s.ID()] = s.View()
			m.versions[s.ID()] = s.Version()
		})
		steps := rapid.IntRange(20, 120).Draw(rt, "steps")
		for m.step = 0; m.step < steps; m.step++ {
			m.act(rt)
			m.checkRebuilt(rt)
		}
		m.checkInvariants(rt)
	})
}

// careActions are the steps the property test draws from, repeated to
// weigh them: enough sessions get to completion, feedback and threads.
var careActions = weighted(map[string]int{
	"schedule": 2, "clock": 2, "activate": 3, "reschedule": 1, "cancel": 1, "close": 2, "assign": 2, "start": 2,
	"complete": 4, "feedback": 4, "comment": 4, "message": 1, "discussion": 1, "note": 1, "overdue": 1, "retry": 1,
})

func weighted(weights map[string]int) []string {
	var out []string
	for name, n := range weights {
		for range n {
			out = append(out, name)
		}
	}
	slices.Sort(out) // map order is random; draws must be reproducible
	return out
}

func (m *careModel) act(rt *rapid.T) {
	w := m.w
	action := rapid.SampledFrom(careActions).Draw(rt, "action")
	provider := rapid.SampledFrom([]domain.Actor{w.p1, w.p2}).Draw(rt, "provider")
	var run func(commands.Meta) error
	switch action {
	case "schedule":
		homework := rapid.SliceOfNDistinct(rapid.SampledFrom([]string{books.PHQ9ID, books.GAD7ID, w.moduleID}), 0, 3, rapid.ID[string]).Draw(rt, "homework")
		cmd := commands.ScheduleSession{
			ClientID: w.k1.ID, ProviderID: rapid.SampledFrom([]string{"", w.p1.ID, w.p2.ID}).Draw(rt, "holder"),
			Title: "Session", Start: w.clock().Add(time.Duration(rapid.IntRange(-12, 72).Draw(rt, "startHours")) * time.Hour),
			Length: time.Duration(rapid.IntRange(1, 7).Draw(rt, "days")) * 24 * time.Hour, Repeat: rapid.IntRange(1, 3).Draw(rt, "repeat"),
			Homework: homework, Reminders: rapid.SliceOfNDistinct(rapid.IntRange(0, 3), 0, 2, rapid.ID[int]).Draw(rt, "reminders"),
		}
		run = func(meta commands.Meta) error { _, err := w.care.ScheduleSession(w.ctx, meta, cmd); return err }
	case "clock":
		w.at(w.clock().Add(time.Duration(rapid.IntRange(1, 96).Draw(rt, "hours")) * time.Hour))
		return
	case "activate":
		id, ok := m.session(rt, isScheduled)
		if !ok {
			return
		}
		provider = domain.Actor{ID: "time-reactor", Role: domain.RoleSystemAdmin}
		if start := m.seen[id].Start; start.After(w.clock()) && rapid.IntRange(0, 3).Draw(rt, "reactorOnTime") > 0 {
			w.at(start) // the time reactor fires at the start
		}
		run = func(meta commands.Meta) error {
			_, err := w.care.ActivateSession(w.ctx, meta, commands.ActivateSession{SessionID: id})
			return err
		}
	case "reschedule":
		id, ok := m.session(rt, isOpen)
		if !ok {
			return
		}
		start := w.clock().Add(time.Duration(rapid.IntRange(-48, 72).Draw(rt, "startHours")) * time.Hour)
		run = func(meta commands.Meta) error {
			_, err := w.care.RescheduleSession(w.ctx, meta, commands.RescheduleSession{SessionID: id, Start: start})
			return err
		}
	case "cancel":
		id, ok := m.session(rt, isOpen)
		if !ok {
			return
		}
		run = func(meta commands.Meta) error {
			_, err := w.care.CancelSession(w.ctx, meta, commands.CancelSession{SessionID: id, Reason: "changed plans"})
			return err
		}
	case "close":
		id, ok := m.session(rt, isActive)
		if !ok {
			return
		}
		reason := rapid.SampledFrom([]string{"", "stopping early"}).Draw(rt, "reason")
		run = func(meta commands.Meta) error {
			_, err := w.care.CloseSession(w.ctx, meta, commands.CloseSession{SessionID: id, Reason: reason})
			return err
		}
	case "assign":
		id, ok := m.session(rt, isOpen)
		if !ok {
			return
		}
		cmd := commands.AssignHomework{SessionID: id, BookID: rapid.SampledFrom([]string{books.PHQ9ID, books.GAD7ID, w.moduleID}).Draw(rt, "book")}
		if rapid.Bool().Draw(rt, "ownDue") {
			cmd.Due = m.seen[id].Start.Add(time.Duration(rapid.IntRange(1, 24*7).Draw(rt, "dueHours")) * time.Hour)
		}
		run = func(meta commands.Meta) error { _, err := w.care.AssignHomework(w.ctx, meta, cmd); return err }
	case "start", "complete", "overdue", "feedback":
		want := map[string]func(care.AssignmentView) bool{
			"start":    func(a care.AssignmentView) bool { return a.Status == care.AssignmentGivenStatus },
			"complete": func(a care.AssignmentView) bool { return a.Status != care.AssignmentCompletedStatus },
			"overdue":  func(a care.AssignmentView) bool { return a.Status != care.AssignmentCompletedStatus },
			"feedback": func(a care.AssignmentView) bool { return a.Status == care.AssignmentCompletedStatus },
		}[action]
		id, a, ok := m.assignment(rt, want)
		if !ok {
			return
		}
		switch action {
		case "start":
			provider = w.k1
			run = func(meta commands.Meta) error {
				_, err := w.care.StartAssignment(w.ctx, meta, commands.StartAssignment{SessionID: id, AssignmentID: a.ID})
				return err
			}
		case "complete":
			provider = w.k1
			answers := m.answers(rt, a)
			run = func(meta commands.Meta) error {
				_, err := w.care.CompleteAssignment(w.ctx, meta, commands.CompleteAssignment{SessionID: id, AssignmentID: a.ID, Answers: answers})
				return err
			}
		case "overdue":
			run = func(meta commands.Meta) error {
				_, err := w.care.MarkAssignmentOverdue(w.ctx, meta, commands.MarkAssignmentOverdue{SessionID: id, AssignmentID: a.ID})
				return err
			}
		case "feedback":
			run = func(meta commands.Meta) error {
				_, err := w.care.GiveFeedback(w.ctx, meta, commands.GiveFeedback{SessionID: id, AssignmentID: a.ID, Text: "Feedback"})
				return err
			}
		}
	case "comment":
		id, a, ok := m.assignment(rt, func(a care.AssignmentView) bool { return len(a.Feedback) > 0 })
		if !ok || len(a.Feedback) == 0 {
			return
		}
		fb := rapid.SampledFrom(a.Feedback).Draw(rt, "feedback")
		provider = rapid.SampledFrom([]domain.Actor{w.k1, w.k1, w.p1, w.p2}).Draw(rt, "author")
		run = func(meta commands.Meta) error {
			_, err := w.care.CommentOnFeedback(w.ctx, meta, commands.CommentOnFeedback{SessionID: id, AssignmentID: a.ID, FeedbackID: fb.ID, Text: "Comment"})
			return err
		}
	case "message", "discussion", "note":
		id, ok := m.session(rt, isOpen)
		if !ok {
			return
		}
		switch action {
		case "message":
			provider = rapid.SampledFrom([]domain.Actor{w.k1, w.p1, w.p2}).Draw(rt, "author")
			run = func(meta commands.Meta) error {
				_, err := w.care.PostMessage(w.ctx, meta, commands.PostMessage{SessionID: id, Text: "Message"})
				return err
			}
		case "discussion":
			run = func(meta commands.Meta) error {
				_, err := w.care.PostDiscussion(w.ctx, meta, commands.PostDiscussion{SessionID: id, Text: "Discussion"})
				return err
			}
		case "note":
			run = func(meta commands.Meta) error {
				_, err := w.care.WriteNote(w.ctx, meta, commands.WriteNote{SessionID: id, Text: "Note"})
				return err
			}
		}
	case "retry":
		if m.last == nil {
			return
		}
		before := m.head(rt)
		err := m.last(m.lastMeta)
		if err == nil && m.head(rt) != before {
			rt.Fatalf("step %d: retrying command %s wrote events", m.step, m.lastMeta.CommandID)
		}
		return
	}
	meta := commands.Meta{Actor: provider, CommandID: fmt.Sprintf("cmd-%d", m.step)}
	before := m.head(rt)
	err := run(meta)
	if err != nil {
		if domain.KindOf(err) == 0 {
			rt.Fatalf("step %d: %s failed with a non-domain error: %v", m.step, action, err)
		}
		if m.head(rt) != before {
			rt.Fatalf("step %d: refused %s wrote events: %v", m.step, action, err)
		}
		return
	}
	m.last, m.lastMeta = run, meta
}

// session draws a known session, mostly one that prefer accepts.
func (m *careModel) session(rt *rapid.T, prefer func(care.SessionView) bool) (string, bool) {
	ids := m.order
	if rapid.IntRange(0, 3).Draw(rt, "prefer") > 0 {
		ids = slices.DeleteFunc(slices.Clone(m.order), func(id string) bool { return !prefer(m.seen[id]) })
	}
	if len(ids) == 0 {
		return "", false
	}
	return rapid.SampledFrom(ids).Draw(rt, "session"), true
}

// assignment draws a known assignment, mostly one of an active session
// that prefer accepts.
func (m *careModel) assignment(rt *rapid.T, prefer func(care.AssignmentView) bool) (string, care.AssignmentView, bool) {
	picky := rapid.IntRange(0, 3).Draw(rt, "prefer") > 0
	type pick struct {
		session string
		a       care.AssignmentView
	}
	var picks []pick
	for _, id := range m.order {
		v := m.seen[id]
		for _, a := range v.Assignments {
			if !picky || (v.State == care.StateActive && prefer(a)) {
				picks = append(picks, pick{id, a})
			}
		}
	}
	if len(picks) == 0 {
		return "", care.AssignmentView{}, false
	}
	p := picks[rapid.IntRange(0, len(picks)-1).Draw(rt, "assignment")]
	return p.session, p.a, true
}

func isScheduled(v care.SessionView) bool { return v.State == care.StateScheduled }
func isOpen(v care.SessionView) bool      { return v.State.Open() }
func isActive(v care.SessionView) bool    { return v.State == care.StateActive }

// answers are mostly valid responses for a's book, sometimes not.
func (m *careModel) answers(rt *rapid.T, a care.AssignmentView) []books.Answer {
	b, ok := books.BuiltInBook(a.BookID)
	if !ok {
		return nil // a module: completed without answers
	}
	var out []books.Answer
	for _, it := range b.Items() {
		out = append(out, books.Answer{ItemID: it.ID, Value: rapid.IntRange(0, 3).Draw(rt, "value")})
	}
	if rapid.IntRange(0, 9).Draw(rt, "spoil") == 0 {
		out[0].Value = 4 // out of range: refused
	}
	return out
}

func (m *careModel) head(rt *rapid.T) int64 {
	p, err := m.w.store.HeadPosition(m.w.ctx)
	if err != nil {
		rt.Fatalf("head: %v", err)
	}
	return p
}

// rebuild replays a session's stream, as a reader that only has the store
// would.
func (m *careModel) rebuild(rt *rapid.T, id string) (*care.Session, []eventstore.RecordedEvent, []domain.Event) {
	recs, err := m.w.store.ReadStream(m.w.ctx, eventstore.NewStreamID(care.StreamType, id), 1)
	if err != nil {
		rt.Fatalf("read %s: %v", id, err)
	}
	s := care.New()
	var events []domain.Event
	for _, r := range recs {
		v, err := m.w.deps.Codec.Decode(r.Type, r.SchemaVersion, r.Data)
		if err != nil {
			rt.Fatalf("decode %s: %v", r.Type, err)
		}
		s.Replay(v.(domain.Event))
		events = append(events, v.(domain.Event))
	}
	return s, recs, events
}

func (m *careModel) checkRebuilt(rt *rapid.T) {
	for _, id := range m.order {
		s, _, _ := m.rebuild(rt, id)
		require.Equal(rt, m.seen[id], s.View(), "session %s rebuilt from its events differs from what the handler saw", id)
		require.Equal(rt, m.versions[id], s.Version(), "session %s version", id)
	}
}

// checkInvariants walks every session stream.
func (m *careModel) checkInvariants(rt *rapid.T) {
	for _, id := range m.order {
		s, recs, events := m.rebuild(rt, id)
		v := s.View()
		for i, r := range recs {
			require.Equal(rt, int64(i+1), r.Version, "versions are contiguous")
			if i > 0 {
				require.Greater(rt, r.Position, recs[i-1].Position, "positions increase")
			}
			require.Equal(rt, v.ClinicID, r.Metadata.ClinicID, "every event is stamped with the session's clinic")
		}
		require.IsType(rt, care.SessionScheduled{}, events[0], "a session stream starts with session.scheduled")

		state, start := care.StateScheduled, time.Time{}
		completed, feedback := map[string]bool{}, map[string]bool{}
		asked := map[string]bool{}
		for i, e := range events {
			if i > 0 {
				_, isNote := e.(care.SessionNoteWritten)
				require.True(rt, state.Open() || isNote, "%s after the session was %s", e.EventType(), state)
			}
			switch e := e.(type) {
			case care.SessionScheduled:
				require.Zero(rt, i, "scheduled once, first")
				start = e.Start
			case care.SessionRescheduled:
				start = e.Start
			case care.SessionActivated:
				require.Equal(rt, care.StateScheduled, state)
				require.False(rt, e.At.Before(start), "activated before its start")
				state = care.StateActive
			case care.SessionCancelled:
				state = care.StateCancelled
			case care.SessionClosed:
				require.Equal(rt, care.StateActive, state, "only an active session closes")
				if !e.Early {
					for a := range completed {
						require.True(rt, feedback[a], "closed on time with %s lacking feedback", a)
					}
				}
				state = care.StateClosed
			case care.AssignmentCompleted:
				require.Equal(rt, care.StateActive, state, "responses only in an active session")
				require.False(rt, completed[e.AssignmentID], "completed twice")
				completed[e.AssignmentID] = true
				if e.Scored {
					hi := map[string]int{books.PHQ9ID: 27, books.GAD7ID: 21}[e.BookID]
					require.True(rt, e.Total >= 0 && e.Total <= hi, "score %d out of range", e.Total)
					require.NotEmpty(rt, e.Severity)
				}
				item9 := slices.ContainsFunc(e.Answers, func(a books.Answer) bool { return a.ItemID == "9" && a.Value > 0 })
				require.Equal(rt, e.BookID == books.PHQ9ID && item9, e.Urgent, "PHQ-9 item 9 above zero is urgent, nothing else")
			case care.AssignmentFeedbackGiven:
				require.True(rt, completed[e.AssignmentID], "feedback on an assignment that is not completed")
				feedback[e.AssignmentID] = true
			case care.AssignmentCommentPosted:
				if e.AuthorRole == domain.RoleClient {
					asked[e.FeedbackID] = true
				}
				require.True(rt, asked[e.FeedbackID], "a thread opens with the client")
			case care.SessionDiscussionPosted:
				require.NotEqual(rt, v.ClientID, e.AuthorID)
			}
		}
		require.Equal(rt, state, v.State)
		for _, a := range v.Assignments {
			if a.Status != care.AssignmentCompletedStatus && v.State.Open() {
				require.True(rt, a.Due.After(v.Start) && !a.Due.After(v.End), "open assignment %s due %s outside %s..%s", a.ID, a.Due, v.Start, v.End)
			}
		}
	}
}

func TestCarePropertiesSeeEverySession(t *testing.T) {
	// The observer is what the property test relies on; check it sees a
	// scheduled series and a later command.
	w := newCareWorld(t)
	seen := map[string]int64{}
	commands.ObserveCare(w.care, func(s *care.Session) { seen[s.ID()] = s.Version() })
	res, err := w.care.ScheduleSession(w.ctx, careMeta(w.p1), commands.ScheduleSession{ClientID: w.k1.ID, Title: "x", Start: careStart, Repeat: 2})
	require.NoError(t, err)
	_, err = w.care.PostMessage(w.ctx, careMeta(w.k1), commands.PostMessage{SessionID: res.Sessions[1].ID, Text: "hi"})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{res.Sessions[0].ID: 1, res.Sessions[1].ID: 2}, seen)
}
