package audit

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/careflow/careflow/eventstore"
)

func TestReferencesReadOnlyIDs(t *testing.T) {
	refs := referencesOf(json.RawMessage(`{"clientId":"k1","assignmentId":"a1","feedbackId":"f1","commentId":"c1","text":"secret"}`))
	assert.Equal(t, "k1", refs.ClientID)
	assert.Equal(t, "comment:c1", refs.subject(), "the most specific thing")
	assert.Equal(t, "assignment:a1", references{AssignmentID: "a1"}.subject())
	assert.Equal(t, "note:n1", references{NoteID: "n1"}.subject())
	assert.Equal(t, "discussion:d1", references{PostID: "d1"}.subject())
	assert.Empty(t, references{}.subject())

	// Odd shapes are read as absent, never as a failure.
	assert.Empty(t, referencesOf(json.RawMessage(`{"clientId":7}`)).ClientID)
	assert.Empty(t, referencesOf(json.RawMessage(`not json`)).ClientID)
}

func TestLinkRules(t *testing.T) {
	event := func(typ, id string, version int64, data string) eventstore.RecordedEvent {
		return eventstore.RecordedEvent{Stream: eventstore.NewStreamID(typ, id), Version: version, Type: "x", Data: json.RawMessage(data)}
	}
	link1 := func(e eventstore.RecordedEvent, owner string) linking { return link(e, referencesOf(e.Data), owner) }

	own := link1(event("client", "k1", 3, `{"clientId":"k1"}`), "")
	assert.Equal(t, linking{clients: []string{"k1"}}, own, "a client's own stream; no link needed")

	opened := link1(event("session", "s1", 1, `{"clientId":"k1"}`), "")
	assert.Equal(t, linking{clients: []string{"k1"}, owner: "k1"}, opened)

	later := link1(event("session", "s1", 5, `{}`), "k1")
	assert.Equal(t, linking{clients: []string{"k1"}}, later, "later events follow the stream's client")

	named := link1(event("provider", "p1", 4, `{"clientId":"k2"}`), "")
	assert.Equal(t, linking{clients: []string{"k2"}}, named, "naming a client later in a stream does not make it theirs")

	both := link1(event("session", "s1", 6, `{"clientId":"k2"}`), "k1")
	assert.Equal(t, linking{clients: []string{"k1", "k2"}}, both)

	none := link1(event("clinic", "c1", 1, `{"clinicId":"c1"}`), "")
	assert.Equal(t, linking{}, none)
}

func BenchmarkReferencesOf(b *testing.B) {
	data := json.RawMessage(`{"sessionId":"0190c3d2-aaaa-bbbb-cccc-000000000001","clientId":"0190c3d2-aaaa-bbbb-cccc-000000000002","messageId":"0190c3d2-aaaa-bbbb-cccc-000000000003","authorId":"p1","authorRole":"provider","text":"hello there, how was your week? I hope the exercises helped a bit.","at":"2026-03-02T09:00:00Z"}`)
	for b.Loop() {
		if referencesOf(data).ClientID == "" {
			b.Fatal("no client")
		}
	}
}

func TestReferencesKeepTheIDsBesideAFieldOfAnotherType(t *testing.T) {
	refs := referencesOf(json.RawMessage(`{"clientId":{"nested":1},"assignmentId":"a1","noteId":null,"messageId":["m"]}`))
	assert.Equal(t, references{AssignmentID: "a1"}, refs)
	assert.Equal(t, references{}, referencesOf(json.RawMessage(`["clientId","k1"]`)))
	assert.Equal(t, references{}, referencesOf(json.RawMessage(`{"clientId":"k1"`)), "truncated: not read at all")
}

func TestOwnersCacheAnswersOnlyEventsAfterTheLink(t *testing.T) {
	// Given a stream linked to k1 by the event at position 10
	var o owners
	o.remember("session-s1", "k1", 10)

	// Then a generation at or before that event does not see the link
	_, ok := o.lookup("session-s1", 10)
	assert.False(t, ok)
	_, ok = o.lookup("session-s1", 3)
	assert.False(t, ok)
	// and one after it does, as the table would tell it
	owner, ok := o.lookup("session-s1", 11)
	assert.True(t, ok)
	assert.Equal(t, "k1", owner)
	_, ok = o.lookup("session-s2", 11)
	assert.False(t, ok, "unknown streams are looked up in the table")
}

// referencesOf tokenizes bodies itself (ADR 0016); it must find what
// encoding/json finds in the same bodies, skipping what it skips.
func TestReferencesAreWhatEncodingJSONReads(t *testing.T) {
	bodies := []string{
		`{"clientId":"k1","sessionId":"s1","text":"a \"quoted\" clientId"}`,
		`{"ClientID":"k1","ASSIGNMENTID":"a1"}`,
		`{"clientId":"k1","clientId":"k2"}`,
		`{"clientId":"k1","clientid":"k2"}`,
		`{"clientId":"k1","clientId":5}`,
		`{"nested":{"clientId":"k9"},"noteId":"n1","list":[{"clientId":"k8"}]}`,
		`{"clientId":"k\u0031","postId":"p\n1"}`,
		`{"clientId":"k1"} {"clientId":"k2"}`,
		`{"clientId":"k1",}`,
		`  {"messageId" : "m1" , "feedbackId":null, "commentId":"c1"}  `,
		`"clientId"`,
		``,
	}
	for _, body := range bodies {
		var want references
		var typeErr *json.UnmarshalTypeError
		if err := json.Unmarshal([]byte(body), &want); err != nil && !errors.As(err, &typeErr) {
			want = references{}
		}
		assert.Equal(t, want, referencesOf(json.RawMessage(body)), body)
	}
}
