package eventstore

import (
	"errors"
	"fmt"
)

var (
	// ErrConcurrency: the stream was not at the expected version. Every
	// backend returns a *ConcurrencyError that matches it with errors.Is.
	ErrConcurrency = errors.New("eventstore: wrong expected version")
	// ErrInvalidStream: the stream id cannot name a stream.
	ErrInvalidStream = errors.New("eventstore: invalid stream id")
	// ErrInvalidEvent: an event is malformed (no type, data not a JSON
	// object, mixed command ids, no events at all...).
	ErrInvalidEvent = errors.New("eventstore: invalid event")
	// ErrUnknownEventType: the type catalogue does not know the event type.
	ErrUnknownEventType = errors.New("eventstore: unknown event type")
	// ErrInvalidArgument: a read was asked for a negative position or
	// version, or a limit below 1.
	ErrInvalidArgument = errors.New("eventstore: invalid argument")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("eventstore: store is closed")
)

// ConcurrencyError says which stream was not where the writer expected it.
type ConcurrencyError struct {
	Stream   StreamID
	Expected ExpectedVersion
	Actual   int64
}

func (e *ConcurrencyError) Error() string {
	want := fmt.Sprintf("version %d", e.Expected)
	if e.Expected == NoStream {
		want = "no stream"
	}
	return fmt.Sprintf("eventstore: stream %s: expected %s, is at version %d", e.Stream, want, e.Actual)
}

func (e *ConcurrencyError) Is(target error) bool { return target == ErrConcurrency }
