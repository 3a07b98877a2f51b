package bus

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/careflow/careflow/eventstore"
)

// TopicPrefix starts every topic the relay publishes to.
const TopicPrefix = "careflow."

// DefaultPoisonTopic is where NewRouter sends messages no handler could
// process. "poison" is therefore not a usable event family.
const DefaultPoisonTopic = TopicPrefix + "poison"

// Metadata keys of a relayed event. correlation_id is also the key
// watermill's CorrelationID middleware reads and writes.
const (
	MetaType          = "type"
	MetaStream        = "stream"
	MetaStreamType    = "stream_type"
	MetaVersion       = "version"
	MetaPosition      = "position"
	MetaCorrelationID = "correlation_id"
	MetaCausationID   = "causation_id"
	MetaClinicID      = "clinic_id"
	MetaRecordedAt    = "recorded_at"
	MetaSchemaVersion = "schema_version"
	MetaActorID       = "actor_id"
	MetaActorRole     = "actor_role"
	MetaCommandID     = "command_id"
	MetaOccurredAt    = "occurred_at"
)

// ErrUnroutable: an event type has no family that can name a topic.
var ErrUnroutable = errors.New("bus: event type cannot be routed to a topic")

// ErrNotAnEvent: a message lacks the envelope the relay puts on events.
var ErrNotAnEvent = errors.New("bus: message is not a relayed event")

// A family becomes part of a NATS subject, a PostgreSQL table name and a
// log line, so it is held to a conservative alphabet.
var familyPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// TopicFor returns the topic of an event type: "careflow." + the part
// before the first '.' ("session.scheduled" → "careflow.session").
func TopicFor(eventType string) (string, error) {
	family, _, _ := strings.Cut(eventType, ".")
	if !familyPattern.MatchString(family) {
		return "", fmt.Errorf("%w: family %q of %q must match %s", ErrUnroutable, family, eventType, familyPattern)
	}
	if TopicPrefix+family == DefaultPoisonTopic {
		return "", fmt.Errorf("%w: family %q is reserved for the poison queue", ErrUnroutable, family)
	}
	return TopicPrefix + family, nil
}

// ToMessage turns a recorded event into the message the relay publishes and
// returns the topic it belongs on.
func ToMessage(e eventstore.RecordedEvent) (string, *message.Message, error) {
	topic, err := TopicFor(e.Type)
	if err != nil {
		return "", nil, err
	}
	msg := message.NewMessage(e.ID.String(), message.Payload(e.Data))
	md := msg.Metadata
	md.Set(MetaType, e.Type)
	md.Set(MetaStream, e.Stream.String())
	md.Set(MetaStreamType, e.Stream.Type)
	md.Set(MetaVersion, strconv.FormatInt(e.Version, 10))
	md.Set(MetaPosition, strconv.FormatInt(e.Position, 10))
	md.Set(MetaSchemaVersion, strconv.Itoa(e.SchemaVersion))
	md.Set(MetaRecordedAt, e.RecordedAt.UTC().Format(time.RFC3339Nano))
	md.Set(MetaCorrelationID, e.Metadata.CorrelationID)
	md.Set(MetaCausationID, e.Metadata.CausationID)
	md.Set(MetaClinicID, e.Metadata.ClinicID)
	md.Set(MetaActorID, e.Metadata.ActorID)
	md.Set(MetaActorRole, e.Metadata.ActorRole)
	md.Set(MetaCommandID, e.Metadata.CommandID)
	if !e.Metadata.OccurredAt.IsZero() {
		md.Set(MetaOccurredAt, e.Metadata.OccurredAt.UTC().Format(time.RFC3339Nano))
	}
	return topic, msg, nil
}

// Decode reads a relayed message back into the event it carries.
func Decode(msg *message.Message) (eventstore.RecordedEvent, error) {
	var e eventstore.RecordedEvent
	var errs []error
	fail := func(key string, err error) { errs = append(errs, fmt.Errorf("%s: %w", key, err)) }
	md := msg.Metadata

	id, err := uuid.Parse(msg.UUID)
	if err != nil {
		fail("uuid", err)
	}
	e.ID = id
	if e.Type = md.Get(MetaType); e.Type == "" {
		fail(MetaType, errors.New("missing"))
	}
	if e.Stream, err = eventstore.ParseStreamID(md.Get(MetaStream)); err != nil {
		fail(MetaStream, err)
	} else if e.Stream.Type != md.Get(MetaStreamType) {
		fail(MetaStreamType, fmt.Errorf("%q does not match stream %q", md.Get(MetaStreamType), e.Stream))
	}
	if e.Version, err = strconv.ParseInt(md.Get(MetaVersion), 10, 64); err != nil {
		fail(MetaVersion, err)
	}
	if e.Position, err = strconv.ParseInt(md.Get(MetaPosition), 10, 64); err != nil {
		fail(MetaPosition, err)
	}
	if e.SchemaVersion, err = strconv.Atoi(md.Get(MetaSchemaVersion)); err != nil {
		fail(MetaSchemaVersion, err)
	}
	if e.RecordedAt, err = time.Parse(time.RFC3339Nano, md.Get(MetaRecordedAt)); err != nil {
		fail(MetaRecordedAt, err)
	}
	if s := md.Get(MetaOccurredAt); s != "" {
		if e.Metadata.OccurredAt, err = time.Parse(time.RFC3339Nano, s); err != nil {
			fail(MetaOccurredAt, err)
		}
	}
	e.Metadata.CorrelationID = md.Get(MetaCorrelationID)
	e.Metadata.CausationID = md.Get(MetaCausationID)
	e.Metadata.ClinicID = md.Get(MetaClinicID)
	e.Metadata.ActorID = md.Get(MetaActorID)
	e.Metadata.ActorRole = md.Get(MetaActorRole)
	e.Metadata.CommandID = md.Get(MetaCommandID)
	e.Data = append([]byte(nil), msg.Payload...)
	if len(errs) > 0 {
		return eventstore.RecordedEvent{}, fmt.Errorf("%w: %w", ErrNotAnEvent, errors.Join(errs...))
	}
	return e, nil
}
