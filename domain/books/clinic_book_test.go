package books_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
)

func replayed(events ...domain.Event) *books.ClinicBook {
	b := books.NewClinicBook()
	for _, e := range events {
		b.Replay(e)
	}
	return b
}

func TestDefineBook(t *testing.T) {
	b := books.NewClinicBook()
	require.NoError(t, b.Define("b1", "c1", questionnaireSpec(), "u1"))
	assert.Equal(t, []domain.Event{books.BookDefined{BookID: "b1", ClinicID: "c1", Spec: questionnaireSpec(), DefinedBy: "u1"}}, b.Pending())
	assert.Equal(t, 1, b.Current().Version())
	assert.Equal(t, "c1", b.Current().ClinicID())

	t.Run("twice", func(t *testing.T) {
		b := replayed(books.BookDefined{BookID: "b1", ClinicID: "c1", Spec: questionnaireSpec()})
		err := b.Define("b1", "c1", questionnaireSpec(), "u1")
		assert.Equal(t, domain.KindConflict, domain.KindOf(err))
		assert.ErrorIs(t, err, &domain.Error{Slug: "book-exists"})
	})
	t.Run("built-in id", func(t *testing.T) {
		err := books.NewClinicBook().Define("phq-9", "c1", questionnaireSpec(), "u1")
		assert.ErrorIs(t, err, &domain.Error{Slug: "book-id-reserved"})
	})
	t.Run("no clinic", func(t *testing.T) {
		err := books.NewClinicBook().Define("b1", "", questionnaireSpec(), "u1")
		assert.Equal(t, domain.KindValidation, domain.KindOf(err))
	})
	t.Run("invalid spec", func(t *testing.T) {
		b := books.NewClinicBook()
		s := questionnaireSpec()
		s.Bands = nil
		assert.Equal(t, domain.KindValidation, domain.KindOf(b.Define("b1", "c1", s, "u1")))
		assert.Empty(t, b.Pending())
	})
}

func TestReviseBookKeepsOlderVersions(t *testing.T) {
	b := replayed(books.BookDefined{BookID: "b1", ClinicID: "c1", Spec: questionnaireSpec(), DefinedBy: "u1"})
	v2 := questionnaireSpec()
	v2.Title = "Check-in (2nd edition)"
	require.NoError(t, b.Revise(v2, "u2"))
	assert.Equal(t, []domain.Event{books.BookRevised{BookID: "b1", ClinicID: "c1", Version: 2, Spec: v2, RevisedBy: "u2"}}, b.Pending())

	assert.Equal(t, 2, b.Current().Version())
	assert.Equal(t, "Check-in (2nd edition)", b.Current().Title())
	v1, ok := b.At(1)
	require.True(t, ok)
	assert.Equal(t, "Check-in", v1.Title())
	assert.Equal(t, 1, v1.Version())
	_, ok = b.At(3)
	assert.False(t, ok)
	_, ok = b.At(0)
	assert.False(t, ok)
}

func TestReviseBookRules(t *testing.T) {
	defined := books.BookDefined{BookID: "b1", ClinicID: "c1", Spec: questionnaireSpec()}

	t.Run("unknown book", func(t *testing.T) {
		err := books.NewClinicBook().Revise(questionnaireSpec(), "u1")
		assert.ErrorIs(t, err, &domain.Error{Slug: "book-not-found"})
		assert.Equal(t, domain.KindNotFound, domain.KindOf(err))
	})
	t.Run("kind cannot change", func(t *testing.T) {
		err := replayed(defined).Revise(quizSpec(), "u1")
		assert.ErrorIs(t, err, &domain.Error{Slug: "book-kind-changed"})
	})
	t.Run("invalid spec", func(t *testing.T) {
		s := questionnaireSpec()
		s.Items[0].Options = nil
		assert.Equal(t, domain.KindValidation, domain.KindOf(replayed(defined).Revise(s, "u1")))
	})
	t.Run("unchanged spec records nothing", func(t *testing.T) {
		b := replayed(defined)
		require.NoError(t, b.Revise(questionnaireSpec(), "u1"))
		assert.Empty(t, b.Pending())
	})
}
