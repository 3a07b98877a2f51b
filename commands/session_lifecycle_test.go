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

func TestActivateSessionAtItsStart(t *testing.T) {
	w := newCareWorld(t)
	id := w.schedule()
	before := w.head()
	_, err := w.care.ActivateSession(w.ctx, careMeta(w.p1), commands.ActivateSession{SessionID: id})
	w.refused(err, before, domain.KindConflict, "session-not-started")

	w.at(careStart.Add(time.Minute))
	v := w.version(id)
	reactor := domain.Actor{ID: "time-reactor", Role: domain.RoleSystemAdmin}
	res, err := w.care.ActivateSession(w.ctx, careMeta(reactor), commands.ActivateSession{SessionID: id})
	require.NoError(t, err)
	assert.Equal(t, v+1, res.Version)
	w.then(id, v, care.SessionActivated{SessionID: id, ClientID: w.k1.ID, At: careStart.Add(time.Minute)})

	_, err = w.care.ActivateSession(w.ctx, careMeta(reactor), commands.ActivateSession{SessionID: id})
	w.refused(err, w.head(), domain.KindConflict, "session-not-scheduled")
}

func TestRescheduleSession(t *testing.T) {
	w := newCareWorld(t)
	id := w.schedule(books.PHQ9ID)
	assignment := w.session(id).View().Assignments[0].ID
	v := w.version(id)
	_, err := w.care.RescheduleSession(w.ctx, careMeta(w.p2), commands.RescheduleSession{SessionID: id, Start: careStart.Add(careWeek)})
	require.NoError(t, err)
	w.then(id, v, care.SessionRescheduled{
		SessionID: id, ClientID: w.k1.ID, By: w.p2.ID, PreviousStart: careStart, PreviousEnd: careStart.Add(careWeek),
		Start: careStart.Add(careWeek), End: careStart.Add(2 * careWeek),
		Dues: []care.DueMove{{AssignmentID: assignment, Due: careStart.Add(2 * careWeek)}}, At: w.clock(),
	})
	s := w.session(id)
	assert.Equal(t, careStart.Add(careWeek), s.Start())
	assert.Equal(t, careStart.Add(2*careWeek), s.End(), "the length is kept")
}

func TestRescheduleSessionRefusesBadDates(t *testing.T) {
	w := newCareWorld(t)
	id, _ := w.active()
	before := w.head()
	_, err := w.care.RescheduleSession(w.ctx, careMeta(w.p1), commands.RescheduleSession{SessionID: id, Start: careStart.Add(time.Hour)})
	w.refused(err, before, domain.KindValidation, "start-after-activation")
	_, err = w.care.RescheduleSession(w.ctx, careMeta(w.p1), commands.RescheduleSession{SessionID: id, Start: careStart.Add(-3 * careWeek)})
	w.refused(err, before, domain.KindValidation, "session-in-past")
	_, err = w.care.RescheduleSession(w.ctx, careMeta(w.p1), commands.RescheduleSession{SessionID: id})
	w.refused(err, before, domain.KindValidation, "start-required")
	_, err = w.care.RescheduleSession(w.ctx, careMeta(w.p1), commands.RescheduleSession{SessionID: id, Start: careStart, Length: time.Minute})
	w.refused(err, before, domain.KindValidation, "length-out-of-range")
}

func TestCancelSession(t *testing.T) {
	w := newCareWorld(t)
	id := w.schedule()
	before := w.head()
	_, err := w.care.CancelSession(w.ctx, careMeta(w.p1), commands.CancelSession{SessionID: id})
	w.refused(err, before, domain.KindValidation, "reason-required")

	v := w.version(id)
	_, err = w.care.CancelSession(w.ctx, careMeta(w.p2), commands.CancelSession{SessionID: id, Reason: "client travelling"})
	require.NoError(t, err)
	w.then(id, v, care.SessionCancelled{SessionID: id, ClientID: w.k1.ID, By: w.p2.ID, Reason: "client travelling", At: w.clock()})
	assert.Equal(t, care.StateCancelled, w.session(id).State())
}

func TestCloseSessionOnceWorkIsDone(t *testing.T) {
	w := newCareWorld(t)
	id, as := w.active(books.GAD7ID)
	before := w.head()
	_, err := w.care.CloseSession(w.ctx, careMeta(w.p1), commands.CloseSession{SessionID: id})
	w.refused(err, before, domain.KindConflict, "session-has-open-work")

	_, err = w.care.CompleteAssignment(w.ctx, careMeta(w.k1), commands.CompleteAssignment{SessionID: id, AssignmentID: as[0], Answers: answersFor(books.GAD7ID, 1)})
	require.NoError(t, err)
	_, err = w.care.CloseSession(w.ctx, careMeta(w.p1), commands.CloseSession{SessionID: id})
	w.refused(err, w.head(), domain.KindConflict, "session-has-open-work")
	_, err = w.care.GiveFeedback(w.ctx, careMeta(w.p2), commands.GiveFeedback{SessionID: id, AssignmentID: as[0], Text: "Good progress"})
	require.NoError(t, err)

	v := w.version(id)
	_, err = w.care.CloseSession(w.ctx, careMeta(w.p2), commands.CloseSession{SessionID: id})
	require.NoError(t, err)
	w.then(id, v, care.SessionClosed{SessionID: id, ClientID: w.k1.ID, By: w.p2.ID, At: w.clock()})
}

func TestCloseSessionEarlyWithAReason(t *testing.T) {
	w := newCareWorld(t)
	id, as := w.active(books.GAD7ID)
	v := w.version(id)
	_, err := w.care.CloseSession(w.ctx, careMeta(w.p1), commands.CloseSession{SessionID: id, Reason: "client admitted to hospital"})
	require.NoError(t, err)
	w.then(id, v, care.SessionClosed{SessionID: id, ClientID: w.k1.ID, By: w.p1.ID, Reason: "client admitted to hospital",
		Early: true, OpenAssignments: as, At: w.clock()})
}

func TestCloseSessionRefusesOneThatHasNotStarted(t *testing.T) {
	w := newCareWorld(t)
	id := w.schedule()
	before := w.head()
	_, err := w.care.CloseSession(w.ctx, careMeta(w.p1), commands.CloseSession{SessionID: id, Reason: "x"})
	w.refused(err, before, domain.KindConflict, "session-not-active")
}

func TestNextSessionAfterClosing(t *testing.T) {
	w := newCareWorld(t)
	id, _ := w.active()
	_, err := w.care.CloseSession(w.ctx, careMeta(w.p1), commands.CloseSession{SessionID: id})
	require.NoError(t, err)
	res, err := w.care.ScheduleSession(w.ctx, careMeta(w.p1), commands.ScheduleSession{
		ClientID: w.k1.ID, Title: "Week 2", Start: careStart.Add(careWeek), Homework: []string{books.PHQ9ID},
	})
	require.NoError(t, err)
	assert.NotEqual(t, id, res.Sessions[0].ID)
	assert.Equal(t, care.StateClosed, w.session(id).State())
}

// sessionCommand runs one session command as actor, for the refusal table.
type sessionCommand struct {
	name       string
	who        []domain.Role // roles that may issue it
	run        func(w *careWorld, a domain.Actor, sessionID, assignmentID, feedbackID string) error
	whenClosed string // the slug once the session is closed ("" when it is accepted)
}

func sessionCommands() []sessionCommand {
	team := []domain.Role{domain.RoleProvider}
	return []sessionCommand{
		{"activate", []domain.Role{domain.RoleProvider, domain.RoleSystemAdmin}, func(w *careWorld, a domain.Actor, s, _, _ string) error {
			_, err := w.care.ActivateSession(w.ctx, careMeta(a), commands.ActivateSession{SessionID: s})
			return err
		}, "session-not-scheduled"},
		{"reschedule", team, func(w *careWorld, a domain.Actor, s, _, _ string) error {
			_, err := w.care.RescheduleSession(w.ctx, careMeta(a), commands.RescheduleSession{SessionID: s, Start: careStart.Add(-time.Hour)})
			return err
		}, "session-closed"},
		{"cancel", team, func(w *careWorld, a domain.Actor, s, _, _ string) error {
			_, err := w.care.CancelSession(w.ctx, careMeta(a), commands.CancelSession{SessionID: s, Reason: "r"})
			return err
		}, "session-closed"},
		{"close", team, func(w *careWorld, a domain.Actor, s, _, _ string) error {
			_, err := w.care.CloseSession(w.ctx, careMeta(a), commands.CloseSession{SessionID: s, Reason: "r"})
			return err
		}, "session-closed"},
		{"assign", team, func(w *careWorld, a domain.Actor, s, _, _ string) error {
			_, err := w.care.AssignHomework(w.ctx, careMeta(a), commands.AssignHomework{SessionID: s, BookID: books.GAD7ID})
			return err
		}, "session-closed"},
		{"start", []domain.Role{domain.RoleClient}, func(w *careWorld, a domain.Actor, s, as, _ string) error {
			_, err := w.care.StartAssignment(w.ctx, careMeta(a), commands.StartAssignment{SessionID: s, AssignmentID: as})
			return err
		}, "session-closed"},
		{"complete", []domain.Role{domain.RoleClient}, func(w *careWorld, a domain.Actor, s, as, _ string) error {
			_, err := w.care.CompleteAssignment(w.ctx, careMeta(a), commands.CompleteAssignment{SessionID: s, AssignmentID: as, Answers: answersFor(books.PHQ9ID, 0)})
			return err
		}, "session-closed"},
		{"overdue", []domain.Role{domain.RoleProvider, domain.RoleSystemAdmin}, func(w *careWorld, a domain.Actor, s, as, _ string) error {
			_, err := w.care.MarkAssignmentOverdue(w.ctx, careMeta(a), commands.MarkAssignmentOverdue{SessionID: s, AssignmentID: as})
			return err
		}, "session-closed"},
		{"feedback", team, func(w *careWorld, a domain.Actor, s, as, _ string) error {
			_, err := w.care.GiveFeedback(w.ctx, careMeta(a), commands.GiveFeedback{SessionID: s, AssignmentID: as, Text: "t"})
			return err
		}, "session-closed"},
		{"comment", []domain.Role{domain.RoleProvider, domain.RoleClient}, func(w *careWorld, a domain.Actor, s, as, f string) error {
			_, err := w.care.CommentOnFeedback(w.ctx, careMeta(a), commands.CommentOnFeedback{SessionID: s, AssignmentID: as, FeedbackID: f, Text: "t"})
			return err
		}, "session-closed"},
		{"message", []domain.Role{domain.RoleProvider, domain.RoleClient}, func(w *careWorld, a domain.Actor, s, _, _ string) error {
			_, err := w.care.PostMessage(w.ctx, careMeta(a), commands.PostMessage{SessionID: s, Text: "t"})
			return err
		}, "session-closed"},
		{"discussion", team, func(w *careWorld, a domain.Actor, s, _, _ string) error {
			_, err := w.care.PostDiscussion(w.ctx, careMeta(a), commands.PostDiscussion{SessionID: s, Text: "t"})
			return err
		}, "session-closed"},
		{"note", team, func(w *careWorld, a domain.Actor, s, _, _ string) error {
			_, err := w.care.WriteNote(w.ctx, careMeta(a), commands.WriteNote{SessionID: s, Text: "t"})
			return err
		}, ""},
	}
}

// TestSessionCommandRefusals runs every session command against each kind
// of actor that may not issue it, and against a closed session.
func TestSessionCommandRefusals(t *testing.T) {
	w := newCareWorld(t)
	id, as := w.active(books.PHQ9ID)
	_, err := w.care.CompleteAssignment(w.ctx, careMeta(w.k1), commands.CompleteAssignment{SessionID: id, AssignmentID: as[0], Answers: answersFor(books.PHQ9ID, 0)})
	require.NoError(t, err)
	fb, err := w.care.GiveFeedback(w.ctx, careMeta(w.p1), commands.GiveFeedback{SessionID: id, AssignmentID: as[0], Text: "ok"})
	require.NoError(t, err)

	admin := domain.Actor{ID: "ca", Role: domain.RoleClinicAdmin}
	auditor := domain.Actor{ID: "au", Role: domain.RoleAuditor}
	for _, c := range sessionCommands() {
		t.Run(c.name, func(t *testing.T) {
			refuse := func(a domain.Actor, sessionID string, kind domain.Kind, slug string) {
				t.Helper()
				before := w.head()
				w.refusedIn(t, c.run(w, a, sessionID, as[0], fb.ID), before, kind, slug)
			}
			for _, a := range []domain.Actor{admin, auditor, w.k1, w.p1, {ID: "sys", Role: domain.RoleSystemAdmin}, {ID: "", Role: domain.RoleProvider}} {
				if a.ID != "" && containsRole(c.who, a.Role) {
					continue
				}
				refuse(a, id, domain.KindForbidden, "forbidden")
			}
			if containsRole(c.who, domain.RoleProvider) {
				refuse(w.p3, id, domain.KindForbidden, "not-on-care-team")
				refuse(w.p4, id, domain.KindNotFound, "session-not-found")
				refuse(w.p1, "no-such-session", domain.KindNotFound, "session-not-found")
			}
			if containsRole(c.who, domain.RoleClient) {
				refuse(w.k2, id, domain.KindNotFound, "session-not-found")
				refuse(w.k3, id, domain.KindNotFound, "session-not-found")
				refuse(w.k1, "", domain.KindNotFound, "session-not-found")
			}
		})
	}

	// Every command on a closed session.
	closed, closedAs := w.active(books.PHQ9ID)
	_, err = w.care.CompleteAssignment(w.ctx, careMeta(w.k1), commands.CompleteAssignment{SessionID: closed, AssignmentID: closedAs[0], Answers: answersFor(books.PHQ9ID, 0)})
	require.NoError(t, err)
	closedFb, err := w.care.GiveFeedback(w.ctx, careMeta(w.p1), commands.GiveFeedback{SessionID: closed, AssignmentID: closedAs[0], Text: "ok"})
	require.NoError(t, err)
	_, err = w.care.CloseSession(w.ctx, careMeta(w.p1), commands.CloseSession{SessionID: closed})
	require.NoError(t, err)
	for _, c := range sessionCommands() {
		t.Run(c.name+" closed", func(t *testing.T) {
			actor := w.p1
			if !containsRole(c.who, domain.RoleProvider) {
				actor = w.k1
			}
			before := w.head()
			err := c.run(w, actor, closed, closedAs[0], closedFb.ID)
			if c.whenClosed == "" {
				require.NoError(t, err, "%s is accepted after closing", c.name)
				return
			}
			w.refusedIn(t, err, before, domain.KindConflict, c.whenClosed)
		})
	}
}

func containsRole(roles []domain.Role, r domain.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}
