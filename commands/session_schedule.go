package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
)

// ScheduleSession schedules a session for a client, or Repeat back-to-back
// sessions (each starting when the previous one ends, each its own stream).
// A provider on the client's care team may, for themselves or for another
// provider of the team. Every session gets the homework books, due at its
// end, with the reminders.
type ScheduleSession struct {
	ClientID    string
	ProviderID  string // who holds the sessions; empty: the actor
	Title       string
	Description string
	Start       time.Time
	Length      time.Duration // 0: care.DefaultLength (a week)
	Repeat      int           // 1..care.MaxRepeat; 0 means 1
	Homework    []string      // book ids
	Reminders   []int         // days before the due date
}

// ScheduledSession is one session a command scheduled.
type ScheduledSession struct {
	ID    string
	Start time.Time
	End   time.Time
}

// Scheduled answers a scheduling command: the sessions in order, and the
// write of the last one (Duplicate when every session had been written by
// an earlier try of the same command id).
type Scheduled struct {
	Result
	Sessions []ScheduledSession
}

// ScheduleSession handles ScheduleSession. Session ids are derived from the
// command id and the index in the series, so a retry creates nothing twice.
func (c *Care) ScheduleSession(ctx context.Context, m Meta, cmd ScheduleSession) (Scheduled, error) {
	const what = "schedule sessions"
	facts, providerID, err := c.schedulerFor(ctx, m.Actor, cmd.ClientID, cmd.ProviderID, what)
	if err != nil {
		return Scheduled{}, err
	}
	periods, err := care.SeriesPeriods(cmd.Start, cmd.Length, cmd.Repeat)
	if err != nil {
		return Scheduled{}, err
	}
	reminders, err := care.NewReminders(cmd.Reminders)
	if err != nil {
		return Scheduled{}, err
	}
	homework, err := c.homeworkBooks(ctx, facts.ClinicID, "homework", cmd.Homework)
	if err != nil {
		return Scheduled{}, err
	}
	m = c.d.prepared(m)
	planned := make([]plannedSession, len(periods))
	for i, p := range periods {
		in := care.SpecInput{
			ClinicID: facts.ClinicID, ClientID: facts.ClientID, ProviderID: providerID, ScheduledBy: m.Actor.ID,
			Title: cmd.Title, Description: cmd.Description, Period: p, Reminders: reminders,
		}
		if len(periods) > 1 {
			in.Series = &care.SeriesRef{ID: deriveID("series", m.CommandID), Index: i + 1, Count: len(periods)}
		}
		spec, err := care.NewSpec(in)
		if err != nil {
			return Scheduled{}, err
		}
		planned[i] = plannedSession{spec: spec, period: p, homework: homework}
	}
	return c.scheduleAll(ctx, m, facts.ClinicID, planned)
}

// schedulerFor checks that the actor is a provider on the client's team,
// that the client is active, and that the session's provider is on the
// team too. It returns the client's facts and the provider id.
func (c *Care) schedulerFor(ctx context.Context, a domain.Actor, clientID, providerID, what string) (ClientFacts, string, error) {
	if err := requireCareRole(a, what, domain.RoleProvider); err != nil {
		return ClientFacts{}, "", err
	}
	facts, err := c.onTeam(ctx, a, clientID, what, domain.NotFound("client-not-found", "no client %q", clientID))
	if err != nil {
		return ClientFacts{}, "", err
	}
	if !facts.Active {
		return ClientFacts{}, "", domain.Conflict("client-inactive", "client %s is not active", clientID)
	}
	if providerID == "" {
		providerID = a.ID
	}
	if !facts.OnTeam(providerID) {
		return ClientFacts{}, "", domain.Validation("provider-not-on-care-team", "providerId",
			"provider %s is not on the client's care team", providerID)
	}
	return facts, providerID, nil
}

// homeworkBooks looks up the current version of each book; a book the
// clinic does not have is a validation error on that field.
func (c *Care) homeworkBooks(ctx context.Context, clinicID, field string, ids []string) ([]books.Book, error) {
	out := make([]books.Book, 0, len(ids))
	var errs domain.ValidationErrors
	for i, id := range ids {
		b, err := c.org.Book(ctx, clinicID, id)
		switch {
		case domain.KindOf(err) == domain.KindNotFound:
			errs = append(errs, domain.Validation("unknown-book", fmt.Sprintf("%s[%d]", field, i), "this clinic has no book %q", id))
		case err != nil:
			return nil, err
		default:
			out = append(out, b)
		}
	}
	return out, errs.Err()
}

// plannedSession is one session of a scheduling command, validated.
type plannedSession struct {
	spec     care.Spec
	period   care.Period
	homework []books.Book
}

// scheduleAll writes each planned session to its own stream. Ids come from
// the command id and the index, the assignments' from the session id, so a
// retry after a partial failure completes the series without doubling it.
func (c *Care) scheduleAll(ctx context.Context, m Meta, clinicID string, planned []plannedSession) (Scheduled, error) {
	out := Scheduled{Sessions: make([]ScheduledSession, 0, len(planned))}
	duplicate := true
	for i, p := range planned {
		id := derivedID(m, "session", i)
		homework := make([]care.Homework, len(p.homework))
		for j, b := range p.homework {
			homework[j] = care.Homework{AssignmentID: deriveID("assignment", id, j), Book: b}
		}
		res, s, err := execute(ctx, c.d, sessionStream(id), clinicID, m, care.New,
			func(s *care.Session) error { return s.Schedule(id, p.spec, homework, c.d.Clock()) })
		if err != nil {
			return Scheduled{}, err
		}
		c.show(s)
		duplicate = duplicate && res.Duplicate
		out.Result = res
		out.Sessions = append(out.Sessions, ScheduledSession{ID: id, Start: p.period.Start(), End: p.period.End()})
	}
	out.Duplicate = duplicate && len(planned) > 0
	return out, nil
}
