package reactions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections/bus"
	"github.com/careflow/careflow/projections/notify"
)

// ConsumerTimeReactor is the bus consumer (and inbox) name of the time
// reactor.
const ConsumerTimeReactor = "time_reactor"

// DefaultSystemActorID is the actor id the time reactor's commands carry.
const DefaultSystemActorID = "careflow-time-reactor"

// CareCommands are the commands the time reactor issues; *commands.Care
// implements them.
type CareCommands interface {
	ActivateSession(ctx context.Context, m commands.Meta, cmd commands.ActivateSession) (commands.Result, error)
	MarkAssignmentOverdue(ctx context.Context, m commands.Meta, cmd commands.MarkAssignmentOverdue) (commands.Result, error)
}

// TimeReactorConfig is what a TimeReactor needs.
type TimeReactorConfig struct {
	// Deps reads sessions (Store, Codec); its Clock is not used.
	Deps          commands.Deps
	Care          CareCommands
	Timers        TimerStore
	Notifications *notify.Store
	// Clock decides when timers are due. Tests pass a fake one.
	Clock func() time.Time
	// SystemActorID is the id of the system_admin actor the commands
	// carry. Defaults to DefaultSystemActorID.
	SystemActorID string
	// MaxWait bounds how long Run sleeps between checks, so timers set by
	// another process are found too. Defaults to a minute.
	MaxWait time.Duration
	// RetryDelay is the first hold-back after a failed firing; it doubles
	// per failure up to an hour. Defaults to 5s.
	RetryDelay time.Duration
	Logger     *slog.Logger
	// Fired, when set, is called after a firing recorded notifications
	// (so they can be delivered at once).
	Fired func()
}

// TimeReactor turns session and assignment events into durable timers and
// fires them by the injected clock: at a session's start it issues
// ActivateSession, before an assignment's due date it records reminders
// for the client, and after it MarkAssignmentOverdue.
//
// A timer fires once: a firing command's id is the timer id, so a crash
// after the command but before the timer is marked fired issues the same
// command id again and the store answers it as a duplicate; a reminder's
// notification id is derived from the timer id, so it is added once.
// Before firing, the session is read from the store: a timer that the
// session's state has made early (a reschedule it has not seen yet) is
// moved instead of fired.
type TimeReactor struct {
	cfg   TimeReactorConfig
	nudge chan struct{}
}

// NewTimeReactor checks cfg.
func NewTimeReactor(cfg TimeReactorConfig) (*TimeReactor, error) {
	var errs []error
	if cfg.Deps.Store == nil || cfg.Deps.Codec == nil {
		errs = append(errs, errors.New("reactions: time reactor needs a store and a codec"))
	}
	if cfg.Care == nil {
		errs = append(errs, errors.New("reactions: time reactor needs the care commands"))
	}
	if cfg.Timers == nil {
		errs = append(errs, errors.New("reactions: time reactor needs a timer store"))
	}
	if cfg.Notifications == nil {
		errs = append(errs, errors.New("reactions: time reactor needs the notification store"))
	}
	if cfg.Clock == nil {
		errs = append(errs, errors.New("reactions: time reactor needs a clock"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.SystemActorID == "" {
		cfg.SystemActorID = DefaultSystemActorID
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = time.Minute
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &TimeReactor{cfg: cfg, nudge: make(chan struct{}, 1)}, nil
}

// Handler is the bus handler for the careflow.session and
// careflow.assignment topics: it sets and cancels timers in the inbox's
// transaction, so each event changes the timers exactly once.
func (r *TimeReactor) Handler(inbox *bus.Inbox) message.NoPublishHandlerFunc {
	handle := inbox.HandleTx(ConsumerTimeReactor, func(ctx context.Context, tx *sql.Tx, msg *message.Message) error {
		e, err := bus.Decode(msg)
		if err != nil {
			return err
		}
		return r.Apply(ctx, tx, e)
	})
	return func(msg *message.Message) error {
		if ignores(timeReactorEvents, msg) {
			return nil
		}
		if err := handle(msg); err != nil {
			return err
		}
		r.Nudge()
		return nil
	}
}

// timeReactorEvents are the event types Apply acts on. The handler
// acknowledges the others without a transaction: most events of a session
// set no timer, and an inbox row and a commit each was 2% of the service's
// CPU under a command load. TestReactorsIgnoreOnlyEventsApplyIgnores keeps
// this list and Apply together.
var timeReactorEvents = eventTypes(care.SessionScheduled{}, care.SessionRescheduled{}, care.SessionActivated{},
	care.SessionCancelled{}, care.SessionClosed{}, care.AssignmentGiven{}, care.AssignmentCompleted{},
	care.AssignmentOverdue{})

// Apply sets or cancels the timers event e calls for, through q.
func (r *TimeReactor) Apply(ctx context.Context, q Querier, e eventstore.RecordedEvent) error {
	if e.Stream.Type != care.StreamType {
		return nil
	}
	v, err := r.cfg.Deps.Codec.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return fmt.Errorf("reactions: decode %s at %d: %w", e.Type, e.Position, err)
	}
	timers := r.cfg.Timers
	switch ev := v.(type) {
	case care.SessionScheduled:
		return timers.Set(ctx, q, e.Version, Timer{
			ID: TimerID(TimerActivateSession, ev.SessionID, "", 0), Kind: TimerActivateSession,
			ClinicID: ev.ClinicID, ClientID: ev.ClientID, SessionID: ev.SessionID, Due: ev.Start,
		})
	case care.SessionRescheduled:
		if err := timers.Set(ctx, q, e.Version, Timer{
			ID: TimerID(TimerActivateSession, ev.SessionID, "", 0), Kind: TimerActivateSession,
			ClinicID: e.Metadata.ClinicID, ClientID: ev.ClientID, SessionID: ev.SessionID, Due: ev.Start,
		}); err != nil {
			return err
		}
		for _, move := range ev.Dues {
			pending, err := timers.Pending(ctx, q, ev.SessionID, move.AssignmentID)
			if err != nil {
				return err
			}
			for i := range pending {
				pending[i].Due = timerDue(pending[i].Kind, move.Due, pending[i].ReminderDays)
			}
			if err := timers.Set(ctx, q, e.Version, pending...); err != nil {
				return err
			}
		}
		return nil
	case care.SessionActivated:
		return timers.Cancel(ctx, q, e.Version, ev.SessionID, "", TimerActivateSession)
	case care.SessionCancelled:
		return timers.Cancel(ctx, q, e.Version, ev.SessionID, "")
	case care.SessionClosed:
		return timers.Cancel(ctx, q, e.Version, ev.SessionID, "")
	case care.AssignmentGiven:
		set := []Timer{{
			ID: TimerID(TimerAssignmentOverdue, ev.SessionID, ev.AssignmentID, 0), Kind: TimerAssignmentOverdue,
			ClinicID: e.Metadata.ClinicID, ClientID: ev.ClientID, SessionID: ev.SessionID, AssignmentID: ev.AssignmentID,
			Due: timerDue(TimerAssignmentOverdue, ev.Due, 0),
		}}
		for _, days := range ev.ReminderDays {
			due := timerDue(TimerAssignmentReminder, ev.Due, days)
			if due.Before(ev.At) {
				continue // a reminder before the assignment existed reminds of nothing
			}
			set = append(set, Timer{
				ID: TimerID(TimerAssignmentReminder, ev.SessionID, ev.AssignmentID, days), Kind: TimerAssignmentReminder,
				ClinicID: e.Metadata.ClinicID, ClientID: ev.ClientID, SessionID: ev.SessionID, AssignmentID: ev.AssignmentID,
				ReminderDays: days, Due: due,
			})
		}
		return timers.Set(ctx, q, e.Version, set...)
	case care.AssignmentCompleted:
		return timers.Cancel(ctx, q, e.Version, ev.SessionID, ev.AssignmentID)
	case care.AssignmentOverdue:
		return timers.Cancel(ctx, q, e.Version, ev.SessionID, ev.AssignmentID, TimerAssignmentOverdue)
	}
	return nil
}

// timerDue is when a timer of kind fires for an assignment due at due.
// Overdue fires the first instant after due: MarkOverdue wants now after
// the due date.
func timerDue(kind TimerKind, due time.Time, reminderDays int) time.Time {
	switch kind {
	case TimerAssignmentOverdue:
		return due.Add(time.Nanosecond)
	case TimerAssignmentReminder:
		return due.Add(-time.Duration(reminderDays) * 24 * time.Hour)
	default:
		return due
	}
}

// Nudge makes Run look at the timers now (after new ones were set).
func (r *TimeReactor) Nudge() {
	select {
	case r.nudge <- struct{}{}:
	default:
	}
}

// tickBatch is how many due timers one read takes.
const tickBatch = 100

// Tick fires every timer due by the clock and returns how many it
// finished. A timer whose firing failed is held back and retried later;
// the failures are returned joined.
func (r *TimeReactor) Tick(ctx context.Context) (int, error) {
	now := r.cfg.Clock()
	finished := 0
	notified := false
	var failures []error
	for {
		due, err := r.cfg.Timers.Due(ctx, now, tickBatch)
		if err != nil {
			return finished, errors.Join(append(failures, err)...)
		}
		if len(due) == 0 {
			break
		}
		for _, t := range due {
			outcome, err := r.fire(ctx, t, now)
			switch {
			case err != nil:
				failures = append(failures, fmt.Errorf("reactions: timer %s (%s): %w", t.ID, t.Kind, err))
				if err := r.cfg.Timers.Defer(ctx, t.ID, now.Add(r.retryDelay(t.Failures))); err != nil {
					return finished, errors.Join(append(failures, err)...)
				}
			case outcome == "":
				// moved to a later due time
			default:
				if err := r.cfg.Timers.Finish(ctx, t.ID, now, outcome); err != nil {
					return finished, errors.Join(append(failures, err)...)
				}
				finished++
				notified = notified || outcome == outcomeReminded
			}
		}
	}
	if notified && r.cfg.Fired != nil {
		r.cfg.Fired()
	}
	for _, err := range failures {
		r.cfg.Logger.Warn("timer firing failed; retrying later", "error", err)
	}
	return finished, errors.Join(failures...)
}

func (r *TimeReactor) retryDelay(failures int) time.Duration {
	d := r.cfg.RetryDelay
	for i := 0; i < failures && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

const (
	outcomeActivated = "activated"
	outcomeOverdue   = "marked-overdue"
	outcomeReminded  = "reminded"
	outcomeDuplicate = "duplicate"
)

// fire does what t is for. It returns the outcome to finish t with, ""
// when it moved t to a later time instead, or an error to retry later.
func (r *TimeReactor) fire(ctx context.Context, t Timer, now time.Time) (string, error) {
	s, err := commands.Load(ctx, r.cfg.Deps, eventstore.NewStreamID(care.StreamType, t.SessionID), care.New)
	if err != nil {
		return "", err
	}
	if !s.Exists() {
		return "obsolete: session not found", nil
	}
	view := s.View()
	if view.State == care.StateClosed || view.State == care.StateCancelled {
		return "obsolete: session " + string(view.State), nil
	}
	meta := commands.Meta{
		Actor:         domain.Actor{ID: r.cfg.SystemActorID, Role: domain.RoleSystemAdmin},
		CommandID:     t.ID,
		CorrelationID: t.ID,
	}
	if t.Kind == TimerActivateSession {
		if view.Start.After(now) {
			return "", r.cfg.Timers.Move(ctx, t.ID, view.Start)
		}
		res, err := r.cfg.Care.ActivateSession(ctx, meta, commands.ActivateSession{SessionID: t.SessionID})
		return commandOutcome(res, err, outcomeActivated)
	}

	var a *care.AssignmentView
	for i := range view.Assignments {
		if view.Assignments[i].ID == t.AssignmentID {
			a = &view.Assignments[i]
		}
	}
	if a == nil {
		return "obsolete: assignment not found", nil
	}
	if at := timerDue(t.Kind, a.Due, t.ReminderDays); at.After(now) {
		return "", r.cfg.Timers.Move(ctx, t.ID, at)
	}
	switch t.Kind {
	case TimerAssignmentOverdue:
		res, err := r.cfg.Care.MarkAssignmentOverdue(ctx, meta, commands.MarkAssignmentOverdue{SessionID: t.SessionID, AssignmentID: t.AssignmentID})
		return commandOutcome(res, err, outcomeOverdue)
	case TimerAssignmentReminder:
		if a.Status == care.AssignmentCompletedStatus {
			return "obsolete: assignment completed", nil
		}
		if now.After(a.Due) {
			return "obsolete: already past due", nil
		}
		_, err := r.cfg.Notifications.Add(ctx, r.cfg.Notifications.DB(), notify.Notification{
			ID:          notify.DeriveID(notify.KindAssignmentReminder, view.ClientID, t.ID),
			RecipientID: view.ClientID, Kind: notify.KindAssignmentReminder,
			ClinicID: view.ClinicID, ClientID: view.ClientID, SessionID: view.ID,
			AssignmentID: a.ID, BookID: a.BookID, ReminderDays: t.ReminderDays, Due: a.Due,
			CreatedAt: now,
		})
		if err != nil {
			return "", err
		}
		return outcomeReminded, nil
	}
	return "obsolete: unknown timer kind " + string(t.Kind), nil
}

// commandOutcome turns a command's answer into a timer outcome: a refusal
// by the domain (the state moved on) finishes the timer; "not yet" (the
// command handlers' clock behind the reactor's) and anything else failing
// is retried.
func commandOutcome(res commands.Result, err error, done string) (string, error) {
	if err != nil {
		var de *domain.Error
		notYet := errors.As(err, &de) && (de.Slug == "session-not-started" || de.Slug == "assignment-not-due")
		if !notYet && de != nil && (de.Kind == domain.KindConflict || de.Kind == domain.KindNotFound) {
			return "refused: " + de.Slug, nil
		}
		return "", err
	}
	if res.Duplicate {
		return outcomeDuplicate, nil
	}
	return done, nil
}

// Run fires timers until ctx ends: at each one's due time by the clock,
// when nudged, and at least every MaxWait. It returns ctx.Err().
func (r *TimeReactor) Run(ctx context.Context) error {
	for {
		_, tickErr := r.Tick(ctx)
		if tickErr != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("time reactor tick failed", "error", tickErr)
		}
		wait := r.cfg.MaxWait
		if next, ok, err := r.cfg.Timers.Next(ctx); err == nil && ok {
			wait = min(max(next.Sub(r.cfg.Clock()), 0), r.cfg.MaxWait)
		}
		if tickErr != nil {
			// Failed timers are held back; a failing database is not
			// polled in a hot loop.
			wait = max(wait, r.cfg.RetryDelay)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-r.nudge:
			timer.Stop()
		case <-timer.C:
		}
	}
}
