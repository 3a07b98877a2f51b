package books

import (
	"reflect"
	"strings"

	"github.com/careflow/careflow/domain"
)

// BookDefined: a clinic defined a new book; it is version 1.
type BookDefined struct {
	BookID    string `json:"bookId"`
	ClinicID  string `json:"clinicId"`
	Spec      Spec   `json:"spec"`
	DefinedBy string `json:"definedBy"`
}

func (BookDefined) EventType() string { return "book.defined" }

// BookRevised: a clinic published a new version of its book. Older
// versions stay readable.
type BookRevised struct {
	BookID    string `json:"bookId"`
	ClinicID  string `json:"clinicId"`
	Version   int    `json:"version"`
	Spec      Spec   `json:"spec"`
	RevisedBy string `json:"revisedBy"`
}

func (BookRevised) EventType() string { return "book.revised" }

// Events lists one zero value of every event type of this package.
func Events() []domain.Event {
	return []domain.Event{BookDefined{}, BookRevised{}}
}

// ClinicBook is the aggregate of one clinic-defined book: every version
// it has had. Its stream is "book-<id>".
type ClinicBook struct {
	domain.Root
	id       string
	clinicID string
	versions []Book // versions[i].Version() == i+1
}

// NewClinicBook returns an empty aggregate to load or define into.
func NewClinicBook() *ClinicBook { return &ClinicBook{} }

func (c *ClinicBook) ID() string       { return c.id }
func (c *ClinicBook) ClinicID() string { return c.clinicID }
func (c *ClinicBook) Exists() bool     { return c.id != "" }

// Current is the latest version (a zero Book if the book does not exist).
func (c *ClinicBook) Current() Book {
	if len(c.versions) == 0 {
		return Book{}
	}
	return c.versions[len(c.versions)-1]
}

// At returns the given version, which stays readable after revisions.
func (c *ClinicBook) At(version int) (Book, bool) {
	if version < 1 || version > len(c.versions) {
		return Book{}, false
	}
	return c.versions[version-1], true
}

// Define records a new book at version 1. Built-in ids are reserved.
func (c *ClinicBook) Define(id, clinicID string, spec Spec, by string) error {
	if c.Exists() {
		return domain.Conflict("book-exists", "book %s is already defined", c.id)
	}
	if _, reserved := BuiltInBook(id); reserved {
		return domain.Validation("book-id-reserved", "bookId", "book id %q is a built-in book", id)
	}
	if strings.TrimSpace(clinicID) == "" {
		return domain.Validation("invalid-book", "clinicId", "a clinic book needs a clinic")
	}
	if _, err := NewBook(id, clinicID, 1, spec); err != nil {
		return err
	}
	c.record(BookDefined{BookID: id, ClinicID: clinicID, Spec: cloneSpec(spec), DefinedBy: by})
	return nil
}

// Revise records spec as the next version. The kind cannot change (an
// assigned questionnaire stays a questionnaire); a revision equal to the
// current version records nothing.
func (c *ClinicBook) Revise(spec Spec, by string) error {
	if !c.Exists() {
		return domain.NotFound("book-not-found", "no such book")
	}
	current := c.Current()
	if spec.Kind != current.Kind() {
		return domain.Validation("book-kind-changed", "kind", "book %s is a %s; a revision cannot make it a %s", c.id, current.Kind(), spec.Kind)
	}
	next := current.Version() + 1
	if _, err := NewBook(c.id, c.clinicID, next, spec); err != nil {
		return err
	}
	if reflect.DeepEqual(cloneSpec(spec), current.spec) {
		return nil
	}
	c.record(BookRevised{BookID: c.id, ClinicID: c.clinicID, Version: next, Spec: cloneSpec(spec), RevisedBy: by})
	return nil
}

// Replay applies one stored event during load.
func (c *ClinicBook) Replay(e domain.Event) {
	c.apply(e)
	c.Loaded()
}

func (c *ClinicBook) record(e domain.Event) { c.Record(e, c.apply) }

func (c *ClinicBook) apply(e domain.Event) {
	switch e := e.(type) {
	case BookDefined:
		c.id, c.clinicID = e.BookID, e.ClinicID
		c.versions = []Book{fromSpec(e.BookID, e.ClinicID, 1, e.Spec)}
	case BookRevised:
		c.versions = append(c.versions, fromSpec(c.id, c.clinicID, e.Version, e.Spec))
	}
}
