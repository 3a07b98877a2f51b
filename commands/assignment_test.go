package commands_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
)

func TestAssignHomeworkFromTheCatalog(t *testing.T) {
	w := newCareWorld(t)
	id := w.schedule()
	v := w.version(id)
	due := careStart.Add(3 * 24 * time.Hour)
	res, err := w.care.AssignHomework(w.ctx, careMeta(w.p2), commands.AssignHomework{SessionID: id, BookID: w.moduleID, Due: due, Reminders: []int{1}})
	require.NoError(t, err)
	require.NotEmpty(t, res.ID)
	w.then(id, v, care.AssignmentGiven{
		SessionID: id, ClientID: w.k1.ID, AssignmentID: res.ID, BookID: w.moduleID, BookVersion: 1, BookKind: books.KindModule,
		BookTitle: "Breathing", Due: due, ReminderDays: []int{1}, By: w.p2.ID, At: w.clock(),
	})

	again, err := w.care.AssignHomework(w.ctx, commands.Meta{Actor: w.p1, CommandID: "assign-once"}, commands.AssignHomework{SessionID: id, BookID: books.GAD7ID})
	require.NoError(t, err)
	retry, err := w.care.AssignHomework(w.ctx, commands.Meta{Actor: w.p1, CommandID: "assign-once"}, commands.AssignHomework{SessionID: id, BookID: books.GAD7ID})
	require.NoError(t, err)
	assert.True(t, retry.Duplicate)
	assert.Equal(t, again.ID, retry.ID, "a retry answers with the same assignment id")
	assert.Equal(t, 2, w.session(id).AssignmentCount())
}

func TestAssignHomeworkRefusals(t *testing.T) {
	w := newCareWorld(t)
	id := w.schedule()
	for name, tc := range map[string]struct {
		cmd  commands.AssignHomework
		kind domain.Kind
		slug string
	}{
		"unknown book":        {commands.AssignHomework{SessionID: id, BookID: "nope"}, domain.KindValidation, "unknown-book"},
		"due after the end":   {commands.AssignHomework{SessionID: id, BookID: books.PHQ9ID, Due: careStart.Add(2 * careWeek)}, domain.KindValidation, "due-outside-session"},
		"due before start":    {commands.AssignHomework{SessionID: id, BookID: books.PHQ9ID, Due: careStart.Add(-time.Hour)}, domain.KindValidation, "due-outside-session"},
		"bad reminders":       {commands.AssignHomework{SessionID: id, BookID: books.PHQ9ID, Reminders: []int{3, 3}}, domain.KindValidation, "reminders-invalid"},
		"other clinic's book": {commands.AssignHomework{SessionID: id, BookID: w.otherClinicBook()}, domain.KindValidation, "unknown-book"},
	} {
		t.Run(name, func(t *testing.T) {
			before := w.head()
			_, err := w.care.AssignHomework(w.ctx, careMeta(w.p1), tc.cmd)
			w.refusedIn(t, err, before, tc.kind, tc.slug)
		})
	}
	_, err := w.care.CancelSession(w.ctx, careMeta(w.p1), commands.CancelSession{SessionID: id, Reason: "no longer needed"})
	require.NoError(t, err)
	before := w.head()
	_, err = w.care.AssignHomework(w.ctx, careMeta(w.p1), commands.AssignHomework{SessionID: id, BookID: books.PHQ9ID})
	w.refused(err, before, domain.KindConflict, "session-cancelled")
}

// otherClinicBook defines a book in the other clinic.
func (w *careWorld) otherClinicBook() string {
	w.t.Helper()
	res, err := w.org.DefineBook(w.ctx, careMeta(w.p4), commands.DefineBook{ClinicID: w.otherClinic, Spec: books.Spec{
		Kind: books.KindModule, Title: "Elsewhere", Content: "Not yours.",
	}})
	require.NoError(w.t, err)
	return res.Stream.ID
}

func TestStartAndCompleteAPHQ9WithARiskFlag(t *testing.T) {
	w := newCareWorld(t)
	id, as := w.active(books.PHQ9ID)
	before := w.head()
	_, err := w.care.CompleteAssignment(w.ctx, careMeta(w.k1), commands.CompleteAssignment{SessionID: id, AssignmentID: as[0], Answers: answersFor(books.PHQ9ID, 0)[:8]})
	w.refused(err, before, domain.KindValidation, books.SlugInvalidResponse)

	v := w.version(id)
	w.at(careStart.Add(time.Hour))
	_, err = w.care.StartAssignment(w.ctx, careMeta(w.k1), commands.StartAssignment{SessionID: id, AssignmentID: as[0]})
	require.NoError(t, err)
	ans := answersFor(books.PHQ9ID, 3, 3, 3, 3, 3, 3, 3, 3, 2) // 26: severe, item 9 above zero
	done, err := w.care.CompleteAssignment(w.ctx, careMeta(w.k1), commands.CompleteAssignment{SessionID: id, AssignmentID: as[0], Answers: ans})
	require.NoError(t, err)
	assert.True(t, done.Scored)
	assert.Equal(t, 26, done.Score.Total)
	assert.Equal(t, "severe", done.Score.Severity)
	require.Len(t, done.Score.Flags, 1)
	assert.True(t, done.Score.Urgent())

	phq9, _ := books.BuiltInBook(books.PHQ9ID)
	flag := books.Flag{Kind: books.FlagKindRisk, ItemID: "9", Urgent: true, Reason: phq9.Spec().FlagRules[0].Reason}
	w.then(id, v,
		care.AssignmentStarted{SessionID: id, ClientID: w.k1.ID, AssignmentID: as[0], At: careStart.Add(time.Hour)},
		care.AssignmentCompleted{
			SessionID: id, ClientID: w.k1.ID, ProviderID: w.p1.ID, AssignmentID: as[0], BookID: books.PHQ9ID, BookVersion: 1,
			Answers: ans, Scored: true, Total: 26, Severity: "severe", Flags: []books.Flag{flag}, Urgent: true, At: careStart.Add(time.Hour),
		})

	before = w.head()
	_, err = w.care.CompleteAssignment(w.ctx, careMeta(w.k1), commands.CompleteAssignment{SessionID: id, AssignmentID: as[0], Answers: ans})
	w.refused(err, before, domain.KindConflict, "assignment-already-completed")
	_, err = w.care.StartAssignment(w.ctx, careMeta(w.k1), commands.StartAssignment{SessionID: id, AssignmentID: as[0]})
	w.refused(err, before, domain.KindConflict, "assignment-already-completed")
}

func TestCompleteAssignmentRetryAnswersWithTheScore(t *testing.T) {
	w := newCareWorld(t)
	id, as := w.active(books.GAD7ID)
	m := commands.Meta{Actor: w.k1, CommandID: "submit-1"}
	cmd := commands.CompleteAssignment{SessionID: id, AssignmentID: as[0], Answers: answersFor(books.GAD7ID, 2)}
	first, err := w.care.CompleteAssignment(w.ctx, m, cmd)
	require.NoError(t, err)
	retry, err := w.care.CompleteAssignment(w.ctx, m, cmd)
	require.NoError(t, err)
	assert.True(t, retry.Duplicate)
	assert.Equal(t, first.Score, retry.Score)
	assert.Equal(t, 14, retry.Score.Total)
	assert.Equal(t, "moderate", retry.Score.Severity)
}

func TestCompleteAssignmentRefusesBadResponses(t *testing.T) {
	w := newCareWorld(t)
	id, as := w.active(books.GAD7ID)
	full := answersFor(books.GAD7ID, 1)
	for name, ans := range map[string][]books.Answer{
		"unanswered":   nil,
		"missing item": full[1:],
		"unknown item": append(append([]books.Answer(nil), full...), books.Answer{ItemID: "8", Value: 1}),
		"out of range": append(append([]books.Answer(nil), full[1:]...), books.Answer{ItemID: "1", Value: 7}),
	} {
		t.Run(name, func(t *testing.T) {
			before := w.head()
			_, err := w.care.CompleteAssignment(w.ctx, careMeta(w.k1), commands.CompleteAssignment{SessionID: id, AssignmentID: as[0], Answers: ans})
			w.refusedIn(t, err, before, domain.KindValidation, books.SlugInvalidResponse)
		})
	}
	before := w.head()
	_, err := w.care.CompleteAssignment(w.ctx, careMeta(w.k1), commands.CompleteAssignment{SessionID: id, AssignmentID: "nope", Answers: full})
	w.refused(err, before, domain.KindNotFound, "assignment-not-found")
}

func TestCompleteAssignmentRefusesBeforeTheSessionStarts(t *testing.T) {
	w := newCareWorld(t)
	id := w.schedule(books.GAD7ID)
	as := w.session(id).View().Assignments[0].ID
	before := w.head()
	_, err := w.care.CompleteAssignment(w.ctx, careMeta(w.k1), commands.CompleteAssignment{SessionID: id, AssignmentID: as, Answers: answersFor(books.GAD7ID, 1)})
	w.refused(err, before, domain.KindConflict, "session-not-active")
}

func TestCompleteAModuleWithoutAnswers(t *testing.T) {
	w := newCareWorld(t)
	id, as := w.active(w.moduleID)
	done, err := w.care.CompleteAssignment(w.ctx, careMeta(w.k1), commands.CompleteAssignment{SessionID: id, AssignmentID: as[0]})
	require.NoError(t, err)
	assert.False(t, done.Scored)
	a, _ := w.session(id).Assignment(as[0])
	assert.Equal(t, care.AssignmentCompletedStatus, a.Status)
}

func TestMarkAssignmentOverdue(t *testing.T) {
	w := newCareWorld(t)
	id, as := w.active(books.PHQ9ID)
	reactor := domain.Actor{ID: "time-reactor", Role: domain.RoleSystemAdmin}
	before := w.head()
	_, err := w.care.MarkAssignmentOverdue(w.ctx, careMeta(reactor), commands.MarkAssignmentOverdue{SessionID: id, AssignmentID: as[0]})
	w.refused(err, before, domain.KindConflict, "assignment-not-due")

	w.at(careStart.Add(careWeek + time.Minute))
	v := w.version(id)
	_, err = w.care.MarkAssignmentOverdue(w.ctx, careMeta(reactor), commands.MarkAssignmentOverdue{SessionID: id, AssignmentID: as[0]})
	require.NoError(t, err)
	w.then(id, v, care.AssignmentOverdue{SessionID: id, ClientID: w.k1.ID, AssignmentID: as[0], Due: careStart.Add(careWeek), At: w.clock()})
}

func TestFeedbackAndItsCommentThread(t *testing.T) {
	w := newCareWorld(t)
	id, as := w.active(books.GAD7ID)
	before := w.head()
	_, err := w.care.GiveFeedback(w.ctx, careMeta(w.p1), commands.GiveFeedback{SessionID: id, AssignmentID: as[0], Text: "early"})
	w.refused(err, before, domain.KindConflict, "assignment-not-completed")

	_, err = w.care.CompleteAssignment(w.ctx, careMeta(w.k1), commands.CompleteAssignment{SessionID: id, AssignmentID: as[0], Answers: answersFor(books.GAD7ID, 1)})
	require.NoError(t, err)
	v := w.version(id)
	fb, err := w.care.GiveFeedback(w.ctx, careMeta(w.p2), commands.GiveFeedback{SessionID: id, AssignmentID: as[0], Text: "Mild anxiety, keep going"})
	require.NoError(t, err)

	before = w.head()
	_, err = w.care.CommentOnFeedback(w.ctx, careMeta(w.p1), commands.CommentOnFeedback{SessionID: id, AssignmentID: as[0], FeedbackID: fb.ID, Text: "First!"})
	w.refused(err, before, domain.KindConflict, "thread-not-opened")
	_, err = w.care.CommentOnFeedback(w.ctx, careMeta(w.k1), commands.CommentOnFeedback{SessionID: id, AssignmentID: as[0], FeedbackID: "nope", Text: "?"})
	w.refused(err, before, domain.KindNotFound, "feedback-not-found")

	ask, err := w.care.CommentOnFeedback(w.ctx, careMeta(w.k1), commands.CommentOnFeedback{SessionID: id, AssignmentID: as[0], FeedbackID: fb.ID, Text: "What can I do?"})
	require.NoError(t, err)
	reply, err := w.care.CommentOnFeedback(w.ctx, careMeta(w.p1), commands.CommentOnFeedback{SessionID: id, AssignmentID: as[0], FeedbackID: fb.ID, Text: "Try the breathing module."})
	require.NoError(t, err)

	now := w.clock()
	w.then(id, v,
		care.AssignmentFeedbackGiven{SessionID: id, ClientID: w.k1.ID, AssignmentID: as[0], FeedbackID: fb.ID, By: w.p2.ID, Text: "Mild anxiety, keep going", At: now},
		care.AssignmentCommentPosted{SessionID: id, ClientID: w.k1.ID, AssignmentID: as[0], FeedbackID: fb.ID, CommentID: ask.ID,
			AuthorID: w.k1.ID, AuthorRole: domain.RoleClient, Text: "What can I do?", At: now},
		care.AssignmentCommentPosted{SessionID: id, ClientID: w.k1.ID, AssignmentID: as[0], FeedbackID: fb.ID, CommentID: reply.ID,
			AuthorID: w.p1.ID, AuthorRole: domain.RoleProvider, Text: "Try the breathing module.", At: now},
	)
	a, _ := w.session(id).Assignment(as[0])
	require.Len(t, a.Feedback, 1)
	assert.Len(t, a.Feedback[0].Comments, 2)
}
