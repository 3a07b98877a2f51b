package care_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
)

// sampleEvents has one fully populated value of every event type.
func sampleEvents() []domain.Event {
	at := t0.Add(90 * time.Minute)
	return []domain.Event{
		care.SessionScheduled{SessionID: "s", ClinicID: "c", ClientID: "k", ProviderID: "p", ScheduledBy: "q", Title: "T",
			Description: "D", Start: t0, End: t0.Add(week), ReminderDays: []int{2, 1},
			Series: &care.SeriesRef{ID: "x", Index: 2, Count: 3}, Plan: &care.PlanRef{PlanID: "pl", Week: 2}, At: at},
		care.SessionActivated{SessionID: "s", ClientID: "k", At: at},
		care.SessionRescheduled{SessionID: "s", ClientID: "k", By: "p", PreviousStart: t0, PreviousEnd: t0.Add(week),
			Start: t0.Add(week), End: t0.Add(2 * week), Dues: []care.DueMove{{AssignmentID: "a", Due: t0.Add(2 * week)}}, At: at},
		care.SessionCancelled{SessionID: "s", ClientID: "k", By: "p", Reason: "r", At: at},
		care.SessionClosed{SessionID: "s", ClientID: "k", By: "p", Reason: "r", Early: true, OpenAssignments: []string{"a"}, At: at},
		care.AssignmentGiven{SessionID: "s", ClientID: "k", AssignmentID: "a", BookID: "phq-9", BookVersion: 1,
			BookKind: books.KindQuestionnaire, BookTitle: "PHQ-9", Due: t0.Add(week), ReminderDays: []int{1}, By: "p", At: at},
		care.AssignmentStarted{SessionID: "s", ClientID: "k", AssignmentID: "a", At: at},
		care.AssignmentCompleted{SessionID: "s", ClientID: "k", ProviderID: "p", AssignmentID: "a", BookID: "phq-9", BookVersion: 1,
			Answers: []books.Answer{{ItemID: "9", Value: 1}}, Scored: true, Total: 1, Severity: "minimal",
			Flags: []books.Flag{{Kind: "risk", ItemID: "9", Urgent: true, Reason: "why"}}, Urgent: true, At: at},
		care.AssignmentOverdue{SessionID: "s", ClientID: "k", AssignmentID: "a", Due: t0.Add(week), At: at},
		care.AssignmentFeedbackGiven{SessionID: "s", ClientID: "k", AssignmentID: "a", FeedbackID: "f", By: "p", Text: "t", At: at},
		care.AssignmentCommentPosted{SessionID: "s", ClientID: "k", AssignmentID: "a", FeedbackID: "f", CommentID: "c",
			AuthorID: "k", AuthorRole: domain.RoleClient, Text: "t", At: at},
		care.SessionMessagePosted{SessionID: "s", ClientID: "k", MessageID: "m", AuthorID: "p", AuthorRole: domain.RoleProvider, Text: "t", At: at},
		care.SessionDiscussionPosted{SessionID: "s", ClientID: "k", PostID: "d", AuthorID: "p", Text: "t", At: at},
		care.SessionNoteWritten{SessionID: "s", ClientID: "k", NoteID: "n", AuthorID: "p", Text: "t", At: at},
	}
}

func TestEveryEventSurvivesAJSONRoundTrip(t *testing.T) {
	samples := sampleEvents()
	require.Len(t, samples, len(care.Events()), "a sample for every event type")
	for _, e := range samples {
		t.Run(e.EventType(), func(t *testing.T) {
			v := reflect.ValueOf(e)
			for i := range v.NumField() {
				assert.False(t, v.Field(i).IsZero(), "sample leaves %s empty", v.Type().Field(i).Name)
			}
			data, err := json.Marshal(e)
			require.NoError(t, err)
			back := reflect.New(v.Type())
			require.NoError(t, json.Unmarshal(data, back.Interface()))
			assert.Equal(t, e, back.Elem().Interface())
		})
	}
}

func TestEveryEventCarriesTheSessionAndTheClient(t *testing.T) {
	for _, e := range sampleEvents() {
		data, err := json.Marshal(e)
		require.NoError(t, err)
		var fields map[string]any
		require.NoError(t, json.Unmarshal(data, &fields))
		assert.Contains(t, fields, "sessionId", e.EventType())
		assert.Contains(t, fields, "clientId", e.EventType())
		assert.Contains(t, fields, "at", e.EventType())
	}
}
