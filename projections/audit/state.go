package audit

import (
	"time"

	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/organization"
)

// The states below are what time travel and Diff show. They are the care
// team's view of a session as facts and figures (status, dates, who acted,
// scores, how many messages) and leave out every written body: message,
// discussion, note, feedback and comment text, answers, reasons and the
// session's description. A reviewer reads those, where allowed, through
// the care views; the audit side never copies them.

// SessionState is a session as the care team saw it.
type SessionState struct {
	SessionID   string          `json:"sessionId"`
	ClinicID    string          `json:"clinicId"`
	ClientID    string          `json:"clientId"`
	ProviderID  string          `json:"providerId"`
	ScheduledBy string          `json:"scheduledBy"`
	Title       string          `json:"title"`
	Status      string          `json:"status"`
	Start       time.Time       `json:"start"`
	End         time.Time       `json:"end"`
	Reminders   []int           `json:"reminderDays,omitempty"`
	Series      *care.SeriesRef `json:"series,omitempty"`
	Plan        *care.PlanRef   `json:"plan,omitempty"`
	ScheduledAt time.Time       `json:"scheduledAt"`
	ActivatedAt time.Time       `json:"activatedAt,omitzero"`
	ClosedAt    time.Time       `json:"closedAt,omitzero"`
	ClosedBy    string          `json:"closedBy,omitempty"`
	ClosedEarly bool            `json:"closedEarly,omitempty"`
	CancelledAt time.Time       `json:"cancelledAt,omitzero"`
	CancelledBy string          `json:"cancelledBy,omitempty"`
	// Assignments in the order they were given.
	Assignments []AssignmentState `json:"assignments"`
	Messages    int               `json:"messages"`
	Discussion  int               `json:"discussion"`
	Notes       int               `json:"notes"`
}

// AssignmentState is one assignment as the care team saw it.
type AssignmentState struct {
	AssignmentID string    `json:"assignmentId"`
	BookID       string    `json:"bookId"`
	BookVersion  int       `json:"bookVersion"`
	BookKind     string    `json:"bookKind"`
	BookTitle    string    `json:"bookTitle"`
	Due          time.Time `json:"due"`
	GivenBy      string    `json:"givenBy"`
	GivenAt      time.Time `json:"givenAt"`
	Status       string    `json:"status"`
	StartedAt    time.Time `json:"startedAt,omitzero"`
	CompletedAt  time.Time `json:"completedAt,omitzero"`
	Overdue      bool      `json:"overdue"`
	// Done: completed and given feedback, so it no longer holds the
	// session open.
	Done bool `json:"done"`
	// Answered counts the answers submitted (the answers are not shown).
	Answered int         `json:"answered"`
	Scored   bool        `json:"scored"`
	Score    *ScoreState `json:"score,omitempty"`
	// Feedback in the order it was given.
	Feedback []FeedbackState `json:"feedback"`
}

// ScoreState is the outcome of a scored assignment.
type ScoreState struct {
	Total    int         `json:"total"`
	Severity string      `json:"severity,omitempty"`
	Flags    []FlagState `json:"flags,omitempty"`
	Urgent   bool        `json:"urgent"`
}

// FlagState is a flag the answers raised (the book's rule, not the client's
// words).
type FlagState struct {
	Kind   string `json:"kind"`
	ItemID string `json:"itemId"`
	Urgent bool   `json:"urgent"`
}

// FeedbackState is one feedback and the size of its comment thread.
type FeedbackState struct {
	FeedbackID string    `json:"feedbackId"`
	By         string    `json:"by"`
	At         time.Time `json:"at"`
	Comments   int       `json:"comments"`
}

// ClientState is a client's record without their name: clinic, care team
// and whether they are in care.
type ClientState struct {
	ClientID string   `json:"clientId"`
	ClinicID string   `json:"clinicId"`
	CareTeam []string `json:"careTeam"`
	Active   bool     `json:"active"`
}

// SessionStateOf returns the audit view of a session's state.
func SessionStateOf(v care.SessionView) SessionState {
	out := SessionState{
		SessionID: v.ID, ClinicID: v.ClinicID, ClientID: v.ClientID, ProviderID: v.ProviderID,
		ScheduledBy: v.ScheduledBy, Title: v.Title, Status: string(v.State),
		Start: v.Start.UTC(), End: v.End.UTC(), Reminders: cloneInts(v.ReminderDays),
		ScheduledAt: v.ScheduledAt.UTC(), ActivatedAt: v.ActivatedAt.UTC(),
		ClosedAt: v.ClosedAt.UTC(), ClosedBy: v.ClosedBy, ClosedEarly: v.ClosedEarly,
		CancelledAt: v.CancelledAt.UTC(), CancelledBy: v.CancelledBy,
		Assignments: []AssignmentState{},
		Messages:    len(v.Messages), Discussion: len(v.Discussion), Notes: len(v.Notes),
	}
	if v.Series != nil {
		s := *v.Series
		out.Series = &s
	}
	if v.Plan != nil {
		p := *v.Plan
		out.Plan = &p
	}
	for _, a := range v.Assignments {
		out.Assignments = append(out.Assignments, AssignmentStateOf(a))
	}
	return out
}

// AssignmentStateOf returns the audit view of an assignment's state.
func AssignmentStateOf(a care.AssignmentView) AssignmentState {
	out := AssignmentState{
		AssignmentID: a.ID, BookID: a.BookID, BookVersion: a.BookVersion, BookKind: string(a.BookKind),
		BookTitle: a.BookTitle, Due: a.Due.UTC(), GivenBy: a.GivenBy, GivenAt: a.GivenAt.UTC(),
		Status: string(a.Status), StartedAt: a.StartedAt.UTC(), CompletedAt: a.CompletedAt.UTC(),
		Overdue: a.Overdue, Done: a.Done(), Answered: len(a.Answers), Scored: a.Scored,
		Feedback: []FeedbackState{},
	}
	if a.Scored {
		score := &ScoreState{Total: a.Score.Total, Severity: a.Score.Severity, Urgent: a.Score.Urgent()}
		for _, f := range a.Score.Flags {
			score.Flags = append(score.Flags, FlagState{Kind: f.Kind, ItemID: f.ItemID, Urgent: f.Urgent})
		}
		out.Score = score
	}
	for _, f := range a.Feedback {
		out.Feedback = append(out.Feedback, FeedbackState{FeedbackID: f.ID, By: f.By, At: f.At.UTC(), Comments: len(f.Comments)})
	}
	return out
}

// ClientStateOf returns the audit view of a client's state.
func ClientStateOf(c *organization.Client) ClientState {
	team := c.CareTeam()
	if team == nil {
		team = []string{}
	}
	return ClientState{ClientID: c.ID(), ClinicID: c.ClinicID(), CareTeam: team, Active: c.Active()}
}

func cloneInts(v []int) []int {
	if len(v) == 0 {
		return nil
	}
	return append([]int(nil), v...)
}
