package commands_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/plans"
)

func TestApplyDesignPlanSchedulesOneSessionPerWeek(t *testing.T) {
	w := newCareWorld(t)
	res, err := w.care.ApplyDesignPlan(w.ctx, careMeta(w.p1), commands.ApplyDesignPlan{
		ClientID: w.k1.ID, ProviderID: w.p2.ID, PlanID: w.planID, Start: careStart, Reminders: []int{1},
	})
	require.NoError(t, err)
	require.Len(t, res.Sessions, 2)
	assert.Equal(t, res.Sessions[0].End, res.Sessions[1].Start)

	week1 := w.session(res.Sessions[0].ID).View()
	assert.Equal(t, "Depression, two weeks — week 1", week1.Title)
	assert.Equal(t, &care.PlanRef{PlanID: w.planID, Week: 1}, week1.Plan)
	assert.Equal(t, w.p2.ID, week1.ProviderID)
	require.Len(t, week1.Assignments, 2)
	assert.Equal(t, books.PHQ9ID, week1.Assignments[0].BookID)
	assert.Equal(t, w.moduleID, week1.Assignments[1].BookID)
	assert.Equal(t, []int{1}, week1.Assignments[0].ReminderDays)

	week2 := w.session(res.Sessions[1].ID).View()
	assert.Equal(t, 2, week2.Plan.Week)
	require.Len(t, week2.Assignments, 1)
	assert.Equal(t, week2.End, week2.Assignments[0].Due)
}

func TestApplyDesignPlanRefusals(t *testing.T) {
	w := newCareWorld(t)
	for name, tc := range map[string]struct {
		actor domain.Actor
		cmd   commands.ApplyDesignPlan
		kind  domain.Kind
		slug  string
	}{
		"a client":       {w.k1, commands.ApplyDesignPlan{ClientID: w.k1.ID, PlanID: w.planID, Start: careStart}, domain.KindForbidden, "forbidden"},
		"not on team":    {w.p3, commands.ApplyDesignPlan{ClientID: w.k1.ID, PlanID: w.planID, Start: careStart}, domain.KindForbidden, "not-on-care-team"},
		"other clinic":   {w.p4, commands.ApplyDesignPlan{ClientID: w.k1.ID, PlanID: w.planID, Start: careStart}, domain.KindNotFound, "client-not-found"},
		"plan elsewhere": {w.p4, commands.ApplyDesignPlan{ClientID: w.k3.ID, PlanID: w.planID, Start: careStart}, domain.KindNotFound, "design-plan-not-found"},
		"unknown plan":   {w.p1, commands.ApplyDesignPlan{ClientID: w.k1.ID, PlanID: "nope", Start: careStart}, domain.KindNotFound, "design-plan-not-found"},
		"no start":       {w.p1, commands.ApplyDesignPlan{ClientID: w.k1.ID, PlanID: w.planID}, domain.KindValidation, "start-required"},
	} {
		t.Run(name, func(t *testing.T) {
			before := w.head()
			_, err := w.care.ApplyDesignPlan(w.ctx, careMeta(tc.actor), tc.cmd)
			w.refusedIn(t, err, before, tc.kind, tc.slug)
		})
	}
}

func TestApplyDesignPlanShortensALongPlanTitle(t *testing.T) {
	w := newCareWorld(t)
	long := strings.Repeat("p", care.MaxTitle)
	plan, err := w.org.CreateDesignPlan(w.ctx, careMeta(w.p1), commands.CreateDesignPlan{
		ClinicID: w.clinic, Title: long, Weeks: []plans.Week{{Number: 1, Homework: []string{books.GAD7ID}}},
	})
	require.NoError(t, err)
	res, err := w.care.ApplyDesignPlan(w.ctx, careMeta(w.p1), commands.ApplyDesignPlan{ClientID: w.k1.ID, PlanID: plan.Stream.ID, Start: careStart})
	require.NoError(t, err)
	title := w.session(res.Sessions[0].ID).View().Title
	assert.Equal(t, care.MaxTitle, utf8.RuneCountInString(title))
	assert.True(t, strings.HasSuffix(title, " — week 1"), title)
}
