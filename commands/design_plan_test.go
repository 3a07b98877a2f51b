package commands_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/plans"
)

func orgWeeks() []plans.Week {
	return []plans.Week{{Number: 1, Homework: []string{"phq-9", "b1"}}, {Number: 2, Homework: []string{"gad-7"}}}
}

func TestCreateDesignPlan(t *testing.T) {
	for _, a := range []domain.Actor{orgCA1, orgP2} {
		t.Run(string(a.Role), func(t *testing.T) {
			w := newOrgWorld(t)
			res, err := w.org.CreateDesignPlan(w.ctx, orgMeta(a), commands.CreateDesignPlan{ClinicID: "c1", Title: "Six weeks", Weeks: orgWeeks()})
			require.NoError(t, err)
			assert.Equal(t, commands.StreamDesignPlan, res.Stream.Type)
			assert.Equal(t, []domain.Event{plans.DesignPlanCreated{
				PlanID: res.Stream.ID, ClinicID: "c1", Title: "Six weeks", Weeks: orgWeeks(), CreatedBy: a.ID,
			}}, w.eventsSince(commands.StreamDesignPlan, res.Stream.ID, 0))

			p, err := w.org.DesignPlan(w.ctx, "c1", res.Stream.ID)
			require.NoError(t, err)
			assert.Equal(t, orgWeeks(), p.Weeks())
			_, err = w.org.DesignPlan(w.ctx, "c2", res.Stream.ID)
			assert.ErrorIs(t, err, &domain.Error{Slug: "design-plan-not-found"}, "another clinic's plan is not found")
		})
	}
}

func TestCreateDesignPlanRefusals(t *testing.T) {
	w := newOrgWorld(t)
	before := w.head()
	create := func(a domain.Actor, cmd commands.CreateDesignPlan) error {
		_, err := w.org.CreateDesignPlan(w.ctx, orgMeta(a), cmd)
		return err
	}
	ok := commands.CreateDesignPlan{ClinicID: "c1", Title: "Plan", Weeks: orgWeeks()}
	for _, a := range []domain.Actor{orgSys, orgIA1, orgAuditor1, orgClient} {
		w.requireRefused(create(a, ok), before, domain.KindForbidden, "forbidden")
	}
	w.requireRefused(create(orgCA2, ok), before, domain.KindNotFound, "clinic-not-found")

	err := create(orgCA2, commands.CreateDesignPlan{ClinicID: "c2", Title: "Plan", Weeks: orgWeeks()})
	w.requireRefused(err, before, domain.KindValidation, "unknown-book")
	requireField(t, err, "weeks[0].homework[1]")

	err = create(orgCA1, commands.CreateDesignPlan{ClinicID: "c1", Title: "Plan", Weeks: []plans.Week{{Number: 2, Homework: []string{"phq-9"}}}})
	w.requireRefused(err, before, domain.KindValidation, "invalid-design-plan")
	requireField(t, err, "weeks[0].number")

	err = create(orgCA1, commands.CreateDesignPlan{ClinicID: "c1", Weeks: orgWeeks()})
	w.requireRefused(err, before, domain.KindValidation, "invalid-design-plan")
	requireField(t, err, "title")
}

func TestDesignPlanLookup(t *testing.T) {
	w := newOrgWorld(t)
	for _, c := range []struct{ clinic, plan string }{{"c1", "nope"}, {"c1", ""}, {"", "x"}} {
		_, err := w.org.DesignPlan(w.ctx, c.clinic, c.plan)
		assert.Equal(t, domain.KindNotFound, domain.KindOf(err))
		assert.ErrorIs(t, err, &domain.Error{Slug: "design-plan-not-found"})
	}
}
