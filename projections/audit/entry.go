// Package audit is careflow's audit trail and time travel for compliance
// reviewers.
//
// The audit trail is a projection (Trail) that links each stream about a
// client to them, and each event that touched a client from some other
// stream, so ClientTimeline lists a client's whole history across streams
// in global order: who did what, when, to what (the envelope's metadata,
// the stream and version, the ids of the things touched), read from the
// event store. It never shows an event
// body, and its tables hold only ids, positions and instants: no PHI (no
// message, comment, note or feedback text, no answers, no names).
//
// Time travel (TimeTravel) rebuilds the state of a session, an assignment,
// a client or a client's timeline as of any instant straight from the event
// store, never from a read model, and Diff compares two versions of a
// stream field by field.
package audit

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/eventstore"
)

// Entry is one event as the audit trail shows it: the envelope without the
// body.
type Entry struct {
	Position      int64  `json:"position"`
	EventID       string `json:"eventId"`
	Stream        string `json:"stream"`
	StreamType    string `json:"streamType"`
	StreamID      string `json:"streamId"`
	Version       int64  `json:"version"`
	Type          string `json:"type"`
	SchemaVersion int    `json:"schemaVersion"`
	// Subject names the thing inside the stream the event acted on, such
	// as "assignment:<id>" or "message:<id>"; empty when it is the stream's
	// aggregate itself.
	Subject       string    `json:"subject,omitempty"`
	ActorID       string    `json:"actorId"`
	ActorRole     string    `json:"actorRole"`
	CommandID     string    `json:"commandId"`
	CorrelationID string    `json:"correlationId"`
	CausationID   string    `json:"causationId,omitempty"`
	ClinicID      string    `json:"clinicId,omitempty"`
	OccurredAt    time.Time `json:"occurredAt"`
	RecordedAt    time.Time `json:"recordedAt"`
}

// EntryOf returns the audit entry of a recorded event.
func EntryOf(e eventstore.RecordedEvent) Entry { return entryOf(e, referencesOf(e.Data)) }

func entryOf(e eventstore.RecordedEvent, refs references) Entry {
	return Entry{
		Position:      e.Position,
		EventID:       e.ID.String(),
		Stream:        e.Stream.String(),
		StreamType:    e.Stream.Type,
		StreamID:      e.Stream.ID,
		Version:       e.Version,
		Type:          e.Type,
		SchemaVersion: e.SchemaVersion,
		Subject:       refs.subject(),
		ActorID:       e.Metadata.ActorID,
		ActorRole:     e.Metadata.ActorRole,
		CommandID:     e.Metadata.CommandID,
		CorrelationID: e.Metadata.CorrelationID,
		CausationID:   e.Metadata.CausationID,
		ClinicID:      e.Metadata.ClinicID,
		OccurredAt:    e.Metadata.OccurredAt.UTC(),
		RecordedAt:    e.RecordedAt.UTC(),
	}
}

// clientStreamType is the stream type of clients ("client-<id>").
const clientStreamType = commands.StreamClient

// references are the ids an event body names. Only ids are read from a
// body: nothing else of it is looked at or kept.
type references struct {
	ClientID     string `json:"clientId"`
	AssignmentID string `json:"assignmentId"`
	FeedbackID   string `json:"feedbackId"`
	CommentID    string `json:"commentId"`
	MessageID    string `json:"messageId"`
	PostID       string `json:"postId"`
	NoteID       string `json:"noteId"`
}

// referencesOf reads the ids out of an event body. A field that is absent
// or not a string is treated as absent: the audit trail must follow every
// event, whatever its shape. Names match as encoding/json matches a
// struct's fields (exactly, or else without regard to case; the last of
// repeated names wins), but only the top level is tokenized, nothing is
// decoded but the ids, and a body that is not a JSON object names nothing.
func referencesOf(data json.RawMessage) references {
	var refs references
	dec := bodyDecoders.Get().(*jsontext.Decoder)
	defer bodyDecoders.Put(dec)
	dec.Reset(bytes.NewReader(data), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return references{}
	}
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return references{}
		}
		field := refs.field(name.String())
		if field == nil || dec.PeekKind() != '"' {
			if err := dec.SkipValue(); err != nil {
				return references{}
			}
			continue
		}
		value, err := dec.ReadToken()
		if err != nil {
			return references{}
		}
		*field = value.String()
	}
	// Like encoding/json, a body that is not whole JSON names nothing.
	if end, err := dec.ReadToken(); err != nil || end.Kind() != '}' {
		return references{}
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return references{}
	}
	return refs
}

// bodyDecoders saves referencesOf a decoder's buffers per event.
var bodyDecoders = sync.Pool{New: func() any { return jsontext.NewDecoder(bytes.NewReader(nil)) }}

// field is the reference a body's member name fills, nil for any other.
func (r *references) field(name string) *string {
	fields := [...]struct {
		name string
		to   *string
	}{
		{"clientId", &r.ClientID}, {"assignmentId", &r.AssignmentID}, {"feedbackId", &r.FeedbackID},
		{"commentId", &r.CommentID}, {"messageId", &r.MessageID}, {"postId", &r.PostID}, {"noteId", &r.NoteID},
	}
	for _, f := range fields {
		if name == f.name {
			return f.to
		}
	}
	for _, f := range fields {
		if strings.EqualFold(name, f.name) {
			return f.to
		}
	}
	return nil
}

// subject names the most specific thing the body names: a comment is
// inside a feedback inside an assignment.
func (r references) subject() string {
	switch {
	case r.CommentID != "":
		return "comment:" + r.CommentID
	case r.FeedbackID != "":
		return "feedback:" + r.FeedbackID
	case r.AssignmentID != "":
		return "assignment:" + r.AssignmentID
	case r.MessageID != "":
		return "message:" + r.MessageID
	case r.PostID != "":
		return "discussion:" + r.PostID
	case r.NoteID != "":
		return "note:" + r.NoteID
	}
	return ""
}

// opensStream reports whether e is the event that makes its stream about
// one client, so that every later event of the stream touches that client
// too: the first event of a stream naming a client (session.scheduled,
// account.registered for a client's account).
func opensStream(e eventstore.RecordedEvent) bool {
	return e.Version == 1 || e.Type == "session.scheduled"
}

// linking is the outcome of linking one event to clients.
type linking struct {
	// clients are the clients the event touched, without repetition.
	clients []string
	// owner is set when the event made its stream a client's: later events
	// of the stream touch that client.
	owner string
}

// link says which clients e touched. streamOwner is the client the
// stream was linked to by an earlier event ("" if none). A client's own
// stream touches that client; a stream linked to a client touches it with
// every event; and an event naming a client in its body touches that one.
func link(e eventstore.RecordedEvent, refs references, streamOwner string) linking {
	var out linking
	add := func(id string) {
		if id == "" {
			return
		}
		for _, c := range out.clients {
			if c == id {
				return
			}
		}
		out.clients = append(out.clients, id)
	}
	if e.Stream.Type == clientStreamType {
		add(e.Stream.ID)
	}
	add(streamOwner)
	named := refs.ClientID
	if streamOwner == "" && e.Stream.Type != clientStreamType && named != "" && opensStream(e) {
		out.owner = named
	}
	add(named)
	return out
}
