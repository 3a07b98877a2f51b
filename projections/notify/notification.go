// Package notify keeps the notifications careflow raises for its users —
// a read model per recipient — and delivers them through a Deliverer (a log
// or e-mail over SMTP).
//
// A notification never carries PHI: it names what happened by kind and ids
// ("client X completed phq-9, urgent risk flag"), never by content (no
// answers, titles or free text). The recipient signs in to read the rest.
package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Kind says what a notification is about. The names are stable.
type Kind string

const (
	// KindAssignmentCompleted goes to every provider on the care team when
	// the client completes an assignment; Urgent when a flag must reach
	// the team at once (PHQ-9 item 9).
	KindAssignmentCompleted Kind = "assignment.completed"
	// KindAssignmentReminder goes to the client a number of days before an
	// assignment is due.
	KindAssignmentReminder Kind = "assignment.reminder"
	// KindWebhookDisabled goes to the clinic admin who registered a
	// webhook endpoint that kept failing for the whole retry window.
	KindWebhookDisabled Kind = "webhook.disabled"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case KindAssignmentCompleted, KindAssignmentReminder, KindWebhookDisabled:
		return true
	}
	return false
}

// Notification is one thing a recipient should know about. Only ids,
// kinds and times: see the package comment.
type Notification struct {
	ID          string
	RecipientID string
	Kind        Kind
	Urgent      bool
	ClinicID    string
	ClientID    string
	SessionID   string
	// AssignmentID and BookID name the assignment (and what was
	// assigned, e.g. "phq-9") for assignment kinds.
	AssignmentID string
	BookID       string
	// Flags are the kinds of the flags a completion raised ("risk"),
	// never their reasons.
	Flags []string
	// ReminderDays is how many days before the due date a reminder is.
	ReminderDays int
	// Due is the assignment's due date for reminders.
	Due time.Time
	// WebhookID names the endpoint of a webhook kind.
	WebhookID string
	// EventID is the event that caused the notification, if any.
	EventID   string
	CreatedAt time.Time
	// ReadAt is zero while unread.
	ReadAt time.Time
	// DeliveredAt is zero until a Deliverer took it.
	DeliveredAt time.Time
}

// Read reports whether the recipient marked it read.
func (n Notification) Read() bool { return !n.ReadAt.IsZero() }

// Summary is a one-line, PHI-free description made of kinds and ids.
func (n Notification) Summary() string {
	var b strings.Builder
	switch n.Kind {
	case KindAssignmentCompleted:
		fmt.Fprintf(&b, "client %s completed %s (assignment %s, session %s)", n.ClientID, bookOrAssignment(n), n.AssignmentID, n.SessionID)
		if n.Urgent {
			b.WriteString(" — urgent")
			if len(n.Flags) > 0 {
				fmt.Fprintf(&b, " %s flag", strings.Join(n.Flags, ", "))
			}
		}
	case KindAssignmentReminder:
		fmt.Fprintf(&b, "%s is due %s (assignment %s, session %s)", bookOrAssignment(n), n.Due.UTC().Format(time.RFC3339), n.AssignmentID, n.SessionID)
	case KindWebhookDisabled:
		fmt.Fprintf(&b, "webhook endpoint %s of clinic %s was disabled after failing deliveries for the whole retry window", n.WebhookID, n.ClinicID)
	default:
		fmt.Fprintf(&b, "%s notification %s", n.Kind, n.ID)
	}
	return b.String()
}

func bookOrAssignment(n Notification) string {
	if n.BookID != "" {
		return n.BookID
	}
	return "an assignment"
}

// idNamespace seeds notification ids derived from what caused them.
var idNamespace = uuid.MustParse("9a3d6c52-71e4-4b0f-8f6e-2d5b1c7a4e18")

// DeriveID returns the id of the notification of kind for recipient caused
// by cause (an event id, a timer id): the same cause always gives the same
// id, so a repeated handler adds nothing.
func DeriveID(kind Kind, recipientID, cause string) string {
	return uuid.NewSHA1(idNamespace, []byte(string(kind)+"\x00"+recipientID+"\x00"+cause)).String()
}
