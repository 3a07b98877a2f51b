// Package books holds what clients are assigned: questionnaires (scored),
// educational modules (content and files) and tests. A book is data: its
// items, answer options, severity bands and flag rules are fields, so the
// built-in PHQ-9 and GAD-7 and a clinic's own questionnaire score through
// the same code. Clinic books are versioned; every version stays readable
// so an assignment can keep the version it was given.
package books

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/careflow/careflow/domain"
)

// Kind says what a book is for.
type Kind string

const (
	KindQuestionnaire Kind = "questionnaire" // answered and scored
	KindModule        Kind = "module"        // read: content and files, no items
	KindTest          Kind = "test"          // answered; bands are optional
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case KindQuestionnaire, KindModule, KindTest:
		return true
	}
	return false
}

// Option is one answer a client can pick for an item.
type Option struct {
	Value int    `json:"value"`
	Label string `json:"label"`
}

// Item is one question.
type Item struct {
	ID      string   `json:"id"`
	Text    string   `json:"text"`
	Options []Option `json:"options"`
}

// Band maps a range of totals (inclusive) to a severity.
type Band struct {
	Min      int    `json:"min"`
	Max      int    `json:"max"`
	Severity string `json:"severity"` // a slug: "moderately_severe"
	Label    string `json:"label"`    // for people: "Moderately severe"
}

// FlagRule raises a flag when the answer to ItemID is AtLeast or more.
type FlagRule struct {
	ItemID  string `json:"itemId"`
	AtLeast int    `json:"atLeast"`
	Kind    string `json:"kind"` // "risk"
	Urgent  bool   `json:"urgent"`
	Reason  string `json:"reason"`
}

// FileRef points at a file a module shows (stored elsewhere, by reference).
type FileRef struct {
	Name      string `json:"name"`
	Ref       string `json:"ref"`
	MediaType string `json:"mediaType,omitempty"`
}

// Spec is the content of one book version as plain data; events carry it.
type Spec struct {
	Kind         Kind       `json:"kind"`
	Title        string     `json:"title"`
	Instructions string     `json:"instructions,omitempty"`
	Items        []Item     `json:"items,omitempty"`
	Bands        []Band     `json:"bands,omitempty"`
	FlagRules    []FlagRule `json:"flagRules,omitempty"`
	Content      string     `json:"content,omitempty"`
	Files        []FileRef  `json:"files,omitempty"`
}

// FlagKindRisk is a safety flag: the care team must see it at once.
const FlagKindRisk = "risk"

var (
	slugPattern   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	itemIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

const (
	maxTitle   = 200
	maxText    = 2000
	maxContent = 200_000
	maxItems   = 200
)

// Validate reports every problem of s at once.
func (s Spec) Validate() error {
	var errs domain.ValidationErrors
	bad := func(field, format string, args ...any) {
		errs = append(errs, domain.Validation("invalid-book", field, format, args...))
	}
	if !s.Kind.Valid() {
		bad("kind", "kind must be questionnaire, module or test, not %q", s.Kind)
	}
	if t := strings.TrimSpace(s.Title); t == "" || len(t) > maxTitle {
		bad("title", "title must be 1 to %d characters", maxTitle)
	}
	if len(s.Instructions) > maxText {
		bad("instructions", "instructions must be at most %d characters", maxText)
	}
	if len(s.Content) > maxContent {
		bad("content", "content must be at most %d characters", maxContent)
	}
	switch s.Kind {
	case KindModule:
		if len(s.Items) > 0 || len(s.Bands) > 0 || len(s.FlagRules) > 0 {
			bad("items", "a module has no items, bands or flag rules")
		}
		if strings.TrimSpace(s.Content) == "" && len(s.Files) == 0 {
			bad("content", "a module needs content or at least one file")
		}
	case KindQuestionnaire, KindTest:
		if len(s.Items) == 0 || len(s.Items) > maxItems {
			bad("items", "a %s needs 1 to %d items", s.Kind, maxItems)
		}
		if s.Kind == KindQuestionnaire && len(s.Bands) == 0 {
			bad("bands", "a questionnaire needs severity bands")
		}
	}
	items := map[string]Item{}
	for i, it := range s.Items {
		field := fmt.Sprintf("items[%d]", i)
		if !itemIDPattern.MatchString(it.ID) {
			bad(field+".id", "item id %q must be 1 to 64 letters, digits, '.', '_' or '-'", it.ID)
		}
		if _, dup := items[it.ID]; dup {
			bad(field+".id", "item id %q is used twice", it.ID)
		}
		items[it.ID] = it
		if t := strings.TrimSpace(it.Text); t == "" || len(t) > maxText {
			bad(field+".text", "item %q needs a text of 1 to %d characters", it.ID, maxText)
		}
		if len(it.Options) < 2 {
			bad(field+".options", "item %q needs at least two options", it.ID)
		}
		values := map[int]bool{}
		for j, o := range it.Options {
			if values[o.Value] {
				bad(fmt.Sprintf("%s.options[%d].value", field, j), "item %q has value %d twice", it.ID, o.Value)
			}
			values[o.Value] = true
			if strings.TrimSpace(o.Label) == "" {
				bad(fmt.Sprintf("%s.options[%d].label", field, j), "item %q option %d needs a label", it.ID, o.Value)
			}
		}
	}
	if len(s.Bands) > 0 && len(s.Items) > 0 {
		lo, hi := totalRange(s.Items)
		next := lo
		for i, b := range s.Bands {
			field := fmt.Sprintf("bands[%d]", i)
			if !slugPattern.MatchString(b.Severity) {
				bad(field+".severity", "severity %q must be a lowercase slug", b.Severity)
			}
			if b.Min != next || b.Max < b.Min {
				bad(field, "bands must cover %d..%d in order without gaps or overlaps; band %d..%d does not follow", lo, hi, b.Min, b.Max)
				break
			}
			next = b.Max + 1
			if i == len(s.Bands)-1 && b.Max != hi {
				bad(field+".max", "the last band must end at the highest possible total %d, not %d", hi, b.Max)
			}
		}
	}
	for i, r := range s.FlagRules {
		field := fmt.Sprintf("flagRules[%d]", i)
		it, ok := items[r.ItemID]
		if !ok {
			bad(field+".itemId", "flag rule names unknown item %q", r.ItemID)
		} else if _, hi := optionRange(it); r.AtLeast > hi {
			bad(field+".atLeast", "flag rule on item %q can never fire: %d is above every option", r.ItemID, r.AtLeast)
		}
		if !slugPattern.MatchString(r.Kind) {
			bad(field+".kind", "flag kind %q must be a lowercase slug", r.Kind)
		}
		if strings.TrimSpace(r.Reason) == "" {
			bad(field+".reason", "flag rule needs a reason")
		}
	}
	for i, f := range s.Files {
		if strings.TrimSpace(f.Name) == "" || strings.TrimSpace(f.Ref) == "" {
			bad(fmt.Sprintf("files[%d]", i), "a file needs a name and a reference")
		}
	}
	return errs.Err()
}

func optionRange(it Item) (lo, hi int) {
	for i, o := range it.Options {
		if i == 0 || o.Value < lo {
			lo = o.Value
		}
		if i == 0 || o.Value > hi {
			hi = o.Value
		}
	}
	return lo, hi
}

func totalRange(items []Item) (lo, hi int) {
	for _, it := range items {
		l, h := optionRange(it)
		lo += l
		hi += h
	}
	return lo, hi
}

// Book is one version of a book: immutable once made.
type Book struct {
	id       string
	clinicID string // "" for a built-in book
	version  int
	spec     Spec
}

// NewBook validates spec and returns version version of book id. clinicID
// is empty for built-in books.
func NewBook(id, clinicID string, version int, spec Spec) (Book, error) {
	if strings.TrimSpace(id) == "" {
		return Book{}, domain.Validation("invalid-book", "id", "a book needs an id")
	}
	if version < 1 {
		return Book{}, domain.Validation("invalid-book", "version", "book version must be 1 or more, not %d", version)
	}
	if err := spec.Validate(); err != nil {
		return Book{}, err
	}
	return fromSpec(id, clinicID, version, spec), nil
}

// fromSpec builds a book without validating: for replaying stored events.
func fromSpec(id, clinicID string, version int, spec Spec) Book {
	return Book{id: id, clinicID: clinicID, version: version, spec: cloneSpec(spec)}
}

func (b Book) ID() string           { return b.id }
func (b Book) Version() int         { return b.version }
func (b Book) Kind() Kind           { return b.spec.Kind }
func (b Book) Title() string        { return b.spec.Title }
func (b Book) ClinicID() string     { return b.clinicID }
func (b Book) IsBuiltIn() bool      { return b.clinicID == "" }
func (b Book) IsZero() bool         { return b.id == "" }
func (b Book) Instructions() string { return b.spec.Instructions }
func (b Book) Content() string      { return b.spec.Content }

// Spec returns a copy of the book's data.
func (b Book) Spec() Spec { return cloneSpec(b.spec) }

// Items returns a copy of the items in order.
func (b Book) Items() []Item { return cloneSpec(b.spec).Items }

func cloneSpec(s Spec) Spec {
	out := s
	out.Items = nil
	for _, it := range s.Items {
		it.Options = append([]Option(nil), it.Options...)
		out.Items = append(out.Items, it)
	}
	out.Bands = append([]Band(nil), s.Bands...)
	out.FlagRules = append([]FlagRule(nil), s.FlagRules...)
	out.Files = append([]FileRef(nil), s.Files...)
	return out
}
