package care_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
)

func TestNewPeriodDefaultsToAWeek(t *testing.T) {
	p, err := care.NewPeriod(t0, 0)
	require.NoError(t, err)
	assert.Equal(t, t0, p.Start())
	assert.Equal(t, t0.Add(week), p.End())
}

func TestNewPeriodNormalizesToUTC(t *testing.T) {
	local := t0.In(time.FixedZone("CET", 3600))
	p, err := care.NewPeriod(local, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, time.UTC, p.Start().Location())
	assert.True(t, p.Start().Equal(t0))
}

func TestNewPeriodRefusesBadDates(t *testing.T) {
	_, err := care.NewPeriod(time.Time{}, week)
	requireRefused(t, err, domain.KindValidation, "start-required")
	for _, length := range []time.Duration{-week, time.Minute, care.MaxLength + time.Hour} {
		_, err := care.NewPeriod(t0, length)
		requireRefused(t, err, domain.KindValidation, "length-out-of-range")
	}
}

func TestSeriesPeriodsAreBackToBack(t *testing.T) {
	ps, err := care.SeriesPeriods(t0, 3*24*time.Hour, 3)
	require.NoError(t, err)
	require.Len(t, ps, 3)
	for i := 1; i < len(ps); i++ {
		assert.Equal(t, ps[i-1].End(), ps[i].Start())
		assert.Equal(t, 3*24*time.Hour, ps[i].Length())
	}
	one, err := care.SeriesPeriods(t0, 0, 0)
	require.NoError(t, err)
	assert.Len(t, one, 1, "repeat 0 means one session")
	max, err := care.SeriesPeriods(t0, 0, care.MaxRepeat)
	require.NoError(t, err)
	assert.Len(t, max, care.MaxRepeat)
}

func TestSeriesPeriodsRefusesRepeatOutOfRange(t *testing.T) {
	for _, n := range []int{-1, care.MaxRepeat + 1} {
		_, err := care.SeriesPeriods(t0, 0, n)
		requireRefused(t, err, domain.KindValidation, "repeat-out-of-range")
	}
}

func TestNewRemindersSortsLargestFirst(t *testing.T) {
	r, err := care.NewReminders([]int{1, 3, 0})
	require.NoError(t, err)
	assert.Equal(t, []int{3, 1, 0}, r.Days())
	none, err := care.NewReminders(nil)
	require.NoError(t, err)
	assert.Nil(t, none.Days())
}

func TestNewRemindersRefusesBadOffsets(t *testing.T) {
	for name, days := range map[string][]int{
		"negative":  {-1},
		"too far":   {care.MaxReminder + 1},
		"duplicate": {2, 2},
		"too many":  {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := care.NewReminders(days)
			requireRefused(t, err, domain.KindValidation, "reminders-invalid")
		})
	}
}

func TestNewSpecReportsEveryProblemAtOnce(t *testing.T) {
	_, err := care.NewSpec(care.SpecInput{Title: "  "})
	var errs domain.ValidationErrors
	require.ErrorAs(t, err, &errs)
	var slugs []string
	for _, e := range errs {
		slugs = append(slugs, e.Slug)
	}
	assert.ElementsMatch(t, []string{"clinicId-required", "clientId-required", "providerId-required",
		"scheduledBy-required", "title-required", "start-required"}, slugs)
}

func TestNewSpecRefusesLongTexts(t *testing.T) {
	p, _ := care.NewPeriod(t0, 0)
	in := care.SpecInput{ClinicID: "c", ClientID: "cl", ProviderID: "p", ScheduledBy: "p", Title: string(make([]rune, 201)), Period: p}
	_, err := care.NewSpec(in)
	var errs domain.ValidationErrors
	require.ErrorAs(t, err, &errs)
	assert.Equal(t, "title-too-long", errs[0].Slug)
}
