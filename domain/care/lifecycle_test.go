package care_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
)

func spec(t *testing.T, start time.Time, reminders ...int) care.Spec {
	t.Helper()
	p, err := care.NewPeriod(start, 0)
	require.NoError(t, err)
	r, err := care.NewReminders(reminders)
	require.NoError(t, err)
	s, err := care.NewSpec(care.SpecInput{
		ClinicID: "clinic-1", ClientID: client.ID, ProviderID: provider.ID, ScheduledBy: provider.ID,
		Title: "  Week 1 ", Description: "Getting started", Period: p, Reminders: r,
	})
	require.NoError(t, err)
	return s
}

func TestScheduleRecordsSessionAndHomework(t *testing.T) {
	s := care.New()
	now := t0.Add(-24 * time.Hour)
	err := s.Schedule("s-1", spec(t, t0, 2, 1), []care.Homework{{AssignmentID: "a-1", Book: phq9()}}, now)
	require.NoError(t, err)

	want := scheduled()
	want.Description, want.ReminderDays, want.At = "Getting started", []int{2, 1}, now
	give := given("a-1", phq9())
	give.ReminderDays, give.At = []int{2, 1}, now
	requireRecorded(t, s, nil, want, give)
	assert.Equal(t, care.StateScheduled, s.State())
}

func TestScheduleRefusesAnExistingSession(t *testing.T) {
	s := givenSession(scheduled())
	requireRefused(t, s.Schedule("s-1", spec(t, t0), nil, t0), domain.KindConflict, "session-exists")
}

func TestScheduleRefusesASessionThatIsAlreadyOver(t *testing.T) {
	s := care.New()
	requireRefused(t, s.Schedule("s-1", spec(t, t0), nil, t0.Add(week)), domain.KindValidation, "session-in-past")
	assert.Empty(t, s.Pending())
}

func TestScheduleAcceptsAStartThatHasJustPassed(t *testing.T) {
	s := care.New()
	require.NoError(t, s.Schedule("s-1", spec(t, t0), nil, t0.Add(time.Hour)))
}

func TestScheduleRefusesHomeworkDueOutsideTheSession(t *testing.T) {
	s := care.New()
	err := s.Schedule("s-1", spec(t, t0), []care.Homework{{AssignmentID: "a-1", Book: phq9(), Due: t0.Add(2 * week)}}, t0)
	requireRefused(t, err, domain.KindValidation, "due-outside-session")
}

func TestActivateAtStart(t *testing.T) {
	history := []domain.Event{scheduled()}
	s := givenSession(history...)
	require.NoError(t, s.Activate(t0))
	requireRecorded(t, s, history, activated())
	assert.Equal(t, care.StateActive, s.State())
}

func TestActivateRefusesBeforeStart(t *testing.T) {
	s := givenSession(scheduled())
	requireRefused(t, s.Activate(t0.Add(-time.Second)), domain.KindConflict, "session-not-started")
}

func TestActivateRefusesUnlessScheduled(t *testing.T) {
	requireRefused(t, givenSession(scheduled(), activated()).Activate(t0), domain.KindConflict, "session-not-scheduled")
	requireRefused(t, givenSession(scheduled(), cancelled()).Activate(t0), domain.KindConflict, "session-not-scheduled")
	requireRefused(t, care.New().Activate(t0), domain.KindNotFound, "session-not-found")
}

func TestRescheduleMovesOpenAssignmentsWithTheSession(t *testing.T) {
	history := []domain.Event{scheduled(), given("a-1", phq9())}
	s := givenSession(history...)
	p, _ := care.NewPeriod(t0.Add(week), 0)
	require.NoError(t, s.Reschedule(p, peer.ID, t0.Add(-time.Hour)))
	requireRecorded(t, s, history, care.SessionRescheduled{
		SessionID: "s-1", ClientID: client.ID, By: peer.ID, PreviousStart: t0, PreviousEnd: t0.Add(week),
		Start: t0.Add(week), End: t0.Add(2 * week),
		Dues: []care.DueMove{{AssignmentID: "a-1", Due: t0.Add(2 * week)}}, At: t0.Add(-time.Hour),
	})
}

func TestRescheduleKeepsCompletedAssignmentsAndClampsOpenOnes(t *testing.T) {
	history := []domain.Event{scheduled(), activated(), given("a-1", gad7()), given("a-2", gad7()), completed("a-1")}
	s := givenSession(history...)
	p, _ := care.NewPeriod(t0, 3*24*time.Hour) // shortened: a-2 was due at the old end
	require.NoError(t, s.Reschedule(p, provider.ID, t0.Add(time.Hour)))
	e := s.Pending()[0].(care.SessionRescheduled)
	assert.Equal(t, []care.DueMove{{AssignmentID: "a-2", Due: t0.Add(3 * 24 * time.Hour)}}, e.Dues)
	a1, _ := s.Assignment("a-1")
	assert.Equal(t, t0.Add(week), a1.Due, "a completed assignment keeps its due date")
}

func TestRescheduleRefusesAnActiveSessionsStartInTheFuture(t *testing.T) {
	s := givenSession(scheduled(), activated())
	p, _ := care.NewPeriod(t0.Add(2*time.Hour), 0)
	requireRefused(t, s.Reschedule(p, provider.ID, t0.Add(time.Hour)), domain.KindValidation, "start-after-activation")
}

func TestRescheduleRefusesAPeriodThatIsOver(t *testing.T) {
	s := givenSession(scheduled())
	p, _ := care.NewPeriod(t0.Add(-2*week), 0)
	requireRefused(t, s.Reschedule(p, provider.ID, t0), domain.KindValidation, "session-in-past")
	requireRefused(t, s.Reschedule(care.Period{}, provider.ID, t0), domain.KindValidation, "start-required")
}

func TestRescheduleToTheSamePeriodRecordsNothing(t *testing.T) {
	s := givenSession(scheduled())
	p, _ := care.NewPeriod(t0, 0)
	require.NoError(t, s.Reschedule(p, provider.ID, t0.Add(-time.Hour)))
	assert.Empty(t, s.Pending())
}

func TestRescheduleRefusesClosedAndCancelledSessions(t *testing.T) {
	p, _ := care.NewPeriod(t0.Add(week), 0)
	requireRefused(t, givenSession(scheduled(), activated(), closed()).Reschedule(p, provider.ID, t0), domain.KindConflict, "session-closed")
	requireRefused(t, givenSession(scheduled(), cancelled()).Reschedule(p, provider.ID, t0), domain.KindConflict, "session-cancelled")
}

func TestCancelNeedsAReason(t *testing.T) {
	history := []domain.Event{scheduled()}
	s := givenSession(history...)
	requireRefused(t, s.Cancel(" ", provider.ID, t0), domain.KindValidation, "reason-required")
	require.NoError(t, s.Cancel("client unwell", provider.ID, t0.Add(time.Hour)))
	requireRecorded(t, s, history, cancelled())
	assert.Equal(t, care.StateCancelled, s.State())
}

func TestCancelAnActiveSession(t *testing.T) {
	s := givenSession(scheduled(), activated())
	require.NoError(t, s.Cancel("moved away", provider.ID, t0))
	assert.Equal(t, care.StateCancelled, s.State())
}

func TestCancelRefusesClosedAndCancelledSessions(t *testing.T) {
	requireRefused(t, givenSession(scheduled(), activated(), closed()).Cancel("x", provider.ID, t0), domain.KindConflict, "session-closed")
	requireRefused(t, givenSession(scheduled(), cancelled()).Cancel("x", provider.ID, t0), domain.KindConflict, "session-cancelled")
}

func TestCloseWhenEveryAssignmentIsCompletedWithFeedback(t *testing.T) {
	history := []domain.Event{scheduled(), activated(), given("a-1", gad7()), completed("a-1"), feedback("a-1", "f-1")}
	s := givenSession(history...)
	at := t0.Add(3 * time.Hour)
	require.NoError(t, s.Close("", provider.ID, at))
	requireRecorded(t, s, history, care.SessionClosed{SessionID: "s-1", ClientID: client.ID, By: provider.ID, At: at})
	assert.Equal(t, care.StateClosed, s.State())
}

func TestCloseASessionWithoutHomework(t *testing.T) {
	s := givenSession(scheduled(), activated())
	require.NoError(t, s.Close("", peer.ID, t0))
	assert.Equal(t, care.StateClosed, s.State())
}

func TestCloseWithOpenWorkNeedsAReason(t *testing.T) {
	history := []domain.Event{scheduled(), activated(), given("a-1", gad7()), given("a-2", gad7()), completed("a-1")}
	s := givenSession(history...)
	requireRefused(t, s.Close("", provider.ID, t0), domain.KindConflict, "session-has-open-work")

	require.NoError(t, s.Close("client asked to stop", provider.ID, t0.Add(time.Hour)))
	requireRecorded(t, s, history, care.SessionClosed{
		SessionID: "s-1", ClientID: client.ID, By: provider.ID, Reason: "client asked to stop", Early: true,
		OpenAssignments: []string{"a-1", "a-2"}, At: t0.Add(time.Hour),
	})
	assert.True(t, s.View().ClosedEarly)
}

func TestCloseRefusesASessionThatHasNotStarted(t *testing.T) {
	requireRefused(t, givenSession(scheduled()).Close("early", provider.ID, t0), domain.KindConflict, "session-not-active")
}

func TestCloseRefusesClosedAndCancelledSessions(t *testing.T) {
	requireRefused(t, givenSession(scheduled(), activated(), closed()).Close("x", provider.ID, t0), domain.KindConflict, "session-closed")
	requireRefused(t, givenSession(scheduled(), cancelled()).Close("x", provider.ID, t0), domain.KindConflict, "session-cancelled")
}

func TestAppliersDoNotValidate(t *testing.T) {
	// An event about an unknown assignment (as an old or odd stream might
	// hold) replays without effect instead of failing the load.
	s := givenSession(scheduled(), completed("ghost"), feedback("ghost", "f"))
	assert.Equal(t, 0, s.AssignmentCount())
	assert.Equal(t, int64(3), s.Version())
}

func TestRescheduleIntoTheRecentPastKeepsItScheduledAndActivatable(t *testing.T) {
	s := givenSession(scheduled())
	now := t0.Add(2 * time.Hour)
	p, _ := care.NewPeriod(t0.Add(time.Hour), 0)
	require.NoError(t, s.Reschedule(p, provider.ID, now))
	assert.Equal(t, care.StateScheduled, s.State())
	require.NoError(t, s.Activate(now))
	assert.Equal(t, care.StateActive, s.State())
}
