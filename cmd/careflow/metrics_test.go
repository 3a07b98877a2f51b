package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/eventstore/sqlite"
)

// serve wraps its store in measuredStore; the projections' runner must
// still find the store's narrower read of the log through the wrapper, and
// a store without one must still be read whole.
func TestMeasuredStoreReadsBodiesThroughTheWrapper(t *testing.T) {
	ctx := context.Background()
	onDisk, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")}, eventstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = onDisk.Close() })
	for name, store := range map[string]eventstore.Store{"sqlite": onDisk, "memory": memory.New(eventstore.Options{})} {
		t.Run(name, func(t *testing.T) {
			// Given an event with Metadata
			_, err := store.Append(ctx, eventstore.NewStreamID("session", "s1"), eventstore.NoStream, []eventstore.NewEvent{{
				Type: "session.scheduled", Data: []byte(`{"sessionId":"s1"}`),
				Metadata: eventstore.Metadata{ActorID: "p1", ActorRole: "provider"},
			}})
			require.NoError(t, err)

			// When the runner reads bodies through the metrics wrapper
			events, err := measuredStore{Store: store, m: newServiceMetrics()}.ReadAllBodies(ctx, 0, 10)

			// Then it gets the event, with its Metadata left out only by a
			// store that reads bodies alone
			require.NoError(t, err)
			require.Len(t, events, 1)
			assert.JSONEq(t, `{"sessionId":"s1"}`, string(events[0].Data))
			_, bodies := store.(eventstore.BodyReader)
			if bodies {
				assert.Zero(t, events[0].Metadata, "the SQLite store's bodies")
			} else {
				assert.Equal(t, "p1", events[0].Metadata.ActorID, "ReadAll's events, whole")
			}
		})
	}
}
