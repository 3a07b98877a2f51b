package commands_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
)

func TestClientAndTeamPostMessages(t *testing.T) {
	w := newCareWorld(t)
	id := w.schedule()
	v := w.version(id)
	fromClient, err := w.care.PostMessage(w.ctx, careMeta(w.k1), commands.PostMessage{SessionID: id, Text: "When do we start?"})
	require.NoError(t, err)
	fromTeam, err := w.care.PostMessage(w.ctx, careMeta(w.p2), commands.PostMessage{SessionID: id, Text: "Monday."})
	require.NoError(t, err)
	assert.NotEqual(t, fromClient.ID, fromTeam.ID)
	now := w.clock()
	w.then(id, v,
		care.SessionMessagePosted{SessionID: id, ClientID: w.k1.ID, MessageID: fromClient.ID, AuthorID: w.k1.ID, AuthorRole: domain.RoleClient, Text: "When do we start?", At: now},
		care.SessionMessagePosted{SessionID: id, ClientID: w.k1.ID, MessageID: fromTeam.ID, AuthorID: w.p2.ID, AuthorRole: domain.RoleProvider, Text: "Monday.", At: now},
	)
	before := w.head()
	_, err = w.care.PostMessage(w.ctx, careMeta(w.k1), commands.PostMessage{SessionID: id, Text: strings.Repeat("x", 20_001)})
	w.refused(err, before, domain.KindValidation, "text-too-long")
	_, err = w.care.PostMessage(w.ctx, careMeta(w.k1), commands.PostMessage{SessionID: id, Text: "  "})
	w.refused(err, before, domain.KindValidation, "text-required")
}

func TestDiscussionAmongProviders(t *testing.T) {
	w := newCareWorld(t)
	id := w.schedule()
	v := w.version(id)
	post, err := w.care.PostDiscussion(w.ctx, careMeta(w.p2), commands.PostDiscussion{SessionID: id, Text: "Consider a GAD-7 too"})
	require.NoError(t, err)
	w.then(id, v, care.SessionDiscussionPosted{SessionID: id, ClientID: w.k1.ID, PostID: post.ID, AuthorID: w.p2.ID, Text: "Consider a GAD-7 too", At: w.clock()})
}

func TestNotesAfterTheSessionCloses(t *testing.T) {
	w := newCareWorld(t)
	id, _ := w.active()
	_, err := w.care.CloseSession(w.ctx, careMeta(w.p1), commands.CloseSession{SessionID: id})
	require.NoError(t, err)
	v := w.version(id)
	note, err := w.care.WriteNote(w.ctx, careMeta(w.p1), commands.WriteNote{SessionID: id, Text: "Engaged well; next week sleep hygiene"})
	require.NoError(t, err)
	w.then(id, v, care.SessionNoteWritten{SessionID: id, ClientID: w.k1.ID, NoteID: note.ID, AuthorID: w.p1.ID, Text: "Engaged well; next week sleep hygiene", At: w.clock()})
}

func TestTeamChangesTakeEffectAtOnce(t *testing.T) {
	w := newCareWorld(t)
	id := w.schedule()
	_, err := w.org.ChangeCareTeam(w.ctx, careMeta(w.p1), commands.ChangeCareTeam{ClientID: w.k1.ID, CareTeam: []string{w.p1.ID, w.p3.ID}})
	require.NoError(t, err)
	before := w.head()
	_, err = w.care.PostMessage(w.ctx, careMeta(w.p2), commands.PostMessage{SessionID: id, Text: "still here?"})
	w.refused(err, before, domain.KindForbidden, "not-on-care-team")
	_, err = w.care.PostMessage(w.ctx, careMeta(w.p3), commands.PostMessage{SessionID: id, Text: "joined"})
	require.NoError(t, err)
}

func TestConcurrentMessagesAllLandOrAreRefusedWhole(t *testing.T) {
	w := newCareWorld(t)
	id := w.schedule()
	const writers = 4
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			author := []domain.Actor{w.k1, w.p1, w.p2}[i%3]
			_, err := w.care.PostMessage(w.ctx, careMeta(author), commands.PostMessage{SessionID: id, Text: fmt.Sprintf("message %d", i)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	landed := 0
	for err := range errs {
		if err == nil {
			landed++
			continue
		}
		// Only a writer that lost the race MaxAttempts times may fail.
		require.ErrorIs(t, err, eventstore.ErrConcurrency)
	}
	require.Positive(t, landed)
	assert.Len(t, w.session(id).View().Messages, landed, "every acknowledged message is stored once")
	assert.Equal(t, int64(1+landed), w.version(id))
}
