package plans_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/plans"
)

func twoWeeks() []plans.Week {
	return []plans.Week{{Number: 1, Homework: []string{"phq-9", "gad-7"}}, {Number: 2, Homework: []string{"phq-9"}}}
}

func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var ve domain.ValidationErrors
	require.True(t, errors.As(err, &ve), "want ValidationErrors, got %T %v", err, err)
	var out []string
	for _, e := range ve {
		out = append(out, e.Field)
	}
	return out
}

func TestCreatePlan(t *testing.T) {
	p := plans.New()
	require.NoError(t, p.Create("p1", "c1", " Eight weeks of CBT ", twoWeeks(), "u1"))
	assert.Equal(t, []domain.Event{plans.DesignPlanCreated{
		PlanID: "p1", ClinicID: "c1", Title: "Eight weeks of CBT", Weeks: twoWeeks(), CreatedBy: "u1",
	}}, p.Pending())
	assert.Equal(t, twoWeeks(), p.Weeks())
	w, ok := p.Week(2)
	require.True(t, ok)
	assert.Equal(t, []string{"phq-9"}, w.Homework)
	_, ok = p.Week(3)
	assert.False(t, ok)

	p.Weeks()[0].Homework[0] = "changed"
	assert.Equal(t, "phq-9", p.Weeks()[0].Homework[0], "Weeks returns a copy")
}

func TestCreatePlanRules(t *testing.T) {
	t.Run("twice", func(t *testing.T) {
		p := plans.New()
		p.Replay(plans.DesignPlanCreated{PlanID: "p1", ClinicID: "c1", Title: "T", Weeks: twoWeeks()})
		assert.ErrorIs(t, p.Create("p1", "c1", "T", twoWeeks(), "u1"), &domain.Error{Slug: "design-plan-exists"})
	})
	cases := map[string]struct {
		title string
		weeks []plans.Week
		field string
	}{
		"no title":         {"", twoWeeks(), "title"},
		"no weeks":         {"T", nil, "weeks"},
		"starts at week 2": {"T", []plans.Week{{Number: 2, Homework: []string{"a"}}}, "weeks[0].number"},
		"gap":              {"T", []plans.Week{{Number: 1, Homework: []string{"a"}}, {Number: 3, Homework: []string{"a"}}}, "weeks[1].number"},
		"out of order":     {"T", []plans.Week{{Number: 2, Homework: []string{"a"}}, {Number: 1, Homework: []string{"a"}}}, "weeks[0].number"},
		"empty week":       {"T", []plans.Week{{Number: 1}}, "weeks[0].homework"},
		"empty book id":    {"T", []plans.Week{{Number: 1, Homework: []string{""}}}, "weeks[0].homework[0]"},
		"book twice":       {"T", []plans.Week{{Number: 1, Homework: []string{"a", "a"}}}, "weeks[0].homework[1]"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := plans.New()
			err := p.Create("p1", "c1", c.title, c.weeks, "u1")
			assert.Contains(t, fieldsOf(t, err), c.field)
			assert.Empty(t, p.Pending())
		})
	}
	t.Run("no clinic", func(t *testing.T) {
		assert.Contains(t, fieldsOf(t, plans.New().Create("p1", "", "T", twoWeeks(), "u1")), "clinicId")
	})
}
