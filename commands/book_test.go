package commands_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
)

func TestDefineBook(t *testing.T) {
	for _, a := range []domain.Actor{orgCA1, orgP2} {
		t.Run(string(a.Role), func(t *testing.T) {
			w := newOrgWorld(t)
			res, err := w.org.DefineBook(w.ctx, orgMeta(a), commands.DefineBook{ClinicID: "c1", Spec: orgSpec()})
			require.NoError(t, err)
			assert.Equal(t, commands.StreamBook, res.Stream.Type)
			assert.Equal(t, []domain.Event{books.BookDefined{BookID: res.Stream.ID, ClinicID: "c1", Spec: orgSpec(), DefinedBy: a.ID}},
				w.eventsSince(commands.StreamBook, res.Stream.ID, 0))

			b, err := w.org.Book(w.ctx, "c1", res.Stream.ID)
			require.NoError(t, err)
			assert.Equal(t, 1, b.Version())
			assert.Equal(t, "Check-in", b.Title())
		})
	}
}

func TestDefineBookRefusals(t *testing.T) {
	w := newOrgWorld(t)
	before := w.head()
	define := func(a domain.Actor, cmd commands.DefineBook) error {
		_, err := w.org.DefineBook(w.ctx, orgMeta(a), cmd)
		return err
	}
	ok := commands.DefineBook{ClinicID: "c1", Spec: orgSpec()}
	for _, a := range []domain.Actor{orgSys, orgIA1, orgAuditor1, orgClient} {
		w.requireRefused(define(a, ok), before, domain.KindForbidden, "forbidden")
	}
	w.requireRefused(define(orgCA2, ok), before, domain.KindNotFound, "clinic-not-found")
	w.requireRefused(define(orgP4, ok), before, domain.KindNotFound, "clinic-not-found")
	bad := orgSpec()
	bad.Title = ""
	err := define(orgCA1, commands.DefineBook{ClinicID: "c1", Spec: bad})
	w.requireRefused(err, before, domain.KindValidation, "invalid-book")
	requireField(t, err, "title")
}

func TestReviseBookKeepsEveryVersionReadable(t *testing.T) {
	w := newOrgWorld(t)
	v2 := orgSpec()
	v2.Title = "Check-in 2"
	v := w.version(commands.StreamBook, "b1")
	_, err := w.org.ReviseBook(w.ctx, orgMeta(orgP1), commands.ReviseBook{ClinicID: "c1", BookID: "b1", Spec: v2})
	require.NoError(t, err)
	assert.Equal(t, []domain.Event{books.BookRevised{BookID: "b1", ClinicID: "c1", Version: 2, Spec: v2, RevisedBy: "p1"}},
		w.eventsSince(commands.StreamBook, "b1", v))

	current, err := w.org.Book(w.ctx, "c1", "b1")
	require.NoError(t, err)
	assert.Equal(t, 2, current.Version())
	assert.Equal(t, "Check-in 2", current.Title())
	first, err := w.org.BookVersion(w.ctx, "c1", "b1", 1)
	require.NoError(t, err)
	assert.Equal(t, "Check-in", first.Title(), "an assignment given version 1 still reads version 1")
	_, err = w.org.BookVersion(w.ctx, "c1", "b1", 3)
	assert.ErrorIs(t, err, &domain.Error{Slug: "book-not-found"})
}

func TestReviseBookRefusals(t *testing.T) {
	w := newOrgWorld(t)
	before := w.head()
	v2 := orgSpec()
	v2.Title = "Check-in 2"
	revise := func(a domain.Actor, clinic, book string, spec books.Spec) error {
		_, err := w.org.ReviseBook(w.ctx, orgMeta(a), commands.ReviseBook{ClinicID: clinic, BookID: book, Spec: spec})
		return err
	}
	for _, a := range []domain.Actor{orgSys, orgIA1, orgAuditor1, orgClient} {
		w.requireRefused(revise(a, "c1", "b1", v2), before, domain.KindForbidden, "forbidden")
	}
	w.requireRefused(revise(orgCA2, "c1", "b1", v2), before, domain.KindNotFound, "clinic-not-found")
	w.requireRefused(revise(orgCA2, "c2", "b1", v2), before, domain.KindNotFound, "book-not-found")
	w.requireRefused(revise(orgCA1, "c1", "nope", v2), before, domain.KindNotFound, "book-not-found")
	w.requireRefused(revise(orgCA1, "c1", "phq-9", v2), before, domain.KindConflict, "built-in-book")
	module := books.Spec{Kind: books.KindModule, Title: "Read me", Content: "text"}
	err := revise(orgCA1, "c1", "b1", module)
	w.requireRefused(err, before, domain.KindValidation, "book-kind-changed")
	requireField(t, err, "kind")
}

func TestBookCatalog(t *testing.T) {
	w := newOrgWorld(t)
	phq, err := w.org.Book(w.ctx, "c1", "phq-9")
	require.NoError(t, err)
	assert.Equal(t, "phq-9", phq.ID())
	gad, err := w.org.BookVersion(w.ctx, "c2", "gad-7", 1)
	require.NoError(t, err)
	assert.Equal(t, "GAD-7", gad.Title())
	_, err = w.org.BookVersion(w.ctx, "c2", "gad-7", 2)
	assert.ErrorIs(t, err, &domain.Error{Slug: "book-not-found"})

	for _, c := range []struct{ clinic, book string }{{"c2", "b1"}, {"c1", "nope"}, {"c1", ""}, {"", "b1"}} {
		_, err = w.org.Book(w.ctx, c.clinic, c.book)
		assert.Equal(t, domain.KindNotFound, domain.KindOf(err), "%v", c)
		assert.ErrorIs(t, err, &domain.Error{Slug: "book-not-found"}, "%v", c)
	}
}

func TestReviseBookUnchangedWritesNothing(t *testing.T) {
	w := newOrgWorld(t)
	before := w.head()
	_, err := w.org.ReviseBook(w.ctx, orgMeta(orgCA1), commands.ReviseBook{ClinicID: "c1", BookID: "b1", Spec: orgSpec()})
	require.NoError(t, err)
	assert.Equal(t, before, w.head(), "a revision equal to the stored version is not a new version")
}
