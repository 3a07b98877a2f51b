package care

import (
	"time"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
)

// Every care event names its session and its client: the client id lets the
// audit trail follow a client across streams and lets PHI be encrypted under
// the client's key. At is the clock time the command was decided at.

// SeriesRef places a session in a repeat series scheduled by one command.
type SeriesRef struct {
	ID    string `json:"id"`    // the command id that scheduled the series
	Index int    `json:"index"` // 1-based
	Count int    `json:"count"`
}

// PlanRef names the design plan week a session was scheduled from.
type PlanRef struct {
	PlanID string `json:"planId"`
	Week   int    `json:"week"`
}

// SessionScheduled: a provider scheduled a session for a client, held by
// ProviderID (the scheduler or another provider of the care team).
type SessionScheduled struct {
	SessionID    string     `json:"sessionId"`
	ClinicID     string     `json:"clinicId"`
	ClientID     string     `json:"clientId" phi:"subject"`
	ProviderID   string     `json:"providerId"`
	ScheduledBy  string     `json:"scheduledBy"`
	Title        string     `json:"title" phi:"sealed"`
	Description  string     `json:"description,omitempty" phi:"sealed"`
	Start        time.Time  `json:"start"`
	End          time.Time  `json:"end"`
	ReminderDays []int      `json:"reminderDays,omitempty"`
	Series       *SeriesRef `json:"series,omitempty"`
	Plan         *PlanRef   `json:"plan,omitempty"`
	At           time.Time  `json:"at"`
}

func (SessionScheduled) EventType() string { return "session.scheduled" }

// SessionActivated: the session's start has come; the client can work on it.
type SessionActivated struct {
	SessionID string    `json:"sessionId"`
	ClientID  string    `json:"clientId" phi:"subject"`
	At        time.Time `json:"at"`
}

func (SessionActivated) EventType() string { return "session.activated" }

// DueMove is an assignment's due date after a reschedule.
type DueMove struct {
	AssignmentID string    `json:"assignmentId"`
	Due          time.Time `json:"due"`
}

// SessionRescheduled: the session moved. Open assignments move with it
// (their new due dates are listed) so they stay inside the session.
type SessionRescheduled struct {
	SessionID     string    `json:"sessionId"`
	ClientID      string    `json:"clientId" phi:"subject"`
	By            string    `json:"by"`
	PreviousStart time.Time `json:"previousStart"`
	PreviousEnd   time.Time `json:"previousEnd"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	Dues          []DueMove `json:"dues,omitempty"`
	At            time.Time `json:"at"`
}

func (SessionRescheduled) EventType() string { return "session.rescheduled" }

// SessionCancelled: a provider called the session off, with a reason.
type SessionCancelled struct {
	SessionID string    `json:"sessionId"`
	ClientID  string    `json:"clientId" phi:"subject"`
	By        string    `json:"by"`
	Reason    string    `json:"reason" phi:"sealed"`
	At        time.Time `json:"at"`
}

func (SessionCancelled) EventType() string { return "session.cancelled" }

// SessionClosed: a provider closed the session. Early is set when work was
// still open (OpenAssignments: not completed or without feedback); the
// reason is then required.
type SessionClosed struct {
	SessionID       string    `json:"sessionId"`
	ClientID        string    `json:"clientId" phi:"subject"`
	By              string    `json:"by"`
	Reason          string    `json:"reason,omitempty" phi:"sealed"`
	Early           bool      `json:"early"`
	OpenAssignments []string  `json:"openAssignments,omitempty"`
	At              time.Time `json:"at"`
}

func (SessionClosed) EventType() string { return "session.closed" }

// AssignmentGiven: a provider assigned a book (at the version it had then).
type AssignmentGiven struct {
	SessionID    string     `json:"sessionId"`
	ClientID     string     `json:"clientId" phi:"subject"`
	AssignmentID string     `json:"assignmentId"`
	BookID       string     `json:"bookId"`
	BookVersion  int        `json:"bookVersion"`
	BookKind     books.Kind `json:"bookKind"`
	BookTitle    string     `json:"bookTitle"`
	Due          time.Time  `json:"due"`
	ReminderDays []int      `json:"reminderDays,omitempty"`
	By           string     `json:"by"`
	At           time.Time  `json:"at"`
}

func (AssignmentGiven) EventType() string { return "assignment.given" }

// AssignmentStarted: the client opened the assignment.
type AssignmentStarted struct {
	SessionID    string    `json:"sessionId"`
	ClientID     string    `json:"clientId" phi:"subject"`
	AssignmentID string    `json:"assignmentId"`
	At           time.Time `json:"at"`
}

func (AssignmentStarted) EventType() string { return "assignment.started" }

// AssignmentCompleted: the client submitted responses. Scored is set when
// answers were scored (a questionnaire or test); Urgent when any flag must
// reach the care team at once (PHQ-9 item 9). The inbox reads this event.
type AssignmentCompleted struct {
	SessionID    string         `json:"sessionId"`
	ClientID     string         `json:"clientId" phi:"subject"`
	ProviderID   string         `json:"providerId"` // the session's provider, for the inbox
	AssignmentID string         `json:"assignmentId"`
	BookID       string         `json:"bookId"`
	BookVersion  int            `json:"bookVersion"`
	Answers      []books.Answer `json:"answers,omitempty" phi:"sealed"`
	Scored       bool           `json:"scored"`
	Total        int            `json:"total" phi:"sealed"`
	Severity     string         `json:"severity,omitempty" phi:"sealed"`
	Flags        []books.Flag   `json:"flags,omitempty" phi:"sealed"`
	Urgent       bool           `json:"urgent"`
	At           time.Time      `json:"at"`
}

func (AssignmentCompleted) EventType() string { return "assignment.completed" }

// AssignmentOverdue: the due date passed before the client completed it.
type AssignmentOverdue struct {
	SessionID    string    `json:"sessionId"`
	ClientID     string    `json:"clientId" phi:"subject"`
	AssignmentID string    `json:"assignmentId"`
	Due          time.Time `json:"due"`
	At           time.Time `json:"at"`
}

func (AssignmentOverdue) EventType() string { return "assignment.overdue" }

// AssignmentFeedbackGiven: a provider assessed a completed assignment.
// FeedbackID opens a comment thread.
type AssignmentFeedbackGiven struct {
	SessionID    string    `json:"sessionId"`
	ClientID     string    `json:"clientId" phi:"subject"`
	AssignmentID string    `json:"assignmentId"`
	FeedbackID   string    `json:"feedbackId"`
	By           string    `json:"by"`
	Text         string    `json:"text" phi:"sealed"`
	At           time.Time `json:"at"`
}

func (AssignmentFeedbackGiven) EventType() string { return "assignment.feedback_given" }

// AssignmentCommentPosted: the client asked about a feedback, or a provider
// replied, in the feedback's thread.
type AssignmentCommentPosted struct {
	SessionID    string      `json:"sessionId"`
	ClientID     string      `json:"clientId" phi:"subject"`
	AssignmentID string      `json:"assignmentId"`
	FeedbackID   string      `json:"feedbackId"`
	CommentID    string      `json:"commentId"`
	AuthorID     string      `json:"authorId"`
	AuthorRole   domain.Role `json:"authorRole"`
	Text         string      `json:"text" phi:"sealed"`
	At           time.Time   `json:"at"`
}

func (AssignmentCommentPosted) EventType() string { return "assignment.comment_posted" }

// SessionMessagePosted: the client or a team provider wrote in the session's
// message center.
type SessionMessagePosted struct {
	SessionID  string      `json:"sessionId"`
	ClientID   string      `json:"clientId" phi:"subject"`
	MessageID  string      `json:"messageId"`
	AuthorID   string      `json:"authorId"`
	AuthorRole domain.Role `json:"authorRole"`
	Text       string      `json:"text" phi:"sealed"`
	At         time.Time   `json:"at"`
}

func (SessionMessagePosted) EventType() string { return "session.message_posted" }

// SessionDiscussionPosted: a provider wrote in the care team's discussion;
// the client never sees it.
type SessionDiscussionPosted struct {
	SessionID string    `json:"sessionId"`
	ClientID  string    `json:"clientId" phi:"subject"`
	PostID    string    `json:"postId"`
	AuthorID  string    `json:"authorId"`
	Text      string    `json:"text" phi:"sealed"`
	At        time.Time `json:"at"`
}

func (SessionDiscussionPosted) EventType() string { return "session.discussion_posted" }

// SessionNoteWritten: a provider's quick reflection on the session; the
// client never sees it.
type SessionNoteWritten struct {
	SessionID string    `json:"sessionId"`
	ClientID  string    `json:"clientId" phi:"subject"`
	NoteID    string    `json:"noteId"`
	AuthorID  string    `json:"authorId"`
	Text      string    `json:"text" phi:"sealed"`
	At        time.Time `json:"at"`
}

func (SessionNoteWritten) EventType() string { return "session.note_written" }

// Events lists a zero value of every event type of this package, for the
// codec registry.
func Events() []domain.Event {
	return []domain.Event{
		SessionScheduled{}, SessionActivated{}, SessionRescheduled{}, SessionCancelled{}, SessionClosed{},
		AssignmentGiven{}, AssignmentStarted{}, AssignmentCompleted{}, AssignmentOverdue{},
		AssignmentFeedbackGiven{}, AssignmentCommentPosted{},
		SessionMessagePosted{}, SessionDiscussionPosted{}, SessionNoteWritten{},
	}
}
