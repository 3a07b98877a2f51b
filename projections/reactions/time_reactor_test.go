package reactions

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/projections/notify"
)

func TestSessionActivatesAtItsStartExactlyOnce(t *testing.T) {
	w := newWorld(t)
	session := w.schedule()
	w.feed()

	w.clock.Set(careStart.Add(-time.Second))
	w.tick()
	assert.Empty(t, w.eventsOf(session, "session.activated"), "not before the start")

	w.clock.Set(careStart)
	w.tick()
	activated := w.eventsOf(session, "session.activated")
	require.Len(t, activated, 1)
	timer := w.timer(TimerActivateSession, session, "", 0)
	assert.Equal(t, TimerFired, timer.State)
	assert.Equal(t, "activated", timer.Outcome)
	assert.Equal(t, timer.ID, activated[0].Metadata.CommandID, "the command id is the timer id")
	assert.Equal(t, "system_admin", activated[0].Metadata.ActorRole)

	w.clock.Advance(time.Hour)
	w.tick()
	w.feed()
	w.tick()
	assert.Len(t, w.eventsOf(session, "session.activated"), 1, "a fired timer never fires again")
}

func TestRemindersAndOverdueFireOnceAlsoAcrossARestart(t *testing.T) {
	w := newWorld(t)
	session := w.schedule(2, 1)
	assignment := w.assignmentOf(session)
	w.feed()
	w.clock.Set(careStart)
	w.tick() // activates

	w.clock.Set(careEnd.Add(-2 * day))
	w.tick()
	reminders := w.notificationsOf(w.k1.ID)
	require.Len(t, reminders, 1)
	first := reminders[0]
	assert.Equal(t, notify.KindAssignmentReminder, first.Kind)
	assert.Equal(t, 2, first.ReminderDays)
	assert.Equal(t, assignment, first.AssignmentID)
	assert.Equal(t, careEnd, first.Due)

	w.restart()
	w.tick()
	assert.Len(t, w.notificationsOf(w.k1.ID), 1, "the fired reminder survives the restart and does not fire again")

	w.clock.Set(careEnd.Add(-day))
	w.tick()
	reminders = w.notificationsOf(w.k1.ID)
	require.Len(t, reminders, 2)
	assert.Equal(t, 1, reminders[0].ReminderDays)

	w.clock.Set(careEnd)
	w.tick()
	assert.Empty(t, w.eventsOf(session, "assignment.overdue"), "due is not past due yet")

	w.clock.Set(careEnd.Add(time.Second))
	w.restart()
	w.tick()
	w.restart()
	w.tick()
	overdue := w.eventsOf(session, "assignment.overdue")
	require.Len(t, overdue, 1)
	assert.Equal(t, TimerID(TimerAssignmentOverdue, session, assignment, 0), overdue[0].Metadata.CommandID)
	assert.Equal(t, TimerFired, w.timer(TimerAssignmentOverdue, session, assignment, 0).State)

	// The overdue event reaches the reactor too: nothing changes.
	w.feed()
	w.tick()
	assert.Len(t, w.eventsOf(session, "assignment.overdue"), 1)
	assert.Len(t, w.notificationsOf(w.k1.ID), 2)
}

func TestACrashAfterTheCommandReissuesTheSameCommandID(t *testing.T) {
	w := newWorld(t)
	session := w.schedule()
	w.feed()
	w.clock.Set(careStart)

	crashing, err := NewTimeReactor(TimeReactorConfig{
		Deps: w.deps, Care: w.care, Timers: &failingFinish{TimerStore: w.r.timers},
		Notifications: w.r.notifications, Clock: w.clock.Now,
	})
	require.NoError(t, err)
	_, err = crashing.Tick(w.ctx)
	require.ErrorIs(t, err, errCrash)
	require.Len(t, w.eventsOf(session, "session.activated"), 1, "the command went through")
	assert.Equal(t, TimerPending, w.timer(TimerActivateSession, session, "", 0).State, "but the timer was not marked")

	w.restart()
	w.tick()
	assert.Len(t, w.eventsOf(session, "session.activated"), 1, "the store deduped the re-issued command id")
	timer := w.timer(TimerActivateSession, session, "", 0)
	assert.Equal(t, TimerFired, timer.State)
	assert.Equal(t, "duplicate", timer.Outcome)
}

func TestRescheduleMovesTheTimers(t *testing.T) {
	w := newWorld(t)
	session := w.schedule(1)
	assignment := w.assignmentOf(session)
	w.feed()
	_, err := w.care.RescheduleSession(w.ctx, commands.Meta{Actor: w.p1}, commands.RescheduleSession{SessionID: session, Start: careStart.Add(2 * day)})
	require.NoError(t, err)
	w.feed()

	assert.Equal(t, careStart.Add(2*day), w.timer(TimerActivateSession, session, "", 0).Due)
	assert.Equal(t, careEnd.Add(2*day).Add(-day), w.timer(TimerAssignmentReminder, session, assignment, 1).Due)
	assert.Equal(t, careEnd.Add(2*day).Add(time.Nanosecond), w.timer(TimerAssignmentOverdue, session, assignment, 0).Due)

	w.clock.Set(careStart.Add(day))
	w.tick()
	assert.Empty(t, w.eventsOf(session, "session.activated"), "not at the old start")
	w.clock.Set(careStart.Add(2 * day))
	w.tick()
	assert.Len(t, w.eventsOf(session, "session.activated"), 1)
}

func TestAnEarlyTimerIsMovedToWhatTheSessionSays(t *testing.T) {
	w := newWorld(t)
	session := w.schedule()
	w.feed()
	// A timer set from an event seen out of order (another topic): the
	// session in the store is the truth at firing time.
	early := w.timer(TimerActivateSession, session, "", 0)
	early.Due = careStart.Add(-12 * time.Hour)
	_, err := w.db.ExecContext(w.ctx, `UPDATE reaction_timers SET due_at = ? WHERE id = ?`, early.Due.UnixNano(), early.ID)
	require.NoError(t, err)

	w.clock.Set(careStart.Add(-6 * time.Hour))
	assert.Zero(t, w.tick())
	assert.Empty(t, w.eventsOf(session, "session.activated"))
	moved := w.timer(TimerActivateSession, session, "", 0)
	assert.Equal(t, TimerPending, moved.State)
	assert.Equal(t, careStart, moved.Due)
}

func TestCompletionCancelsTheAssignmentsTimers(t *testing.T) {
	w := newWorld(t)
	session := w.schedule(3, 1)
	assignment := w.assignmentOf(session)
	w.feed()
	w.clock.Set(careStart)
	w.tick()
	w.completePHQ9(session, assignment, 0)
	w.feed()

	for _, tm := range []Timer{
		w.timer(TimerAssignmentReminder, session, assignment, 3),
		w.timer(TimerAssignmentReminder, session, assignment, 1),
		w.timer(TimerAssignmentOverdue, session, assignment, 0),
	} {
		assert.Equal(t, TimerCancelled, tm.State, tm.Kind)
	}
	w.clock.Set(careEnd.Add(day))
	w.tick()
	assert.Empty(t, w.eventsOf(session, "assignment.overdue"))
	assert.Empty(t, w.notificationsOf(w.k1.ID))
}

func TestCancelledSessionFiresNothing(t *testing.T) {
	w := newWorld(t)
	session := w.schedule(1)
	w.feed()
	_, err := w.care.CancelSession(w.ctx, commands.Meta{Actor: w.p1}, commands.CancelSession{SessionID: session, Reason: "moved away"})
	require.NoError(t, err)
	w.feed()

	w.clock.Set(careEnd.Add(day))
	w.tick()
	assert.Empty(t, w.eventsOf(session, "session.activated"))
	assert.Empty(t, w.eventsOf(session, "assignment.overdue"))
	assert.Empty(t, w.notificationsOf(w.k1.ID))
}

func TestATimerTheSessionOutdatedFinishesWithoutACommand(t *testing.T) {
	w := newWorld(t)
	session := w.schedule()
	// The cancellation is not fed: the reactor still has the timer pending.
	w.feed()
	_, err := w.care.CancelSession(w.ctx, commands.Meta{Actor: w.p1}, commands.CancelSession{SessionID: session, Reason: "moved away"})
	require.NoError(t, err)

	w.clock.Set(careStart)
	assert.Equal(t, 1, w.tick())
	timer := w.timer(TimerActivateSession, session, "", 0)
	assert.Equal(t, TimerFired, timer.State)
	assert.True(t, strings.HasPrefix(timer.Outcome, "obsolete"), timer.Outcome)
	assert.Empty(t, w.eventsOf(session, "session.activated"))
}

func TestAReminderBeforeTheAssignmentWasGivenIsNotSet(t *testing.T) {
	w := newWorld(t)
	// Given a day before the start, due a week later: 30 days before due
	// is before it was given.
	session := w.schedule(30, 2)
	assignment := w.assignmentOf(session)
	w.feed()
	_, err := w.r.Timers().Get(w.ctx, TimerID(TimerAssignmentReminder, session, assignment, 30))
	assert.ErrorIs(t, err, ErrTimerNotFound)
	assert.Equal(t, TimerPending, w.timer(TimerAssignmentReminder, session, assignment, 2).State)
}

func TestAFailingFiringIsHeldBackAndRetried(t *testing.T) {
	w := newWorld(t)
	session := w.schedule()
	w.feed()
	broken := &flakyCare{CareCommands: w.care, failures: 1}
	reactor, err := NewTimeReactor(TimeReactorConfig{
		Deps: w.deps, Care: broken, Timers: w.r.timers, Notifications: w.r.notifications, Clock: w.clock.Now,
		RetryDelay: time.Minute,
	})
	require.NoError(t, err)
	w.clock.Set(careStart)

	_, err = reactor.Tick(w.ctx)
	require.Error(t, err)
	held := w.timer(TimerActivateSession, session, "", 0)
	assert.Equal(t, TimerPending, held.State)
	assert.Equal(t, 1, held.Failures)
	assert.Equal(t, careStart.Add(time.Minute), held.NotBefore)

	_, err = reactor.Tick(w.ctx)
	require.NoError(t, err)
	assert.Empty(t, w.eventsOf(session, "session.activated"), "held back until NotBefore")

	w.clock.Advance(time.Minute)
	_, err = reactor.Tick(w.ctx)
	require.NoError(t, err)
	assert.Len(t, w.eventsOf(session, "session.activated"), 1)
}

func TestRunFiresWhenNudgedWithTheFakeClock(t *testing.T) {
	w := newWorld(t)
	session := w.schedule()
	w.feed()
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- w.r.TimeReactor().Run(ctx) }()

	w.clock.Set(careStart)
	w.r.TimeReactor().Nudge()
	require.Eventually(t, func() bool { return len(w.eventsOf(session, "session.activated")) == 1 }, waitBound, 5*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(waitBound):
		t.Fatal("Run did not stop")
	}
	assert.Len(t, w.eventsOf(session, "session.activated"), 1)
}

func TestTimerApplyIgnoresOlderEvents(t *testing.T) {
	w := newWorld(t)
	session := w.schedule()
	w.feed()
	id := TimerID(TimerActivateSession, session, "", 0)
	// Version 1 set it; a stale repeat of version 1 with another time
	// changes nothing, version 5 moves it.
	require.NoError(t, w.r.timers.Set(w.ctx, w.db, 1, Timer{ID: id, Kind: TimerActivateSession, SessionID: session, Due: careStart.Add(day)}))
	assert.Equal(t, careStart, w.timer(TimerActivateSession, session, "", 0).Due)
	require.NoError(t, w.r.timers.Set(w.ctx, w.db, 5, Timer{ID: id, Kind: TimerActivateSession, SessionID: session, Due: careStart.Add(day)}))
	assert.Equal(t, careStart.Add(day), w.timer(TimerActivateSession, session, "", 0).Due)
	require.NoError(t, w.r.timers.Cancel(w.ctx, w.db, 4, session, ""))
	assert.Equal(t, TimerPending, w.timer(TimerActivateSession, session, "", 0).State, "an older cancel loses")
	require.NoError(t, w.r.timers.Cancel(w.ctx, w.db, 6, session, ""))
	assert.Equal(t, TimerCancelled, w.timer(TimerActivateSession, session, "", 0).State)
	require.NoError(t, w.r.timers.Set(w.ctx, w.db, 7, Timer{ID: id, Kind: TimerActivateSession, SessionID: session, Due: careStart}))
	assert.Equal(t, TimerCancelled, w.timer(TimerActivateSession, session, "", 0).State, "a cancelled timer stays cancelled")
}

// flakyCare fails the first failures commands with an infrastructure
// error.
type flakyCare struct {
	CareCommands
	failures int
}

func (f *flakyCare) ActivateSession(ctx context.Context, m commands.Meta, cmd commands.ActivateSession) (commands.Result, error) {
	if f.failures > 0 {
		f.failures--
		return commands.Result{}, context.DeadlineExceeded
	}
	return f.CareCommands.ActivateSession(ctx, m, cmd)
}

func TestNotYetFromTheCommandClockIsRetriedNotDropped(t *testing.T) {
	w := newWorld(t)
	session := w.schedule()
	w.feed()
	// The reactor's clock runs a little ahead of the command handlers'.
	ahead := &fakeClock{now: careStart}
	reactor, err := NewTimeReactor(TimeReactorConfig{
		Deps: w.deps, Care: w.care, Timers: w.r.timers, Notifications: w.r.notifications, Clock: ahead.Now,
		RetryDelay: time.Second,
	})
	require.NoError(t, err)
	w.clock.Set(careStart.Add(-time.Second))

	_, err = reactor.Tick(w.ctx)
	require.Error(t, err)
	held := w.timer(TimerActivateSession, session, "", 0)
	assert.Equal(t, TimerPending, held.State, "session-not-started does not finish the timer")
	assert.Equal(t, 1, held.Failures)

	w.clock.Set(careStart.Add(time.Second))
	ahead.Set(careStart.Add(time.Second))
	_, err = reactor.Tick(w.ctx)
	require.NoError(t, err)
	assert.Len(t, w.eventsOf(session, "session.activated"), 1)
}
