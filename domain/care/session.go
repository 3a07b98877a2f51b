// Package care holds the Session aggregate: one session of asynchronous
// care for one client, with the homework assigned in it (assignments, their
// responses, scores, feedback and comment threads), its messages, the care
// team's discussion and the providers' notes. Assignments live inside the
// session because the session's closing rule needs all of them at once.
//
// Methods validate and record events; appliers never validate, so every
// stored event replays. Time is always passed in by the caller.
package care

import (
	"slices"
	"time"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
)

// StreamType is the stream type of sessions: "session-<id>".
const StreamType = "session"

// State is where a session is in its lifecycle.
type State string

const (
	StateScheduled State = "scheduled"
	StateActive    State = "active"
	StateClosed    State = "closed"
	StateCancelled State = "cancelled"
)

// Open reports whether the session still takes work (homework, responses,
// feedback, comments, messages, discussion).
func (s State) Open() bool { return s == StateScheduled || s == StateActive }

// AssignmentStatus is where an assignment is.
type AssignmentStatus string

const (
	AssignmentGivenStatus     AssignmentStatus = "given"
	AssignmentStartedStatus   AssignmentStatus = "started"
	AssignmentCompletedStatus AssignmentStatus = "completed"
)

// Post is one written entry: a message, discussion post, note or comment.
type Post struct {
	ID         string
	AuthorID   string
	AuthorRole domain.Role
	Text       string
	At         time.Time
}

// FeedbackView is one feedback and its comment thread.
type FeedbackView struct {
	ID       string
	By       string
	Text     string
	At       time.Time
	Comments []Post
}

// AssignmentView is one assignment as the session holds it.
type AssignmentView struct {
	ID           string
	BookID       string
	BookVersion  int
	BookKind     books.Kind
	BookTitle    string
	Due          time.Time
	ReminderDays []int
	GivenBy      string
	GivenAt      time.Time
	Status       AssignmentStatus
	StartedAt    time.Time
	CompletedAt  time.Time
	Overdue      bool
	Answers      []books.Answer
	Scored       bool
	Score        books.Score
	Feedback     []FeedbackView
}

// Done reports whether the assignment no longer holds a session open: it
// is completed and has feedback.
func (a AssignmentView) Done() bool {
	return a.Status == AssignmentCompletedStatus && len(a.Feedback) > 0
}

// SessionView is the whole state of a session, as plain data: what tests,
// time-travel views and audits compare.
type SessionView struct {
	ID           string
	ClinicID     string
	ClientID     string
	ProviderID   string
	ScheduledBy  string
	Title        string
	Description  string
	State        State
	Start        time.Time
	End          time.Time
	ReminderDays []int
	Series       *SeriesRef
	Plan         *PlanRef
	ScheduledAt  time.Time
	ActivatedAt  time.Time
	ClosedAt     time.Time
	ClosedBy     string
	CloseReason  string
	ClosedEarly  bool
	CancelledAt  time.Time
	CancelledBy  string
	CancelReason string
	Assignments  []AssignmentView
	Messages     []Post
	Discussion   []Post
	Notes        []Post
}

// Session is the aggregate. Its state is kept as a SessionView so that a
// copy of it is the whole truth; only appliers change it.
type Session struct {
	domain.Root
	st SessionView
}

// New returns an empty session to load into or schedule.
func New() *Session { return &Session{} }

func (s *Session) ID() string           { return s.st.ID }
func (s *Session) Exists() bool         { return s.st.ID != "" }
func (s *Session) ClinicID() string     { return s.st.ClinicID }
func (s *Session) ClientID() string     { return s.st.ClientID }
func (s *Session) ProviderID() string   { return s.st.ProviderID }
func (s *Session) State() State         { return s.st.State }
func (s *Session) Start() time.Time     { return s.st.Start }
func (s *Session) End() time.Time       { return s.st.End }
func (s *Session) AssignmentCount() int { return len(s.st.Assignments) }

// View returns a deep copy of the session's state.
func (s *Session) View() SessionView { return cloneSession(s.st) }

// Assignment returns a copy of one assignment.
func (s *Session) Assignment(id string) (AssignmentView, bool) {
	i := s.assignmentIndex(id)
	if i < 0 {
		return AssignmentView{}, false
	}
	return cloneAssignment(s.st.Assignments[i]), true
}

func (s *Session) assignmentIndex(id string) int {
	return slices.IndexFunc(s.st.Assignments, func(a AssignmentView) bool { return a.ID == id })
}

// Replay applies one stored event during load.
func (s *Session) Replay(e domain.Event) {
	s.apply(e)
	s.Loaded()
}

func (s *Session) record(e domain.Event) { s.Record(e, s.apply) }

// apply changes state from one event. It never validates: an event that
// names something unknown changes nothing.
func (s *Session) apply(e domain.Event) {
	switch e := e.(type) {
	case SessionScheduled:
		s.st = SessionView{
			ID: e.SessionID, ClinicID: e.ClinicID, ClientID: e.ClientID, ProviderID: e.ProviderID,
			ScheduledBy: e.ScheduledBy, Title: e.Title, Description: e.Description, State: StateScheduled,
			Start: e.Start, End: e.End, ReminderDays: cloneInts(e.ReminderDays),
			Series: cloneRef(e.Series), Plan: cloneRef(e.Plan), ScheduledAt: e.At,
		}
	case SessionActivated:
		s.st.State, s.st.ActivatedAt = StateActive, e.At
	case SessionRescheduled:
		s.st.Start, s.st.End = e.Start, e.End
		for _, m := range e.Dues {
			if i := s.assignmentIndex(m.AssignmentID); i >= 0 {
				s.st.Assignments[i].Due = m.Due
			}
		}
	case SessionCancelled:
		s.st.State, s.st.CancelledAt, s.st.CancelledBy, s.st.CancelReason = StateCancelled, e.At, e.By, e.Reason
	case SessionClosed:
		s.st.State, s.st.ClosedAt, s.st.ClosedBy = StateClosed, e.At, e.By
		s.st.CloseReason, s.st.ClosedEarly = e.Reason, e.Early
	case AssignmentGiven:
		s.st.Assignments = append(s.st.Assignments, AssignmentView{
			ID: e.AssignmentID, BookID: e.BookID, BookVersion: e.BookVersion, BookKind: e.BookKind,
			BookTitle: e.BookTitle, Due: e.Due, ReminderDays: cloneInts(e.ReminderDays),
			GivenBy: e.By, GivenAt: e.At, Status: AssignmentGivenStatus,
		})
	case AssignmentStarted:
		s.onAssignment(e.AssignmentID, func(a *AssignmentView) {
			a.Status, a.StartedAt = AssignmentStartedStatus, e.At
		})
	case AssignmentCompleted:
		s.onAssignment(e.AssignmentID, func(a *AssignmentView) {
			a.Status, a.CompletedAt = AssignmentCompletedStatus, e.At
			a.Answers = cloneAnswers(e.Answers)
			a.Scored = e.Scored
			a.Score = books.Score{Total: e.Total, Severity: e.Severity, Flags: cloneFlags(e.Flags)}
		})
	case AssignmentOverdue:
		s.onAssignment(e.AssignmentID, func(a *AssignmentView) { a.Overdue = true })
	case AssignmentFeedbackGiven:
		s.onAssignment(e.AssignmentID, func(a *AssignmentView) {
			a.Feedback = append(a.Feedback, FeedbackView{ID: e.FeedbackID, By: e.By, Text: e.Text, At: e.At})
		})
	case AssignmentCommentPosted:
		s.onAssignment(e.AssignmentID, func(a *AssignmentView) {
			for i := range a.Feedback {
				if a.Feedback[i].ID == e.FeedbackID {
					a.Feedback[i].Comments = append(a.Feedback[i].Comments,
						Post{ID: e.CommentID, AuthorID: e.AuthorID, AuthorRole: e.AuthorRole, Text: e.Text, At: e.At})
				}
			}
		})
	case SessionMessagePosted:
		s.st.Messages = append(s.st.Messages, Post{ID: e.MessageID, AuthorID: e.AuthorID, AuthorRole: e.AuthorRole, Text: e.Text, At: e.At})
	case SessionDiscussionPosted:
		s.st.Discussion = append(s.st.Discussion, Post{ID: e.PostID, AuthorID: e.AuthorID, AuthorRole: domain.RoleProvider, Text: e.Text, At: e.At})
	case SessionNoteWritten:
		s.st.Notes = append(s.st.Notes, Post{ID: e.NoteID, AuthorID: e.AuthorID, AuthorRole: domain.RoleProvider, Text: e.Text, At: e.At})
	}
}

func (s *Session) onAssignment(id string, change func(*AssignmentView)) {
	if i := s.assignmentIndex(id); i >= 0 {
		change(&s.st.Assignments[i])
	}
}

func cloneSession(v SessionView) SessionView {
	out := v
	out.ReminderDays = cloneInts(v.ReminderDays)
	out.Series, out.Plan = cloneRef(v.Series), cloneRef(v.Plan)
	out.Assignments = nil
	for _, a := range v.Assignments {
		out.Assignments = append(out.Assignments, cloneAssignment(a))
	}
	out.Messages = slices.Clone(v.Messages)
	out.Discussion = slices.Clone(v.Discussion)
	out.Notes = slices.Clone(v.Notes)
	return out
}

func cloneAssignment(a AssignmentView) AssignmentView {
	out := a
	out.ReminderDays = cloneInts(a.ReminderDays)
	out.Answers = cloneAnswers(a.Answers)
	out.Score.Flags = cloneFlags(a.Score.Flags)
	out.Feedback = nil
	for _, f := range a.Feedback {
		f.Comments = slices.Clone(f.Comments)
		out.Feedback = append(out.Feedback, f)
	}
	return out
}

// The clone helpers keep nil for empty, as a JSON round trip does.
func cloneInts(v []int) []int {
	if len(v) == 0 {
		return nil
	}
	return slices.Clone(v)
}

func cloneAnswers(v []books.Answer) []books.Answer {
	if len(v) == 0 {
		return nil
	}
	return slices.Clone(v)
}

func cloneFlags(v []books.Flag) []books.Flag {
	if len(v) == 0 {
		return nil
	}
	return slices.Clone(v)
}

func cloneRef[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}
