package care_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
)

func TestAssignDefaultsToTheSessionEnd(t *testing.T) {
	history := []domain.Event{scheduled(), activated()}
	s := givenSession(history...)
	r, _ := care.NewReminders([]int{1})
	require.NoError(t, s.Assign(care.Homework{AssignmentID: "a-1", Book: phq9(), Reminders: r}, peer.ID, t0))
	want := given("a-1", phq9())
	want.By, want.ReminderDays = peer.ID, []int{1}
	requireRecorded(t, s, history, want)
}

func TestAssignInAScheduledSessionWithADueDate(t *testing.T) {
	s := givenSession(scheduled())
	due := t0.Add(3 * 24 * time.Hour)
	require.NoError(t, s.Assign(care.Homework{AssignmentID: "a-1", Book: gad7(), Due: due}, provider.ID, t0.Add(-time.Hour)))
	a, ok := s.Assignment("a-1")
	require.True(t, ok)
	assert.Equal(t, due, a.Due)
	assert.Equal(t, care.AssignmentGivenStatus, a.Status)
}

func TestAssignRefusesBadDueDates(t *testing.T) {
	s := givenSession(scheduled(), activated())
	for name, due := range map[string]time.Time{
		"at start":     t0,
		"before start": t0.Add(-time.Hour),
		"after end":    t0.Add(week + time.Second),
	} {
		t.Run(name, func(t *testing.T) {
			err := s.Assign(care.Homework{AssignmentID: "a-1", Book: phq9(), Due: due}, provider.ID, t0)
			requireRefused(t, err, domain.KindValidation, "due-outside-session")
		})
	}
	err := s.Assign(care.Homework{AssignmentID: "a-1", Book: phq9(), Due: t0.Add(time.Hour)}, provider.ID, t0.Add(2*time.Hour))
	requireRefused(t, err, domain.KindValidation, "due-in-past")
	assert.Empty(t, s.Pending())
}

func TestAssignRefusesClosedAndCancelledSessions(t *testing.T) {
	h := care.Homework{AssignmentID: "a-9", Book: phq9()}
	requireRefused(t, givenSession(scheduled(), activated(), closed()).Assign(h, provider.ID, t0), domain.KindConflict, "session-closed")
	requireRefused(t, givenSession(scheduled(), cancelled()).Assign(h, provider.ID, t0), domain.KindConflict, "session-cancelled")
}

func TestAssignRefusesDuplicatesAndMissingBooks(t *testing.T) {
	s := givenSession(scheduled(), given("a-1", phq9()))
	requireRefused(t, s.Assign(care.Homework{AssignmentID: "a-1", Book: phq9()}, provider.ID, t0), domain.KindConflict, "assignment-exists")
	requireRefused(t, s.Assign(care.Homework{AssignmentID: "a-2"}, provider.ID, t0), domain.KindValidation, "book-required")
	requireRefused(t, s.Assign(care.Homework{Book: phq9()}, provider.ID, t0), domain.KindValidation, "assignment-id-required")
}

func TestStartAssignment(t *testing.T) {
	history := []domain.Event{scheduled(), activated(), given("a-1", phq9())}
	s := givenSession(history...)
	require.NoError(t, s.StartAssignment("a-1", client.ID, t0.Add(time.Minute)))
	requireRecorded(t, s, history, care.AssignmentStarted{SessionID: "s-1", ClientID: client.ID, AssignmentID: "a-1", At: t0.Add(time.Minute)})
	requireRefused(t, s.StartAssignment("a-1", client.ID, t0), domain.KindConflict, "assignment-already-started")
}

func TestStartAssignmentRefusals(t *testing.T) {
	requireRefused(t, givenSession(scheduled(), given("a-1", phq9())).StartAssignment("a-1", client.ID, t0),
		domain.KindConflict, "session-not-active")
	active := givenSession(scheduled(), activated(), given("a-1", gad7()), completed("a-1"))
	requireRefused(t, active.StartAssignment("a-1", other.ID, t0), domain.KindNotFound, "session-not-found")
	requireRefused(t, active.StartAssignment("a-2", client.ID, t0), domain.KindNotFound, "assignment-not-found")
	requireRefused(t, active.StartAssignment("a-1", client.ID, t0), domain.KindConflict, "assignment-already-completed")
}

func TestCompletePHQ9ScoresAndRaisesAnUrgentRiskFlag(t *testing.T) {
	history := []domain.Event{scheduled(), activated(), given("a-1", phq9())}
	s := givenSession(history...)
	ans := answers(phq9(), 2, 2, 2, 2, 2, 2, 2, 2, 1) // total 17, item 9 above zero
	at := t0.Add(time.Hour)
	require.NoError(t, s.CompleteAssignment("a-1", client.ID, version(phq9()), ans, at))

	e := s.Pending()[0].(care.AssignmentCompleted)
	assert.True(t, e.Scored)
	assert.Equal(t, 17, e.Total)
	assert.Equal(t, "moderately_severe", e.Severity)
	require.Len(t, e.Flags, 1)
	assert.Equal(t, books.Flag{Kind: books.FlagKindRisk, ItemID: "9", Urgent: true, Reason: e.Flags[0].Reason}, e.Flags[0])
	assert.True(t, e.Urgent)
	assert.Equal(t, provider.ID, e.ProviderID, "the inbox needs the session's provider")
	assert.Equal(t, ans, e.Answers)
	requireRecorded(t, s, history, e)
	a, _ := s.Assignment("a-1")
	assert.Equal(t, care.AssignmentCompletedStatus, a.Status)
	assert.Equal(t, 17, a.Score.Total)
}

func TestCompleteGAD7WithoutFlags(t *testing.T) {
	s := givenSession(scheduled(), activated(), given("a-1", gad7()), care.AssignmentStarted{SessionID: "s-1", AssignmentID: "a-1"})
	require.NoError(t, s.CompleteAssignment("a-1", client.ID, version(gad7()), answers(gad7(), 3, 3, 3, 3, 3, 0), t0))
	e := s.Pending()[0].(care.AssignmentCompleted)
	assert.Equal(t, 15, e.Total)
	assert.Equal(t, "severe", e.Severity)
	assert.Empty(t, e.Flags)
	assert.False(t, e.Urgent)
}

func TestCompleteRefusesInvalidResponses(t *testing.T) {
	s := givenSession(scheduled(), activated(), given("a-1", phq9()))
	full := answers(phq9(), 1)
	for name, ans := range map[string][]books.Answer{
		"none":         nil,
		"missing item": full[:8],
		"unknown item": append(append([]books.Answer(nil), full...), books.Answer{ItemID: "10", Value: 0}),
		"out of range": append(append([]books.Answer(nil), full[:8]...), books.Answer{ItemID: "9", Value: 4}),
		"negative":     append(append([]books.Answer(nil), full[:8]...), books.Answer{ItemID: "9", Value: -1}),
	} {
		t.Run(name, func(t *testing.T) {
			err := s.CompleteAssignment("a-1", client.ID, version(phq9()), ans, t0)
			requireRefused(t, err, domain.KindValidation, books.SlugInvalidResponse)
		})
	}
	assert.Empty(t, s.Pending())
}

func TestCompleteRefusesTwice(t *testing.T) {
	s := givenSession(scheduled(), activated(), given("a-1", gad7()), completed("a-1"))
	err := s.CompleteAssignment("a-1", client.ID, version(gad7()), answers(gad7(), 0), t0)
	requireRefused(t, err, domain.KindConflict, "assignment-already-completed")
}

func TestCompleteRefusesAnotherBookVersion(t *testing.T) {
	s := givenSession(scheduled(), activated(), given("a-1", gad7()))
	err := s.CompleteAssignment("a-1", client.ID, version(phq9()), answers(phq9(), 0), t0)
	requireRefused(t, err, domain.KindConflict, "book-version-mismatch")
}

func TestCompleteRefusals(t *testing.T) {
	ans := answers(gad7(), 0)
	requireRefused(t, givenSession(scheduled(), activated(), given("a-1", gad7()), closed()).CompleteAssignment("a-1", client.ID, version(gad7()), ans, t0),
		domain.KindConflict, "session-closed")
	requireRefused(t, givenSession(scheduled(), activated(), given("a-1", gad7())).CompleteAssignment("a-1", other.ID, version(gad7()), ans, t0),
		domain.KindNotFound, "session-not-found")
	requireRefused(t, givenSession(scheduled(), given("a-1", gad7())).CompleteAssignment("a-1", client.ID, version(gad7()), ans, t0),
		domain.KindConflict, "session-not-active")
}

func TestCompleteAModuleWithoutAnswersIsNotScored(t *testing.T) {
	module, err := books.NewBook("breathing", "clinic-1", 1, books.Spec{Kind: books.KindModule, Title: "Breathing", Content: "Breathe in."})
	require.NoError(t, err)
	s := givenSession(scheduled(), activated(), given("a-1", module))
	require.NoError(t, s.CompleteAssignment("a-1", client.ID, version(module), nil, t0))
	e := s.Pending()[0].(care.AssignmentCompleted)
	assert.False(t, e.Scored)
	assert.Zero(t, e.Total)
}

func TestMarkOverdue(t *testing.T) {
	history := []domain.Event{scheduled(), activated(), given("a-1", phq9())}
	s := givenSession(history...)
	requireRefused(t, s.MarkOverdue("a-1", t0.Add(week)), domain.KindConflict, "assignment-not-due")
	at := t0.Add(week + time.Second)
	require.NoError(t, s.MarkOverdue("a-1", at))
	requireRecorded(t, s, history, care.AssignmentOverdue{SessionID: "s-1", ClientID: client.ID, AssignmentID: "a-1", Due: t0.Add(week), At: at})
	requireRefused(t, s.MarkOverdue("a-1", at), domain.KindConflict, "assignment-already-overdue")
	requireRefused(t, givenSession(scheduled(), activated(), given("a-1", gad7()), completed("a-1")).MarkOverdue("a-1", at),
		domain.KindConflict, "assignment-already-completed")
}

func TestGiveFeedbackOnACompletedAssignment(t *testing.T) {
	history := []domain.Event{scheduled(), activated(), given("a-1", gad7()), completed("a-1")}
	s := givenSession(history...)
	require.NoError(t, s.GiveFeedback("a-1", "f-1", provider.ID, " Well done ", t0.Add(2*time.Hour)))
	requireRecorded(t, s, history, feedback("a-1", "f-1"))
	a, _ := s.Assignment("a-1")
	assert.True(t, a.Done())
	requireRefused(t, s.GiveFeedback("a-1", "f-1", provider.ID, "again", t0), domain.KindConflict, "feedback-exists")
}

func TestGiveFeedbackRefusals(t *testing.T) {
	requireRefused(t, givenSession(scheduled(), activated(), given("a-1", gad7())).GiveFeedback("a-1", "f-1", provider.ID, "x", t0),
		domain.KindConflict, "assignment-not-completed")
	done := []domain.Event{scheduled(), activated(), given("a-1", gad7()), completed("a-1")}
	requireRefused(t, givenSession(done...).GiveFeedback("a-1", "f-1", provider.ID, "", t0), domain.KindValidation, "text-required")
	requireRefused(t, givenSession(done...).GiveFeedback("a-2", "f-1", provider.ID, "x", t0), domain.KindNotFound, "assignment-not-found")
	requireRefused(t, givenSession(append(done, closed())...).GiveFeedback("a-1", "f-1", provider.ID, "x", t0),
		domain.KindConflict, "session-closed")
}

func threadHistory() []domain.Event {
	return []domain.Event{scheduled(), activated(), given("a-1", gad7()), completed("a-1"), feedback("a-1", "f-1")}
}

func TestCommentThreadOpensWithTheClientAndProvidersReply(t *testing.T) {
	history := threadHistory()
	s := givenSession(history...)
	requireRefused(t, s.CommentOnFeedback("a-1", "f-1", "c-0", peer, "anything?", t0), domain.KindConflict, "thread-not-opened")

	require.NoError(t, s.CommentOnFeedback("a-1", "f-1", "c-1", client, "What does moderate mean?", t0.Add(time.Hour)))
	require.NoError(t, s.CommentOnFeedback("a-1", "f-1", "c-2", peer, "It means ...", t0.Add(2*time.Hour)))
	requireRecorded(t, s, history,
		care.AssignmentCommentPosted{SessionID: "s-1", ClientID: client.ID, AssignmentID: "a-1", FeedbackID: "f-1", CommentID: "c-1",
			AuthorID: client.ID, AuthorRole: domain.RoleClient, Text: "What does moderate mean?", At: t0.Add(time.Hour)},
		care.AssignmentCommentPosted{SessionID: "s-1", ClientID: client.ID, AssignmentID: "a-1", FeedbackID: "f-1", CommentID: "c-2",
			AuthorID: peer.ID, AuthorRole: domain.RoleProvider, Text: "It means ...", At: t0.Add(2 * time.Hour)},
	)
	a, _ := s.Assignment("a-1")
	require.Len(t, a.Feedback[0].Comments, 2)
}

func TestCommentRefusals(t *testing.T) {
	s := givenSession(threadHistory()...)
	requireRefused(t, s.CommentOnFeedback("a-1", "f-1", "c-1", other, "mine?", t0), domain.KindNotFound, "session-not-found")
	requireRefused(t, s.CommentOnFeedback("a-1", "f-9", "c-1", client, "?", t0), domain.KindNotFound, "feedback-not-found")
	requireRefused(t, s.CommentOnFeedback("a-1", "f-1", "c-1", domain.Actor{ID: "aud", Role: domain.RoleAuditor}, "?", t0),
		domain.KindForbidden, "forbidden")
	requireRefused(t, s.CommentOnFeedback("a-1", "f-1", "c-1", client, "  ", t0), domain.KindValidation, "text-required")
	requireRefused(t, givenSession(append(threadHistory(), closed())...).CommentOnFeedback("a-1", "f-1", "c-1", client, "?", t0),
		domain.KindConflict, "session-closed")
}
