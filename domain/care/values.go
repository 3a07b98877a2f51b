package care

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/careflow/careflow/domain"
)

// Limits of what a session accepts. They are generous for people and keep
// a single event small.
const (
	DefaultLength = 7 * 24 * time.Hour // a session normally lasts a week
	MinLength     = time.Hour
	MaxLength     = 365 * 24 * time.Hour
	MaxRepeat     = 52 // a year of weekly sessions
	MaxReminders  = 10
	MaxReminder   = 365 // days before due

	MaxTitle       = 200
	maxDescription = 10_000
	maxText        = 20_000
	maxReason      = 2_000
)

// Period is when a session runs: from Start (inclusive) to End.
type Period struct {
	start, end time.Time
}

// NewPeriod validates a start and a length; a zero length means the
// default week.
func NewPeriod(start time.Time, length time.Duration) (Period, error) {
	if start.IsZero() {
		return Period{}, domain.Validation("start-required", "start", "a session needs a start time")
	}
	if length == 0 {
		length = DefaultLength
	}
	if length < MinLength || length > MaxLength {
		return Period{}, domain.Validation("length-out-of-range", "length",
			"a session lasts from %s to %s, not %s", MinLength, MaxLength, length)
	}
	start = instant(start)
	return Period{start: start, end: start.Add(length)}, nil
}

// SeriesPeriods returns repeat back-to-back periods: each starts when the
// previous one ends.
func SeriesPeriods(start time.Time, length time.Duration, repeat int) ([]Period, error) {
	if repeat == 0 {
		repeat = 1
	}
	if repeat < 1 || repeat > MaxRepeat {
		return nil, domain.Validation("repeat-out-of-range", "repeat", "repeat must be 1 to %d, not %d", MaxRepeat, repeat)
	}
	first, err := NewPeriod(start, length)
	if err != nil {
		return nil, err
	}
	out := make([]Period, repeat)
	out[0] = first
	for i := 1; i < repeat; i++ {
		out[i] = out[i-1].Next()
	}
	return out, nil
}

// Next is the period of the same length that starts when p ends.
func (p Period) Next() Period { return Period{start: p.end, end: p.end.Add(p.Length())} }

func (p Period) Start() time.Time          { return p.start }
func (p Period) End() time.Time            { return p.end }
func (p Period) Length() time.Duration     { return p.end.Sub(p.start) }
func (p Period) IsZero() bool              { return p.start.IsZero() }
func (p Period) contains(t time.Time) bool { return t.After(p.start) && !t.After(p.end) }

// Reminders are days before a due date at which the client is reminded.
type Reminders struct {
	days []int // distinct, descending
}

// NewReminders validates reminder offsets in days before the due date.
func NewReminders(days []int) (Reminders, error) {
	if len(days) > MaxReminders {
		return Reminders{}, domain.Validation("reminders-invalid", "reminders", "at most %d reminders, not %d", MaxReminders, len(days))
	}
	seen := map[int]bool{}
	for _, d := range days {
		if d < 0 || d > MaxReminder {
			return Reminders{}, domain.Validation("reminders-invalid", "reminders", "a reminder is 0 to %d days before the due date, not %d", MaxReminder, d)
		}
		if seen[d] {
			return Reminders{}, domain.Validation("reminders-invalid", "reminders", "reminder %d days before is given twice", d)
		}
		seen[d] = true
	}
	if len(days) == 0 {
		return Reminders{}, nil
	}
	sorted := slices.Clone(days)
	slices.Sort(sorted)
	slices.Reverse(sorted)
	return Reminders{days: sorted}, nil
}

// Days returns the offsets, largest first (nil when there are none).
func (r Reminders) Days() []int { return slices.Clone(r.days) }

// text checks a free-text field: trimmed, required or optional, bounded.
func text(field, value string, required bool, limit int) (string, error) {
	value = strings.TrimSpace(value)
	if required && value == "" {
		return "", domain.Validation(field+"-required", field, "%s is required", field)
	}
	if n := utf8.RuneCountInString(value); n > limit {
		return "", domain.Validation(field+"-too-long", field, "%s is %d characters; at most %d", field, n, limit)
	}
	return value, nil
}

// instant normalizes a time as it will read back from the store: UTC and
// without a monotonic reading, so live and replayed state compare equal.
func instant(t time.Time) time.Time { return t.Round(0).UTC() }
