package care

import (
	"strings"
	"time"

	"github.com/careflow/careflow/domain"
)

// SpecInput is what a provider asks for when scheduling one session.
type SpecInput struct {
	ClinicID    string
	ClientID    string
	ProviderID  string // who holds the session
	ScheduledBy string
	Title       string
	Description string
	Period      Period
	Reminders   Reminders
	Series      *SeriesRef
	Plan        *PlanRef
}

// Spec is a validated SpecInput.
type Spec struct{ in SpecInput }

// NewSpec validates what a session is scheduled with.
func NewSpec(in SpecInput) (Spec, error) {
	var errs domain.ValidationErrors
	for _, id := range []struct{ field, value string }{
		{"clinicId", in.ClinicID}, {"clientId", in.ClientID}, {"providerId", in.ProviderID}, {"scheduledBy", in.ScheduledBy},
	} {
		if strings.TrimSpace(id.value) == "" {
			errs = append(errs, domain.Validation(id.field+"-required", id.field, "%s is required", id.field))
		}
	}
	var err error
	if in.Title, err = text("title", in.Title, true, MaxTitle); err != nil {
		errs = append(errs, err.(*domain.Error))
	}
	if in.Description, err = text("description", in.Description, false, maxDescription); err != nil {
		errs = append(errs, err.(*domain.Error))
	}
	if in.Period.IsZero() {
		errs = append(errs, domain.Validation("start-required", "start", "a session needs a start time"))
	}
	if err := errs.Err(); err != nil {
		return Spec{}, err
	}
	in.Series, in.Plan = cloneRef(in.Series), cloneRef(in.Plan)
	return Spec{in: in}, nil
}

// Schedule records a new session with id, and gives it its homework (each
// due at the session's end unless it says otherwise). The session must not
// be over already at now; it may start in the past (it then activates at
// once) or far ahead.
func (s *Session) Schedule(id string, spec Spec, homework []Homework, now time.Time) error {
	if s.Exists() {
		return domain.Conflict("session-exists", "session %s is already scheduled", s.st.ID)
	}
	if strings.TrimSpace(id) == "" {
		return domain.Validation("session-id-required", "sessionId", "a session needs an id")
	}
	if spec.in.ClientID == "" {
		return domain.Validation("spec-required", "spec", "a session needs a validated spec")
	}
	now = instant(now)
	p := spec.in.Period
	if !p.End().After(now) {
		return domain.Validation("session-in-past", "start", "the session would end at %s, which has passed", p.End().Format(time.RFC3339))
	}
	s.record(SessionScheduled{
		SessionID: id, ClinicID: spec.in.ClinicID, ClientID: spec.in.ClientID, ProviderID: spec.in.ProviderID,
		ScheduledBy: spec.in.ScheduledBy, Title: spec.in.Title, Description: spec.in.Description,
		Start: p.Start(), End: p.End(), ReminderDays: spec.in.Reminders.Days(),
		Series: cloneRef(spec.in.Series), Plan: cloneRef(spec.in.Plan), At: now,
	})
	for _, h := range homework {
		if h.Reminders.days == nil {
			h.Reminders = spec.in.Reminders
		}
		if err := s.Assign(h, spec.in.ScheduledBy, now); err != nil {
			return err
		}
	}
	return nil
}

// Activate makes a scheduled session active once its start has come.
func (s *Session) Activate(now time.Time) error {
	if err := s.mustExist(); err != nil {
		return err
	}
	if s.st.State != StateScheduled {
		return domain.Conflict("session-not-scheduled", "session %s is %s; only a scheduled session activates", s.st.ID, s.st.State)
	}
	now = instant(now)
	if now.Before(s.st.Start) {
		return domain.Conflict("session-not-started", "session %s starts at %s", s.st.ID, s.st.Start.Format(time.RFC3339))
	}
	s.record(SessionActivated{SessionID: s.st.ID, ClientID: s.st.ClientID, At: now})
	return nil
}

// Reschedule moves a session that is neither closed nor cancelled. A
// scheduled session may move anywhere that does not end in the past; an
// active one has started, so its start may not move past now. Assignments
// not yet completed move by the same shift as the start, kept inside the
// new period.
func (s *Session) Reschedule(p Period, by string, now time.Time) error {
	if err := s.mustBeOpen(); err != nil {
		return err
	}
	if p.IsZero() {
		return domain.Validation("start-required", "start", "a session needs a start time")
	}
	now = instant(now)
	if !p.End().After(now) {
		return domain.Validation("session-in-past", "start", "the session would end at %s, which has passed", p.End().Format(time.RFC3339))
	}
	if s.st.State == StateActive && p.Start().After(now) {
		return domain.Validation("start-after-activation", "start", "session %s is active; its start cannot move past now", s.st.ID)
	}
	if p.Start().Equal(s.st.Start) && p.End().Equal(s.st.End) {
		return nil
	}
	shift := p.Start().Sub(s.st.Start)
	var dues []DueMove
	for _, a := range s.st.Assignments {
		if a.Status == AssignmentCompletedStatus {
			continue
		}
		due := a.Due.Add(shift)
		if due.After(p.End()) {
			due = p.End()
		}
		if !due.After(p.Start()) {
			due = p.End()
		}
		if !due.Equal(a.Due) {
			dues = append(dues, DueMove{AssignmentID: a.ID, Due: due})
		}
	}
	s.record(SessionRescheduled{
		SessionID: s.st.ID, ClientID: s.st.ClientID, By: by,
		PreviousStart: s.st.Start, PreviousEnd: s.st.End, Start: p.Start(), End: p.End(), Dues: dues, At: now,
	})
	return nil
}

// Cancel calls off a scheduled or active session, with a reason.
func (s *Session) Cancel(reason, by string, now time.Time) error {
	if err := s.mustBeOpen(); err != nil {
		return err
	}
	reason, err := text("reason", reason, true, maxReason)
	if err != nil {
		return err
	}
	s.record(SessionCancelled{SessionID: s.st.ID, ClientID: s.st.ClientID, By: by, Reason: reason, At: instant(now)})
	return nil
}

// Close ends an active session. When every assignment is completed and has
// feedback the reason is optional; otherwise it is required and the close
// is recorded as early, with the assignments still open.
func (s *Session) Close(reason, by string, now time.Time) error {
	if err := s.mustBeOpen(); err != nil {
		return err
	}
	if s.st.State != StateActive {
		return domain.Conflict("session-not-active", "session %s has not started; cancel it instead", s.st.ID)
	}
	reason, err := text("reason", reason, false, maxReason)
	if err != nil {
		return err
	}
	var open []string
	for _, a := range s.st.Assignments {
		if !a.Done() {
			open = append(open, a.ID)
		}
	}
	if len(open) > 0 && reason == "" {
		return domain.Conflict("session-has-open-work",
			"%d assignment(s) of session %s are not completed with feedback; give a reason to close early", len(open), s.st.ID)
	}
	s.record(SessionClosed{
		SessionID: s.st.ID, ClientID: s.st.ClientID, By: by, Reason: reason,
		Early: len(open) > 0, OpenAssignments: open, At: instant(now),
	})
	return nil
}

func (s *Session) mustExist() error {
	if !s.Exists() {
		return domain.NotFound("session-not-found", "no such session")
	}
	return nil
}

// mustBeOpen refuses work on a session that is closed or cancelled.
func (s *Session) mustBeOpen() error {
	if err := s.mustExist(); err != nil {
		return err
	}
	switch s.st.State {
	case StateClosed:
		return domain.Conflict("session-closed", "session %s is closed", s.st.ID)
	case StateCancelled:
		return domain.Conflict("session-cancelled", "session %s is cancelled", s.st.ID)
	}
	return nil
}

// mustBeActive refuses client work on a session that has not started.
func (s *Session) mustBeActive() error {
	if err := s.mustBeOpen(); err != nil {
		return err
	}
	if s.st.State != StateActive {
		return domain.Conflict("session-not-active", "session %s has not started yet", s.st.ID)
	}
	return nil
}
