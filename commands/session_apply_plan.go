package commands

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/careflow/careflow/domain/care"
)

// ApplyDesignPlan schedules a clinic design plan for a client: one session
// per numbered week, back to back from Start, each with that week's
// homework (the books' current versions). A provider on the client's care
// team may, for themselves or another provider of the team.
type ApplyDesignPlan struct {
	ClientID   string
	ProviderID string // who holds the sessions; empty: the actor
	PlanID     string
	Start      time.Time
	Length     time.Duration // of each session; 0: a week
	Reminders  []int         // days before the due date
}

// ApplyDesignPlan handles ApplyDesignPlan; ids are derived from the command
// id as for ScheduleSession.
func (c *Care) ApplyDesignPlan(ctx context.Context, m Meta, cmd ApplyDesignPlan) (Scheduled, error) {
	const what = "apply design plans"
	facts, providerID, err := c.schedulerFor(ctx, m.Actor, cmd.ClientID, cmd.ProviderID, what)
	if err != nil {
		return Scheduled{}, err
	}
	plan, err := c.org.DesignPlan(ctx, facts.ClinicID, cmd.PlanID)
	if err != nil {
		return Scheduled{}, err
	}
	first, err := care.NewPeriod(cmd.Start, cmd.Length)
	if err != nil {
		return Scheduled{}, err
	}
	reminders, err := care.NewReminders(cmd.Reminders)
	if err != nil {
		return Scheduled{}, err
	}
	m = c.d.prepared(m)
	weeks := plan.Weeks()
	planned := make([]plannedSession, len(weeks))
	period := first
	for i, w := range weeks {
		homework, err := c.homeworkBooks(ctx, facts.ClinicID, fmt.Sprintf("weeks[%d].homework", i), w.Homework)
		if err != nil {
			return Scheduled{}, err
		}
		spec, err := care.NewSpec(care.SpecInput{
			ClinicID: facts.ClinicID, ClientID: facts.ClientID, ProviderID: providerID, ScheduledBy: m.Actor.ID,
			Title: weekTitle(plan.Title(), w.Number), Period: period, Reminders: reminders,
			Plan: &care.PlanRef{PlanID: plan.ID(), Week: w.Number},
		})
		if err != nil {
			return Scheduled{}, err
		}
		planned[i] = plannedSession{spec: spec, period: period, homework: homework}
		period = period.Next()
	}
	return c.scheduleAll(ctx, m, facts.ClinicID, planned)
}

// weekTitle names a plan's week, shortening the plan title to fit.
func weekTitle(planTitle string, week int) string {
	suffix := fmt.Sprintf(" — week %d", week)
	room := care.MaxTitle - utf8.RuneCountInString(suffix)
	if utf8.RuneCountInString(planTitle) > room {
		planTitle = string([]rune(planTitle)[:room])
	}
	return planTitle + suffix
}
