package eventstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
)

// MaxEventsPerAppend bounds one Append so a single call cannot hold the
// writer for long.
const MaxEventsPerAppend = 10_000

// PrepareAppend checks an Append's arguments the same way for every backend
// and fills in event ids and schema versions. It returns the command id the
// events share ("" for none). Backends call it before touching storage.
func PrepareAppend(ctx context.Context, opts Options, stream StreamID, expected ExpectedVersion, events []NewEvent) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := stream.Validate(); err != nil {
		return "", err
	}
	if expected < AnyVersion {
		return "", fmt.Errorf("%w: expected version %d", ErrInvalidArgument, expected)
	}
	if len(events) == 0 {
		return "", fmt.Errorf("%w: no events to append", ErrInvalidEvent)
	}
	if len(events) > MaxEventsPerAppend {
		return "", fmt.Errorf("%w: %d events in one append, at most %d", ErrInvalidEvent, len(events), MaxEventsPerAppend)
	}
	commandID := events[0].Metadata.CommandID
	for i := range events {
		e := &events[i]
		if e.Type == "" {
			return "", fmt.Errorf("%w: event %d has no type", ErrInvalidEvent, i)
		}
		if e.SchemaVersion == 0 {
			e.SchemaVersion = 1
		}
		if e.SchemaVersion < 0 {
			return "", fmt.Errorf("%w: event %d (%s) has schema version %d", ErrInvalidEvent, i, e.Type, e.SchemaVersion)
		}
		if opts.Types != nil && !opts.Types.KnowsType(e.Type, e.SchemaVersion) {
			return "", fmt.Errorf("%w: %q schema version %d", ErrUnknownEventType, e.Type, e.SchemaVersion)
		}
		if !isJSONObject(e.Data) {
			return "", fmt.Errorf("%w: event %d (%s) data is not a JSON object", ErrInvalidEvent, i, e.Type)
		}
		if e.Metadata.CommandID != commandID {
			return "", fmt.Errorf("%w: events of one append carry different command ids (%q, %q)", ErrInvalidEvent, commandID, e.Metadata.CommandID)
		}
		if e.ID == uuid.Nil {
			e.ID = opts.NewID()
		}
	}
	return commandID, nil
}

func isJSONObject(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return json.Valid(data)
		default:
			return false
		}
	}
	return false
}

// CheckRead validates ReadStream/ReadAll/Subscribe arguments.
func CheckRead(ctx context.Context, fromOrAfter int64, limit int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if fromOrAfter < 0 {
		return fmt.Errorf("%w: negative position or version %d", ErrInvalidArgument, fromOrAfter)
	}
	if limit < 1 {
		return fmt.Errorf("%w: limit %d, must be at least 1", ErrInvalidArgument, limit)
	}
	return nil
}

// CheckExpected compares a stream's current version with the expectation.
func CheckExpected(stream StreamID, expected ExpectedVersion, current int64) error {
	if expected == AnyVersion || int64(expected) == current {
		return nil
	}
	return &ConcurrencyError{Stream: stream, Expected: expected, Actual: current}
}
