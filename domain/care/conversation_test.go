package care_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
)

func TestClientAndProvidersPostMessages(t *testing.T) {
	history := []domain.Event{scheduled()}
	s := givenSession(history...)
	require.NoError(t, s.PostMessage("m-1", client, "Hello", t0))
	require.NoError(t, s.PostMessage("m-2", peer, "Welcome", t0.Add(time.Minute)))
	requireRecorded(t, s, history,
		care.SessionMessagePosted{SessionID: "s-1", ClientID: client.ID, MessageID: "m-1", AuthorID: client.ID, AuthorRole: domain.RoleClient, Text: "Hello", At: t0},
		care.SessionMessagePosted{SessionID: "s-1", ClientID: client.ID, MessageID: "m-2", AuthorID: peer.ID, AuthorRole: domain.RoleProvider, Text: "Welcome", At: t0.Add(time.Minute)},
	)
	requireRefused(t, s.PostMessage("m-1", client, "again", t0), domain.KindConflict, "post-exists")
}

func TestMessageRefusals(t *testing.T) {
	s := givenSession(scheduled(), activated())
	requireRefused(t, s.PostMessage("m-1", other, "hi", t0), domain.KindNotFound, "session-not-found")
	requireRefused(t, s.PostMessage("m-1", domain.Actor{ID: "admin", Role: domain.RoleClinicAdmin}, "hi", t0), domain.KindForbidden, "forbidden")
	requireRefused(t, s.PostMessage("m-1", client, strings.Repeat("x", 20_001), t0), domain.KindValidation, "text-too-long")
	requireRefused(t, s.PostMessage("", client, "hi", t0), domain.KindValidation, "messageId-required")
	requireRefused(t, givenSession(scheduled(), activated(), closed()).PostMessage("m-1", client, "hi", t0), domain.KindConflict, "session-closed")
	requireRefused(t, givenSession(scheduled(), cancelled()).PostMessage("m-1", provider, "hi", t0), domain.KindConflict, "session-cancelled")
}

func TestDiscussionIsForProvidersOnly(t *testing.T) {
	history := []domain.Event{scheduled(), activated()}
	s := givenSession(history...)
	requireRefused(t, s.PostDiscussion("d-1", client, "can I see?", t0), domain.KindForbidden, "forbidden")
	require.NoError(t, s.PostDiscussion("d-1", peer, "Scores are rising", t0))
	requireRecorded(t, s, history, care.SessionDiscussionPosted{SessionID: "s-1", ClientID: client.ID, PostID: "d-1", AuthorID: peer.ID, Text: "Scores are rising", At: t0})
	requireRefused(t, givenSession(scheduled(), activated(), closed()).PostDiscussion("d-1", peer, "x", t0), domain.KindConflict, "session-closed")
}

func TestNotesAreForProvidersAndOutliveTheSession(t *testing.T) {
	history := []domain.Event{scheduled(), activated(), closed()}
	s := givenSession(history...)
	requireRefused(t, s.WriteNote("n-1", client, "note", t0), domain.KindForbidden, "forbidden")
	require.NoError(t, s.WriteNote("n-1", provider, "Engaged well", t0.Add(week)))
	requireRecorded(t, s, history, care.SessionNoteWritten{SessionID: "s-1", ClientID: client.ID, NoteID: "n-1", AuthorID: provider.ID, Text: "Engaged well", At: t0.Add(week)})
	requireRefused(t, care.New().WriteNote("n-1", provider, "x", t0), domain.KindNotFound, "session-not-found")
	assert.Len(t, s.View().Notes, 1)
}

func TestEventsListsEveryTypeOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range care.Events() {
		assert.False(t, seen[e.EventType()], e.EventType())
		seen[e.EventType()] = true
	}
	for _, name := range []string{"session.scheduled", "session.activated", "session.rescheduled", "session.cancelled",
		"session.closed", "assignment.given", "assignment.started", "assignment.completed", "assignment.overdue",
		"assignment.feedback_given", "assignment.comment_posted", "session.message_posted",
		"session.discussion_posted", "session.note_written"} {
		assert.True(t, seen[name], name)
	}
}
