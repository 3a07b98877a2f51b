package care

import (
	"slices"
	"strings"
	"time"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
)

// Homework is one book to assign in a session.
type Homework struct {
	AssignmentID string
	Book         books.Book // the version it is given at
	Due          time.Time  // zero: the session's end
	Reminders    Reminders
}

// Assign gives the client a book in a scheduled or active session, due
// inside the session and not in the past.
func (s *Session) Assign(h Homework, by string, now time.Time) error {
	if err := s.mustBeOpen(); err != nil {
		return err
	}
	if strings.TrimSpace(h.AssignmentID) == "" {
		return domain.Validation("assignment-id-required", "assignmentId", "an assignment needs an id")
	}
	if s.assignmentIndex(h.AssignmentID) >= 0 {
		return domain.Conflict("assignment-exists", "assignment %s is already in session %s", h.AssignmentID, s.st.ID)
	}
	if h.Book.IsZero() {
		return domain.Validation("book-required", "bookId", "an assignment needs a book")
	}
	now = instant(now)
	due := s.st.End
	if !h.Due.IsZero() {
		due = instant(h.Due)
	}
	if !(Period{start: s.st.Start, end: s.st.End}).contains(due) {
		return domain.Validation("due-outside-session", "due", "the due date must fall after the session's start %s and by its end %s",
			s.st.Start.Format(time.RFC3339), s.st.End.Format(time.RFC3339))
	}
	if !due.After(now) {
		return domain.Validation("due-in-past", "due", "the due date %s has passed", due.Format(time.RFC3339))
	}
	s.record(AssignmentGiven{
		SessionID: s.st.ID, ClientID: s.st.ClientID, AssignmentID: h.AssignmentID,
		BookID: h.Book.ID(), BookVersion: h.Book.Version(), BookKind: h.Book.Kind(), BookTitle: h.Book.Title(),
		Due: due, ReminderDays: h.Reminders.Days(), By: by, At: now,
	})
	return nil
}

// StartAssignment: the session's client opens an assignment of an active
// session.
func (s *Session) StartAssignment(assignmentID, clientID string, now time.Time) error {
	a, err := s.clientAssignment(assignmentID, clientID)
	if err != nil {
		return err
	}
	switch a.Status {
	case AssignmentStartedStatus:
		return domain.Conflict("assignment-already-started", "assignment %s is already started", a.ID)
	case AssignmentCompletedStatus:
		return domain.Conflict("assignment-already-completed", "assignment %s is already completed", a.ID)
	}
	s.record(AssignmentStarted{SessionID: s.st.ID, ClientID: s.st.ClientID, AssignmentID: a.ID, At: instant(now)})
	return nil
}

// BookVersion finds one version of a book (the catalog, for the handlers).
type BookVersion func(bookID string, version int) (books.Book, error)

// CompleteAssignment: the session's client submits responses once. The
// answers are scored with the book version the assignment was given at
// (a missing or unknown item or an out-of-range value is refused).
func (s *Session) CompleteAssignment(assignmentID, clientID string, lookup BookVersion, answers []books.Answer, now time.Time) error {
	a, err := s.clientAssignment(assignmentID, clientID)
	if err != nil {
		return err
	}
	if a.Status == AssignmentCompletedStatus {
		return domain.Conflict("assignment-already-completed", "assignment %s is already completed", a.ID)
	}
	book, err := lookup(a.BookID, a.BookVersion)
	if err != nil {
		return err
	}
	if book.ID() != a.BookID || book.Version() != a.BookVersion {
		return domain.Conflict("book-version-mismatch", "assignment %s is %s version %d, not %s version %d",
			a.ID, a.BookID, a.BookVersion, book.ID(), book.Version())
	}
	score, err := book.Score(answers)
	if err != nil {
		return err
	}
	s.record(AssignmentCompleted{
		SessionID: s.st.ID, ClientID: s.st.ClientID, ProviderID: s.st.ProviderID, AssignmentID: a.ID,
		BookID: a.BookID, BookVersion: a.BookVersion, Answers: cloneAnswers(answers),
		Scored: len(answers) > 0, Total: score.Total, Severity: score.Severity, Flags: cloneFlags(score.Flags),
		Urgent: score.Urgent(), At: instant(now),
	})
	return nil
}

// MarkOverdue records that an assignment's due date passed before it was
// completed. It is recorded once.
func (s *Session) MarkOverdue(assignmentID string, now time.Time) error {
	if err := s.mustBeOpen(); err != nil {
		return err
	}
	a, err := s.assignment(assignmentID)
	if err != nil {
		return err
	}
	now = instant(now)
	switch {
	case a.Status == AssignmentCompletedStatus:
		return domain.Conflict("assignment-already-completed", "assignment %s is already completed", a.ID)
	case a.Overdue:
		return domain.Conflict("assignment-already-overdue", "assignment %s is already overdue", a.ID)
	case !now.After(a.Due):
		return domain.Conflict("assignment-not-due", "assignment %s is due at %s", a.ID, a.Due.Format(time.RFC3339))
	}
	s.record(AssignmentOverdue{SessionID: s.st.ID, ClientID: s.st.ClientID, AssignmentID: a.ID, Due: a.Due, At: now})
	return nil
}

// GiveFeedback: a provider assesses a completed assignment. An assignment
// may get several feedbacks; each opens its own comment thread.
func (s *Session) GiveFeedback(assignmentID, feedbackID, by, body string, now time.Time) error {
	if err := s.mustBeOpen(); err != nil {
		return err
	}
	a, err := s.assignment(assignmentID)
	if err != nil {
		return err
	}
	if a.Status != AssignmentCompletedStatus {
		return domain.Conflict("assignment-not-completed", "assignment %s is not completed yet", a.ID)
	}
	if err := requireID("feedbackId", feedbackID); err != nil {
		return err
	}
	if slices.ContainsFunc(a.Feedback, func(f FeedbackView) bool { return f.ID == feedbackID }) {
		return domain.Conflict("feedback-exists", "feedback %s already exists", feedbackID)
	}
	body, err = text("text", body, true, maxText)
	if err != nil {
		return err
	}
	s.record(AssignmentFeedbackGiven{
		SessionID: s.st.ID, ClientID: s.st.ClientID, AssignmentID: a.ID, FeedbackID: feedbackID,
		By: by, Text: body, At: instant(now),
	})
	return nil
}

// CommentOnFeedback posts in a feedback's thread. The session's client asks
// (and only in their own session); a provider replies once the client has
// asked.
func (s *Session) CommentOnFeedback(assignmentID, feedbackID, commentID string, author domain.Actor, body string, now time.Time) error {
	if err := s.mustBeOpen(); err != nil {
		return err
	}
	a, err := s.assignment(assignmentID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(a.Feedback, func(f FeedbackView) bool { return f.ID == feedbackID })
	if i < 0 {
		return domain.NotFound("feedback-not-found", "assignment %s has no feedback %s", a.ID, feedbackID)
	}
	thread := a.Feedback[i].Comments
	switch author.Role {
	case domain.RoleClient:
		if author.ID != s.st.ClientID {
			return domain.NotFound("session-not-found", "no such session")
		}
	case domain.RoleProvider:
		asked := slices.ContainsFunc(thread, func(p Post) bool { return p.AuthorRole == domain.RoleClient })
		if !asked {
			return domain.Conflict("thread-not-opened", "providers reply in a thread the client has opened")
		}
	default:
		return domain.Forbidden("forbidden", "a %s cannot comment on feedback", author.Role)
	}
	if err := requireID("commentId", commentID); err != nil {
		return err
	}
	if slices.ContainsFunc(thread, func(p Post) bool { return p.ID == commentID }) {
		return domain.Conflict("comment-exists", "comment %s already exists", commentID)
	}
	body, err = text("text", body, true, maxText)
	if err != nil {
		return err
	}
	s.record(AssignmentCommentPosted{
		SessionID: s.st.ID, ClientID: s.st.ClientID, AssignmentID: a.ID, FeedbackID: feedbackID,
		CommentID: commentID, AuthorID: author.ID, AuthorRole: author.Role, Text: body, At: instant(now),
	})
	return nil
}

// assignment finds an assignment of this session.
func (s *Session) assignment(id string) (AssignmentView, error) {
	i := s.assignmentIndex(id)
	if i < 0 {
		return AssignmentView{}, domain.NotFound("assignment-not-found", "session %s has no assignment %s", s.st.ID, id)
	}
	return s.st.Assignments[i], nil
}

// clientAssignment finds an assignment the client may work on now: in an
// active session of their own.
func (s *Session) clientAssignment(assignmentID, clientID string) (AssignmentView, error) {
	if err := s.mustExist(); err != nil {
		return AssignmentView{}, err
	}
	if clientID != s.st.ClientID {
		return AssignmentView{}, domain.NotFound("session-not-found", "no such session")
	}
	if err := s.mustBeActive(); err != nil {
		return AssignmentView{}, err
	}
	return s.assignment(assignmentID)
}

func requireID(field, id string) error {
	if strings.TrimSpace(id) == "" {
		return domain.Validation(field+"-required", field, "%s is required", field)
	}
	return nil
}
