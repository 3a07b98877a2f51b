package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
)

// ErrNotFound: nothing of that name had been recorded at the instant asked.
var ErrNotFound = errors.New("audit: not recorded")

// TimeTravel rebuilds state as it was at any instant from the event store
// itself, never from a read model: what a reviewer sees is what the log
// proves.
//
// "As of t" means the events recorded up to t: a stream's (or the log's)
// events in order, up to the first one recorded after t. Stores stamp
// RecordedAt when they commit, so in commit order it does not go back, and
// stopping at the first later event is the same as keeping every event
// recorded by t; if a clock ever did step back, the cut still keeps a
// prefix, so the rebuilt state is one the system really passed through.
type TimeTravel struct {
	store eventstore.Store
	codec *codec.Registry
}

// NewTimeTravel returns a TimeTravel over store, decoding events with codec
// (commands.NewRegistry: every domain event and its upcasters).
func NewTimeTravel(store eventstore.Store, codec *codec.Registry) *TimeTravel {
	return &TimeTravel{store: store, codec: codec}
}

// SessionSnapshot is a session as of an instant.
type SessionSnapshot struct {
	AsOf time.Time `json:"asOf"`
	// Version is the stream version the state was rebuilt at; Position and
	// RecordedAt are those of that version's event.
	Version    int64        `json:"version"`
	Position   int64        `json:"position"`
	RecordedAt time.Time    `json:"recordedAt"`
	Session    SessionState `json:"session"`
}

// AssignmentSnapshot is one assignment as of an instant, with the status of
// the session it is in.
type AssignmentSnapshot struct {
	AsOf          time.Time       `json:"asOf"`
	SessionID     string          `json:"sessionId"`
	SessionStatus string          `json:"sessionStatus"`
	Version       int64           `json:"version"`
	Position      int64           `json:"position"`
	RecordedAt    time.Time       `json:"recordedAt"`
	Assignment    AssignmentState `json:"assignment"`
}

// ClientSnapshot is a client's record as of an instant.
type ClientSnapshot struct {
	AsOf       time.Time   `json:"asOf"`
	Version    int64       `json:"version"`
	Position   int64       `json:"position"`
	RecordedAt time.Time   `json:"recordedAt"`
	Client     ClientState `json:"client"`
}

// Session rebuilds a session (with its assignments) as of asOf.
func (tt *TimeTravel) Session(ctx context.Context, sessionID string, asOf time.Time) (SessionSnapshot, error) {
	events, err := tt.streamAsOf(ctx, care.StreamType, sessionID, asOf)
	if err != nil {
		return SessionSnapshot{}, err
	}
	s, err := tt.replaySession(events)
	if err != nil {
		return SessionSnapshot{}, err
	}
	last := events[len(events)-1]
	return SessionSnapshot{
		AsOf: asOf.UTC(), Version: last.Version, Position: last.Position, RecordedAt: last.RecordedAt.UTC(),
		Session: SessionStateOf(s.View()),
	}, nil
}

// Assignment rebuilds one assignment of a session as of asOf. An
// assignment not given yet then is ErrNotFound.
func (tt *TimeTravel) Assignment(ctx context.Context, sessionID, assignmentID string, asOf time.Time) (AssignmentSnapshot, error) {
	events, err := tt.streamAsOf(ctx, care.StreamType, sessionID, asOf)
	if err != nil {
		return AssignmentSnapshot{}, err
	}
	s, err := tt.replaySession(events)
	if err != nil {
		return AssignmentSnapshot{}, err
	}
	a, ok := s.Assignment(assignmentID)
	if !ok {
		return AssignmentSnapshot{}, fmt.Errorf("%w: assignment %s in session %s as of %s", ErrNotFound, assignmentID, sessionID,
			asOf.UTC().Format(time.RFC3339Nano))
	}
	last := events[len(events)-1]
	return AssignmentSnapshot{
		AsOf: asOf.UTC(), SessionID: sessionID, SessionStatus: string(s.State()),
		Version: last.Version, Position: last.Position, RecordedAt: last.RecordedAt.UTC(),
		Assignment: AssignmentStateOf(a),
	}, nil
}

// Client rebuilds a client's record as of asOf.
func (tt *TimeTravel) Client(ctx context.Context, clientID string, asOf time.Time) (ClientSnapshot, error) {
	events, err := tt.streamAsOf(ctx, clientStreamType, clientID, asOf)
	if err != nil {
		return ClientSnapshot{}, err
	}
	c, err := tt.replayClient(events)
	if err != nil {
		return ClientSnapshot{}, err
	}
	last := events[len(events)-1]
	return ClientSnapshot{
		AsOf: asOf.UTC(), Version: last.Version, Position: last.Position, RecordedAt: last.RecordedAt.UTC(),
		Client: ClientStateOf(c),
	}, nil
}

// ClientTimeline lists, in global order, every event that touched the
// client and was recorded by asOf, found by reading the log from its start
// (the audit trail read model answers the same faster, see
// ClientTimeline; this one proves it). An empty list means nothing had
// touched the client yet.
func (tt *TimeTravel) ClientTimeline(ctx context.Context, clientID string, asOf time.Time) ([]Entry, error) {
	if strings.TrimSpace(clientID) == "" {
		return nil, fmt.Errorf("%w: a client id is required", ErrInvalidQuery)
	}
	owners := map[string]string{} // stream -> the client it is about
	out := []Entry{}
	var after int64
	for {
		events, err := tt.store.ReadAll(ctx, after, eventstore.CatchUpBatch)
		if err != nil {
			return nil, fmt.Errorf("audit: read the log after %d: %w", after, err)
		}
		for _, e := range events {
			if e.RecordedAt.After(asOf) {
				return out, nil
			}
			refs := referencesOf(e.Data)
			stream := e.Stream.String()
			l := link(e, refs, owners[stream])
			if l.owner != "" {
				owners[stream] = l.owner
			}
			for _, c := range l.clients {
				if c == clientID {
					out = append(out, entryOf(e, refs))
					break
				}
			}
			after = e.Position
		}
		if len(events) < eventstore.CatchUpBatch {
			return out, nil
		}
	}
}

// streamAsOf reads a stream's events recorded by asOf; none is ErrNotFound.
func (tt *TimeTravel) streamAsOf(ctx context.Context, streamType, id string, asOf time.Time) ([]eventstore.RecordedEvent, error) {
	stream := eventstore.NewStreamID(streamType, id)
	if err := stream.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidQuery, err)
	}
	events, err := tt.store.ReadStream(ctx, stream, 1)
	if err != nil {
		return nil, fmt.Errorf("audit: read %s: %w", stream, err)
	}
	cut := len(events)
	for i, e := range events {
		if e.RecordedAt.After(asOf) {
			cut = i
			break
		}
	}
	if cut == 0 {
		return nil, fmt.Errorf("%w: %s as of %s", ErrNotFound, stream, asOf.UTC().Format(time.RFC3339Nano))
	}
	return events[:cut], nil
}

func (tt *TimeTravel) replaySession(events []eventstore.RecordedEvent) (*care.Session, error) {
	s := care.New()
	return s, tt.replay(events, s.Replay)
}

func (tt *TimeTravel) replayClient(events []eventstore.RecordedEvent) (*organization.Client, error) {
	c := organization.NewClient()
	return c, tt.replay(events, c.Replay)
}

// replay decodes events and hands them to an aggregate in order.
func (tt *TimeTravel) replay(events []eventstore.RecordedEvent, apply func(domain.Event)) error {
	for _, rec := range events {
		v, err := tt.codec.Decode(rec.Type, rec.SchemaVersion, rec.Data)
		if err != nil {
			return fmt.Errorf("audit: decode %s version %d: %w", rec.Stream, rec.Version, err)
		}
		e, ok := v.(domain.Event)
		if !ok {
			return fmt.Errorf("audit: %s version %d: %s is not a domain event", rec.Stream, rec.Version, rec.Type)
		}
		apply(e)
	}
	return nil
}
