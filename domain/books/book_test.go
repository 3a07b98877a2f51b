package books_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
)

func questionnaireSpec() books.Spec {
	opts := []books.Option{{Value: 0, Label: "No"}, {Value: 1, Label: "Yes"}}
	return books.Spec{
		Kind: books.KindQuestionnaire, Title: "Check-in",
		Items: []books.Item{{ID: "a", Text: "A?", Options: opts}, {ID: "b", Text: "B?", Options: opts}},
		Bands: []books.Band{{Min: 0, Max: 0, Severity: "none", Label: "None"}, {Min: 1, Max: 2, Severity: "some", Label: "Some"}},
	}
}

// fields returns the fields of the validation errors in err.
func fields(t *testing.T, err error) []string {
	t.Helper()
	var ve domain.ValidationErrors
	require.True(t, errors.As(err, &ve), "want ValidationErrors, got %T %v", err, err)
	var out []string
	for _, e := range ve {
		assert.Equal(t, domain.KindValidation, e.Kind)
		out = append(out, e.Field)
	}
	return out
}

func TestSpecValidation(t *testing.T) {
	require.NoError(t, questionnaireSpec().Validate())
	require.NoError(t, quizSpec().Validate())
	require.NoError(t, books.Spec{Kind: books.KindModule, Title: "Video", Files: []books.FileRef{{Name: "intro.mp4", Ref: "files/intro.mp4"}}}.Validate())
	require.NoError(t, books.PHQ9Spec().Validate())
	require.NoError(t, books.GAD7Spec().Validate())

	cases := map[string]struct {
		change func(*books.Spec)
		field  string
	}{
		"unknown kind":             {func(s *books.Spec) { s.Kind = "poem" }, "kind"},
		"no title":                 {func(s *books.Spec) { s.Title = "  " }, "title"},
		"no items":                 {func(s *books.Spec) { s.Items = nil; s.Bands = nil }, "items"},
		"no bands":                 {func(s *books.Spec) { s.Bands = nil }, "bands"},
		"duplicate item id":        {func(s *books.Spec) { s.Items[1].ID = "a" }, "items[1].id"},
		"bad item id":              {func(s *books.Spec) { s.Items[0].ID = "a b" }, "items[0].id"},
		"item without text":        {func(s *books.Spec) { s.Items[0].Text = "" }, "items[0].text"},
		"one option":               {func(s *books.Spec) { s.Items[0].Options = s.Items[0].Options[:1] }, "items[0].options"},
		"duplicate option value":   {func(s *books.Spec) { s.Items[0].Options[1].Value = 0 }, "items[0].options[1].value"},
		"option without label":     {func(s *books.Spec) { s.Items[0].Options[0].Label = "" }, "items[0].options[0].label"},
		"bands with a gap":         {func(s *books.Spec) { s.Bands[1].Min = 2 }, "bands[1]"},
		"bands not starting at 0":  {func(s *books.Spec) { s.Bands[0].Min = 1 }, "bands[0]"},
		"bands short of max total": {func(s *books.Spec) { s.Bands[1].Max = 1 }, "bands[1].max"},
		"severity not a slug":      {func(s *books.Spec) { s.Bands[0].Severity = "Very Bad" }, "bands[0].severity"},
		"flag on unknown item": {func(s *books.Spec) {
			s.FlagRules = []books.FlagRule{{ItemID: "z", AtLeast: 1, Kind: "risk", Reason: "r"}}
		}, "flagRules[0].itemId"},
		"flag that never fires": {func(s *books.Spec) {
			s.FlagRules = []books.FlagRule{{ItemID: "a", AtLeast: 5, Kind: "risk", Reason: "r"}}
		}, "flagRules[0].atLeast"},
		"flag without reason": {func(s *books.Spec) {
			s.FlagRules = []books.FlagRule{{ItemID: "a", AtLeast: 1, Kind: "risk"}}
		}, "flagRules[0].reason"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := questionnaireSpec()
			c.change(&s)
			assert.Contains(t, fields(t, s.Validate()), c.field)
		})
	}

	t.Run("module with items", func(t *testing.T) {
		s := questionnaireSpec()
		s.Kind, s.Bands, s.Content = books.KindModule, nil, "text"
		assert.Contains(t, fields(t, s.Validate()), "items")
	})
	t.Run("empty module", func(t *testing.T) {
		assert.Contains(t, fields(t, books.Spec{Kind: books.KindModule, Title: "Empty"}.Validate()), "content")
	})
	t.Run("file without reference", func(t *testing.T) {
		s := books.Spec{Kind: books.KindModule, Title: "Video", Files: []books.FileRef{{Name: "intro.mp4"}}}
		assert.Contains(t, fields(t, s.Validate()), "files[0]")
	})
	t.Run("every problem at once", func(t *testing.T) {
		s := questionnaireSpec()
		s.Title, s.Items[0].Text = "", ""
		assert.ElementsMatch(t, []string{"title", "items[0].text"}, fields(t, s.Validate()))
	})
}

func TestNewBook(t *testing.T) {
	_, err := books.NewBook("", "c", 1, questionnaireSpec())
	assert.Equal(t, domain.KindValidation, domain.KindOf(err))
	_, err = books.NewBook("b", "c", 0, questionnaireSpec())
	assert.Equal(t, domain.KindValidation, domain.KindOf(err))

	spec := questionnaireSpec()
	b, err := books.NewBook("b", "c", 3, spec)
	require.NoError(t, err)
	spec.Items[0].Text = "changed after"
	assert.Equal(t, "A?", b.Items()[0].Text, "a book does not share its caller's slices")
	b.Items()[0].Text = "changed copy"
	assert.Equal(t, "A?", b.Spec().Items[0].Text, "Items returns a copy")
	assert.Equal(t, 3, b.Version())
	assert.Equal(t, "c", b.ClinicID())
	assert.False(t, b.IsBuiltIn())
}
