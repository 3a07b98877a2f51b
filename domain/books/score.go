package books

import (
	"github.com/careflow/careflow/domain"
)

// Answer is the value a client picked for one item.
type Answer struct {
	ItemID string `json:"itemId"`
	Value  int    `json:"value"`
}

// Flag is something the care team must look at, raised by a flag rule.
type Flag struct {
	Kind   string `json:"kind"` // "risk"
	ItemID string `json:"itemId"`
	Urgent bool   `json:"urgent"` // must reach the team at once
	Reason string `json:"reason"`
}

// Score is the outcome of a set of answers.
type Score struct {
	Total    int    `json:"total"`
	Severity string `json:"severity,omitempty"` // "" when the book has no bands
	Flags    []Flag `json:"flags,omitempty"`
}

// Urgent reports whether any flag must reach the team at once.
func (s Score) Urgent() bool {
	for _, f := range s.Flags {
		if f.Urgent {
			return true
		}
	}
	return false
}

// SlugInvalidResponse is the error slug of answers that cannot be scored.
const SlugInvalidResponse = "invalid-response"

// Score checks the answers against the items and scores them: the total,
// the band it falls in and the flags the rules raise. Every item must be
// answered exactly once with one of its option values. A book without
// items (a module) or any book other than a questionnaire given no answers
// yields a zero Score: it is completed, not scored.
func (b Book) Score(answers []Answer) (Score, error) {
	if len(answers) == 0 && b.spec.Kind != KindQuestionnaire {
		return Score{}, nil
	}
	items := make(map[string]Item, len(b.spec.Items))
	for _, it := range b.spec.Items {
		items[it.ID] = it
	}
	given := make(map[string]int, len(answers))
	for _, a := range answers {
		it, ok := items[a.ItemID]
		if !ok {
			return Score{}, invalid(a.ItemID, "%s has no item %q", b.id, a.ItemID)
		}
		if _, dup := given[a.ItemID]; dup {
			return Score{}, invalid(a.ItemID, "item %q of %s is answered twice", a.ItemID, b.id)
		}
		if !hasValue(it, a.Value) {
			lo, hi := optionRange(it)
			return Score{}, invalid(a.ItemID, "answer %d to item %q of %s is out of range %d..%d", a.Value, a.ItemID, b.id, lo, hi)
		}
		given[a.ItemID] = a.Value
	}
	var score Score
	for _, it := range b.spec.Items {
		v, ok := given[it.ID]
		if !ok {
			return Score{}, invalid(it.ID, "item %q of %s is not answered", it.ID, b.id)
		}
		score.Total += v
	}
	for _, band := range b.spec.Bands {
		if score.Total >= band.Min && score.Total <= band.Max {
			score.Severity = band.Severity
			break
		}
	}
	for _, r := range b.spec.FlagRules {
		if given[r.ItemID] >= r.AtLeast {
			score.Flags = append(score.Flags, Flag{Kind: r.Kind, ItemID: r.ItemID, Urgent: r.Urgent, Reason: r.Reason})
		}
	}
	return score, nil
}

func hasValue(it Item, v int) bool {
	for _, o := range it.Options {
		if o.Value == v {
			return true
		}
	}
	return false
}

func invalid(itemID, format string, args ...any) *domain.Error {
	return domain.Validation(SlugInvalidResponse, "answers."+itemID, format, args...)
}
