package care_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
)

var (
	t0       = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // session start
	week     = 7 * 24 * time.Hour
	client   = domain.Actor{ID: "client-1", Role: domain.RoleClient}
	other    = domain.Actor{ID: "client-2", Role: domain.RoleClient}
	provider = domain.Actor{ID: "provider-1", Role: domain.RoleProvider}
	peer     = domain.Actor{ID: "provider-2", Role: domain.RoleProvider}
)

func phq9() books.Book {
	b, _ := books.BuiltInBook(books.PHQ9ID)
	return b
}

func gad7() books.Book {
	b, _ := books.BuiltInBook(books.GAD7ID)
	return b
}

// answers gives every item of b the values in order (the last repeats).
func answers(b books.Book, values ...int) []books.Answer {
	var out []books.Answer
	for i, it := range b.Items() {
		out = append(out, books.Answer{ItemID: it.ID, Value: values[min(i, len(values)-1)]})
	}
	return out
}

// version is a catalog holding only b.
func version(b books.Book) care.BookVersion {
	return func(string, int) (books.Book, error) { return b, nil }
}

func scheduled() care.SessionScheduled {
	return care.SessionScheduled{
		SessionID: "s-1", ClinicID: "clinic-1", ClientID: client.ID, ProviderID: provider.ID, ScheduledBy: provider.ID,
		Title: "Week 1", Start: t0, End: t0.Add(week), At: t0.Add(-24 * time.Hour),
	}
}

func activated() care.SessionActivated {
	return care.SessionActivated{SessionID: "s-1", ClientID: client.ID, At: t0}
}

func given(id string, b books.Book) care.AssignmentGiven {
	return care.AssignmentGiven{
		SessionID: "s-1", ClientID: client.ID, AssignmentID: id, BookID: b.ID(), BookVersion: b.Version(),
		BookKind: b.Kind(), BookTitle: b.Title(), Due: t0.Add(week), By: provider.ID, At: t0,
	}
}

func completed(id string) care.AssignmentCompleted {
	return care.AssignmentCompleted{
		SessionID: "s-1", ClientID: client.ID, ProviderID: provider.ID, AssignmentID: id, BookID: books.GAD7ID, BookVersion: 1,
		Answers: answers(gad7(), 0), Scored: true, Severity: "minimal", At: t0.Add(time.Hour),
	}
}

func feedback(assignmentID, feedbackID string) care.AssignmentFeedbackGiven {
	return care.AssignmentFeedbackGiven{
		SessionID: "s-1", ClientID: client.ID, AssignmentID: assignmentID, FeedbackID: feedbackID,
		By: provider.ID, Text: "Well done", At: t0.Add(2 * time.Hour),
	}
}

func closed() care.SessionClosed {
	return care.SessionClosed{SessionID: "s-1", ClientID: client.ID, By: provider.ID, Reason: "done early", Early: false, At: t0.Add(3 * time.Hour)}
}

func cancelled() care.SessionCancelled {
	return care.SessionCancelled{SessionID: "s-1", ClientID: client.ID, By: provider.ID, Reason: "client unwell", At: t0.Add(time.Hour)}
}

// givenSession rebuilds a session from history, as a load would.
func givenSession(history ...domain.Event) *care.Session {
	s := care.New()
	for _, e := range history {
		s.Replay(e)
	}
	return s
}

// requireRecorded checks the events a decision recorded, in order, and
// that replaying history plus them gives the same state.
func requireRecorded(t *testing.T, s *care.Session, history []domain.Event, want ...domain.Event) {
	t.Helper()
	require.Equal(t, want, s.Pending())
	rebuilt := givenSession(append(append([]domain.Event(nil), history...), s.Pending()...)...)
	require.Equal(t, s.View(), rebuilt.View())
}

func requireRefused(t *testing.T, err error, kind domain.Kind, slug string) {
	t.Helper()
	require.Error(t, err)
	var de *domain.Error
	require.True(t, errors.As(err, &de), "want a *domain.Error, got %T: %v", err, err)
	require.Equal(t, slug, de.Slug, err.Error())
	require.Equal(t, kind, de.Kind, err.Error())
}
