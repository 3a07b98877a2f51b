// Package eventstore defines the append-only event log careflow is built on:
// the event envelope, the Store contract every backend honours, and the
// errors they share. It knows no domain type: events are type names and JSON.
package eventstore

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// StreamID names one stream: its type (the aggregate kind, e.g. "session")
// and the aggregate's id. Its string form is "type-id", e.g.
// "session-0190c3d2-...". The type never contains a '-'.
type StreamID struct {
	Type string
	ID   string
}

// NewStreamID is a convenience for StreamID{Type: typ, ID: id}.
func NewStreamID(typ, id string) StreamID { return StreamID{Type: typ, ID: id} }

func (s StreamID) String() string { return s.Type + "-" + s.ID }

// IsZero reports whether s is the empty stream id.
func (s StreamID) IsZero() bool { return s.Type == "" && s.ID == "" }

var streamTypePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate reports why s cannot name a stream, or nil.
func (s StreamID) Validate() error {
	if s.ID == "" {
		return fmt.Errorf("%w: stream id is empty", ErrInvalidStream)
	}
	if len(s.ID) > 200 {
		return fmt.Errorf("%w: stream id is longer than 200 bytes", ErrInvalidStream)
	}
	if !utf8.ValidString(s.ID) || strings.IndexFunc(s.ID, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: stream id %q holds invalid UTF-8 or control characters", ErrInvalidStream, s.ID)
	}
	if !streamTypePattern.MatchString(s.Type) {
		return fmt.Errorf("%w: stream type %q must match %s", ErrInvalidStream, s.Type, streamTypePattern)
	}
	return nil
}

// ParseStreamID reads the "type-id" form back.
func ParseStreamID(s string) (StreamID, error) {
	typ, id, ok := strings.Cut(s, "-")
	if !ok {
		return StreamID{}, fmt.Errorf("%w: %q is not of the form type-id", ErrInvalidStream, s)
	}
	sid := StreamID{Type: typ, ID: id}
	return sid, sid.Validate()
}

// Metadata travels with every event. It is what an audit needs to say who
// did what, on whose behalf, as part of which request, and in which clinic.
type Metadata struct {
	ActorID       string    `json:"actorId,omitempty"`
	ActorRole     string    `json:"actorRole,omitempty"`
	CommandID     string    `json:"commandId,omitempty"`
	CorrelationID string    `json:"correlationId,omitempty"`
	CausationID   string    `json:"causationId,omitempty"`
	ClinicID      string    `json:"clinicId,omitempty"`
	OccurredAt    time.Time `json:"occurredAt"`
}

// NewEvent is an event a writer hands to Append.
type NewEvent struct {
	// ID is the event id. A zero ID is filled in by the store with a UUIDv7.
	ID uuid.UUID
	// Type is the stable type name, e.g. "session.scheduled".
	Type string
	// SchemaVersion of Data; 1 when zero.
	SchemaVersion int
	// Data is the event body as a JSON object.
	Data     json.RawMessage
	Metadata Metadata
}

// RecordedEvent is an event as the store holds it: the envelope.
type RecordedEvent struct {
	ID            uuid.UUID
	Stream        StreamID
	Version       int64 // 1-based, contiguous within the stream
	Position      int64 // global, strictly increasing in commit order
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
	RecordedAt    time.Time
}

// ExpectedVersion is what a writer believes the stream's version to be.
// A value >= 0 must match exactly; 0 means the stream must not exist yet.
type ExpectedVersion int64

const (
	// NoStream: the stream must not exist (it has no events yet).
	NoStream ExpectedVersion = 0
	// AnyVersion appends whatever the stream's version is.
	AnyVersion ExpectedVersion = -1
)

// Exactly expects the stream to be at version v.
func Exactly(v int64) ExpectedVersion { return ExpectedVersion(v) }

// AppendResult says what an Append wrote (or, for a repeated command id,
// what the first Append with that command id wrote).
type AppendResult struct {
	Stream StreamID
	// Version is the stream's version after the append.
	Version int64
	// Events are the appended events as recorded, with versions and positions.
	Events []RecordedEvent
	// Duplicate is true when the command id was already stored and nothing
	// was written: Events are the ones the first append recorded.
	Duplicate bool
}

// LastPosition is the global position of the last appended event.
func (r AppendResult) LastPosition() int64 {
	if len(r.Events) == 0 {
		return 0
	}
	return r.Events[len(r.Events)-1].Position
}
