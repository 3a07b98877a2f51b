package books_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
)

func builtIn(t *testing.T, id string) books.Book {
	t.Helper()
	b, ok := books.BuiltInBook(id)
	require.True(t, ok, "built-in %s", id)
	return b
}

// answersTotalling answers items 1..n with values summing to total, filling
// the first items first and leaving the items in zero untouched (0).
func answersTotalling(n, total int, zero ...string) []books.Answer {
	skip := map[string]bool{}
	for _, id := range zero {
		skip[id] = true
	}
	out := make([]books.Answer, 0, n)
	for i := 1; i <= n; i++ {
		id := fmt.Sprint(i)
		v := 0
		if !skip[id] {
			v = min(3, total)
			total -= v
		}
		out = append(out, books.Answer{ItemID: id, Value: v})
	}
	if total != 0 {
		panic("total too high for the items")
	}
	return out
}

func TestBuiltInBooks(t *testing.T) {
	all := books.BuiltIn()
	require.Len(t, all, 2)
	phq, gad := all[0], all[1]

	assert.Equal(t, "phq-9", phq.ID())
	assert.Equal(t, 1, phq.Version())
	assert.Equal(t, books.KindQuestionnaire, phq.Kind())
	assert.Equal(t, "PHQ-9", phq.Title())
	assert.True(t, phq.IsBuiltIn())
	require.Len(t, phq.Items(), 9)
	assert.Equal(t, "1", phq.Items()[0].ID)
	assert.Equal(t, "Little interest or pleasure in doing things", phq.Items()[0].Text)
	assert.Equal(t, "9", phq.Items()[8].ID)
	assert.Equal(t, []books.Option{
		{Value: 0, Label: "Not at all"}, {Value: 1, Label: "Several days"},
		{Value: 2, Label: "More than half the days"}, {Value: 3, Label: "Nearly every day"},
	}, phq.Items()[8].Options)

	assert.Equal(t, "gad-7", gad.ID())
	assert.Equal(t, books.KindQuestionnaire, gad.Kind())
	require.Len(t, gad.Items(), 7)
	assert.Equal(t, "Feeling nervous, anxious, or on edge", gad.Items()[0].Text)
	assert.Equal(t, "Feeling afraid, as if something awful might happen", gad.Items()[6].Text)

	_, ok := books.BuiltInBook("beck")
	assert.False(t, ok)
}

func TestPHQ9Bands(t *testing.T) {
	phq := builtIn(t, books.PHQ9ID)
	cases := []struct {
		total    int
		severity string
	}{
		{0, "minimal"}, {4, "minimal"}, {5, "mild"}, {9, "mild"}, {10, "moderate"}, {14, "moderate"},
		{15, "moderately_severe"}, {19, "moderately_severe"}, {20, "severe"}, {24, "severe"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.total), func(t *testing.T) {
			s, err := phq.Score(answersTotalling(9, c.total, "9"))
			require.NoError(t, err)
			assert.Equal(t, c.total, s.Total)
			assert.Equal(t, c.severity, s.Severity)
			assert.Empty(t, s.Flags, "item 9 is 0: no flag")
			assert.False(t, s.Urgent())
		})
	}
	t.Run("27", func(t *testing.T) {
		s, err := phq.Score(answersTotalling(9, 27))
		require.NoError(t, err)
		assert.Equal(t, 27, s.Total)
		assert.Equal(t, "severe", s.Severity)
	})
}

func TestPHQ9Item9RaisesUrgentRiskFlag(t *testing.T) {
	phq := builtIn(t, books.PHQ9ID)
	for v := 1; v <= 3; v++ {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			answers := answersTotalling(9, 0)
			answers[8].Value = v
			s, err := phq.Score(answers)
			require.NoError(t, err)
			assert.Equal(t, v, s.Total)
			assert.Equal(t, "minimal", s.Severity)
			require.Len(t, s.Flags, 1)
			f := s.Flags[0]
			assert.Equal(t, "risk", f.Kind)
			assert.Equal(t, "9", f.ItemID)
			assert.True(t, f.Urgent)
			assert.NotEmpty(t, f.Reason)
			assert.True(t, s.Urgent())
		})
	}
}

func TestGAD7Bands(t *testing.T) {
	gad := builtIn(t, books.GAD7ID)
	cases := []struct {
		total    int
		severity string
	}{
		{0, "minimal"}, {4, "minimal"}, {5, "mild"}, {9, "mild"}, {10, "moderate"}, {14, "moderate"},
		{15, "severe"}, {21, "severe"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.total), func(t *testing.T) {
			s, err := gad.Score(answersTotalling(7, c.total))
			require.NoError(t, err)
			assert.Equal(t, c.total, s.Total)
			assert.Equal(t, c.severity, s.Severity)
			assert.Empty(t, s.Flags, "GAD-7 has no flag rules")
		})
	}
}

func requireInvalidResponse(t *testing.T, err error, itemID string) {
	t.Helper()
	var de *domain.Error
	require.True(t, errors.As(err, &de), "want *domain.Error, got %T %v", err, err)
	assert.Equal(t, domain.KindValidation, de.Kind)
	assert.Equal(t, "invalid-response", de.Slug)
	assert.Equal(t, "answers."+itemID, de.Field)
	assert.Contains(t, de.Message, fmt.Sprintf("%q", itemID))
}

func TestScoreRejectsBadAnswers(t *testing.T) {
	phq := builtIn(t, books.PHQ9ID)

	t.Run("missing item", func(t *testing.T) {
		answers := answersTotalling(9, 3)
		_, err := phq.Score(append(answers[:4:4], answers[5:]...))
		requireInvalidResponse(t, err, "5")
	})
	t.Run("no answers at all", func(t *testing.T) {
		_, err := phq.Score(nil)
		requireInvalidResponse(t, err, "1")
	})
	t.Run("unknown item", func(t *testing.T) {
		_, err := phq.Score(append(answersTotalling(9, 3), books.Answer{ItemID: "10", Value: 1}))
		requireInvalidResponse(t, err, "10")
	})
	t.Run("above range", func(t *testing.T) {
		answers := answersTotalling(9, 0)
		answers[2].Value = 4
		_, err := phq.Score(answers)
		requireInvalidResponse(t, err, "3")
	})
	t.Run("below range", func(t *testing.T) {
		answers := answersTotalling(9, 0)
		answers[6].Value = -1
		_, err := phq.Score(answers)
		requireInvalidResponse(t, err, "7")
	})
	t.Run("answered twice", func(t *testing.T) {
		_, err := phq.Score(append(answersTotalling(9, 0), books.Answer{ItemID: "2", Value: 0}))
		requireInvalidResponse(t, err, "2")
	})
	t.Run("GAD-7 has no item 8", func(t *testing.T) {
		_, err := builtIn(t, books.GAD7ID).Score(answersTotalling(8, 0))
		requireInvalidResponse(t, err, "8")
	})
}

func TestScoreOfUnscoredBooks(t *testing.T) {
	module, err := books.NewBook("m1", "clinic-1", 1, books.Spec{Kind: books.KindModule, Title: "Sleep hygiene", Content: "Go to bed at the same time."})
	require.NoError(t, err)
	s, err := module.Score(nil)
	require.NoError(t, err)
	assert.Equal(t, books.Score{}, s)

	_, err = module.Score([]books.Answer{{ItemID: "1", Value: 0}})
	requireInvalidResponse(t, err, "1")

	test, err := books.NewBook("t1", "clinic-1", 1, quizSpec())
	require.NoError(t, err)
	s, err = test.Score(nil)
	require.NoError(t, err, "a test given no answers is completed unscored")
	assert.Equal(t, books.Score{}, s)

	s, err = test.Score([]books.Answer{{ItemID: "q1", Value: 1}, {ItemID: "q2", Value: 0}})
	require.NoError(t, err)
	assert.Equal(t, books.Score{Total: 1}, s, "a test without bands has a total but no severity")
}

func quizSpec() books.Spec {
	yesNo := []books.Option{{Value: 0, Label: "Wrong"}, {Value: 1, Label: "Right"}}
	return books.Spec{Kind: books.KindTest, Title: "Quiz", Items: []books.Item{
		{ID: "q1", Text: "Is sleep important?", Options: yesNo},
		{ID: "q2", Text: "Is caffeine at night fine?", Options: yesNo},
	}}
}

func TestClinicQuestionnaireScoresFromItsData(t *testing.T) {
	opts := []books.Option{{Value: 0, Label: "No"}, {Value: 2, Label: "Yes"}}
	spec := books.Spec{
		Kind: books.KindQuestionnaire, Title: "Check-in",
		Items:     []books.Item{{ID: "mood", Text: "Low mood?", Options: opts}, {ID: "harm", Text: "Thoughts of harm?", Options: opts}},
		Bands:     []books.Band{{Min: 0, Max: 1, Severity: "low", Label: "Low"}, {Min: 2, Max: 4, Severity: "high", Label: "High"}},
		FlagRules: []books.FlagRule{{ItemID: "harm", AtLeast: 2, Kind: "risk", Urgent: true, Reason: "harm reported"}},
	}
	b, err := books.NewBook("c1", "clinic-1", 1, spec)
	require.NoError(t, err)

	s, err := b.Score([]books.Answer{{ItemID: "mood", Value: 2}, {ItemID: "harm", Value: 0}})
	require.NoError(t, err)
	assert.Equal(t, books.Score{Total: 2, Severity: "high"}, s)

	s, err = b.Score([]books.Answer{{ItemID: "mood", Value: 0}, {ItemID: "harm", Value: 2}})
	require.NoError(t, err)
	assert.Equal(t, []books.Flag{{Kind: "risk", ItemID: "harm", Urgent: true, Reason: "harm reported"}}, s.Flags)

	_, err = b.Score([]books.Answer{{ItemID: "mood", Value: 1}, {ItemID: "harm", Value: 0}})
	requireInvalidResponse(t, err, "mood")
}
