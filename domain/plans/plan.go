// Package plans holds design plans: a clinic's template of numbered weeks,
// each with the homework units (books) a provider assigns in that week. A
// plan is a template: scheduling sessions from it belongs to care.
package plans

import (
	"fmt"
	"strings"

	"github.com/careflow/careflow/domain"
)

// Week is one numbered week of a plan and the books assigned in it.
type Week struct {
	Number   int      `json:"number"`   // 1..N, in order
	Homework []string `json:"homework"` // book ids
}

// DesignPlanCreated: a clinic created a design plan template.
type DesignPlanCreated struct {
	PlanID    string `json:"planId"`
	ClinicID  string `json:"clinicId"`
	Title     string `json:"title"`
	Weeks     []Week `json:"weeks"`
	CreatedBy string `json:"createdBy"`
}

func (DesignPlanCreated) EventType() string { return "design_plan.created" }

// Events lists one zero value of every event type of this package.
func Events() []domain.Event { return []domain.Event{DesignPlanCreated{}} }

const (
	maxTitle    = 200
	maxWeeks    = 104
	maxHomework = 20
)

// ValidateWeeks checks that weeks are numbered 1..N without gaps, in order,
// and that each week has 1..20 distinct books.
func ValidateWeeks(weeks []Week) error {
	var errs domain.ValidationErrors
	if len(weeks) == 0 || len(weeks) > maxWeeks {
		errs = append(errs, domain.Validation("invalid-design-plan", "weeks", "a design plan needs 1 to %d weeks", maxWeeks))
	}
	for i, w := range weeks {
		field := fmt.Sprintf("weeks[%d]", i)
		if w.Number != i+1 {
			errs = append(errs, domain.Validation("invalid-design-plan", field+".number",
				"weeks must be numbered 1..N in order: week %d is at place %d", w.Number, i+1))
		}
		if len(w.Homework) == 0 || len(w.Homework) > maxHomework {
			errs = append(errs, domain.Validation("invalid-design-plan", field+".homework",
				"week %d needs 1 to %d homework units", i+1, maxHomework))
		}
		seen := map[string]bool{}
		for j, id := range w.Homework {
			if strings.TrimSpace(id) == "" {
				errs = append(errs, domain.Validation("invalid-design-plan", fmt.Sprintf("%s.homework[%d]", field, j),
					"week %d has an empty book id", i+1))
			} else if seen[id] {
				errs = append(errs, domain.Validation("invalid-design-plan", fmt.Sprintf("%s.homework[%d]", field, j),
					"week %d lists book %q twice", i+1, id))
			}
			seen[id] = true
		}
	}
	return errs.Err()
}

// Plan is the design plan aggregate. Its stream is "design_plan-<id>".
type Plan struct {
	domain.Root
	id       string
	clinicID string
	title    string
	weeks    []Week
}

// New returns an empty plan to load or create into.
func New() *Plan { return &Plan{} }

func (p *Plan) ID() string       { return p.id }
func (p *Plan) ClinicID() string { return p.clinicID }
func (p *Plan) Title() string    { return p.title }
func (p *Plan) Exists() bool     { return p.id != "" }

// Weeks returns a copy of the weeks in order.
func (p *Plan) Weeks() []Week { return cloneWeeks(p.weeks) }

// Week returns week number n (1-based).
func (p *Plan) Week(n int) (Week, bool) {
	if n < 1 || n > len(p.weeks) {
		return Week{}, false
	}
	return cloneWeeks(p.weeks[n-1 : n])[0], true
}

// Create records a new plan. Whether the books exist in the clinic is for
// the caller to check (it knows the catalogue); the shape is checked here.
func (p *Plan) Create(id, clinicID, title string, weeks []Week, by string) error {
	if p.Exists() {
		return domain.Conflict("design-plan-exists", "design plan %s already exists", p.id)
	}
	var errs domain.ValidationErrors
	if strings.TrimSpace(id) == "" {
		errs = append(errs, domain.Validation("invalid-design-plan", "planId", "a design plan needs an id"))
	}
	if strings.TrimSpace(clinicID) == "" {
		errs = append(errs, domain.Validation("invalid-design-plan", "clinicId", "a design plan needs a clinic"))
	}
	if t := strings.TrimSpace(title); t == "" || len(t) > maxTitle {
		errs = append(errs, domain.Validation("invalid-design-plan", "title", "title must be 1 to %d characters", maxTitle))
	}
	if err := ValidateWeeks(weeks); err != nil {
		errs = append(errs, err.(domain.ValidationErrors)...)
	}
	if err := errs.Err(); err != nil {
		return err
	}
	p.record(DesignPlanCreated{PlanID: id, ClinicID: clinicID, Title: strings.TrimSpace(title), Weeks: cloneWeeks(weeks), CreatedBy: by})
	return nil
}

// Replay applies one stored event during load.
func (p *Plan) Replay(e domain.Event) {
	p.apply(e)
	p.Loaded()
}

func (p *Plan) record(e domain.Event) { p.Record(e, p.apply) }

func (p *Plan) apply(e domain.Event) {
	switch e := e.(type) {
	case DesignPlanCreated:
		p.id, p.clinicID, p.title = e.PlanID, e.ClinicID, e.Title
		p.weeks = cloneWeeks(e.Weeks)
	}
}

func cloneWeeks(ws []Week) []Week {
	out := make([]Week, len(ws))
	for i, w := range ws {
		out[i] = Week{Number: w.Number, Homework: append([]string(nil), w.Homework...)}
	}
	return out
}
