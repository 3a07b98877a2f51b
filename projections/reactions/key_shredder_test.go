package reactions_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections/bus"
	"github.com/careflow/careflow/projections/reactions"
)

type recordingShredder struct{ subjects []string }

func (r *recordingShredder) Destroy(_ context.Context, subject string, _ time.Time) error {
	r.subjects = append(r.subjects, subject)
	return nil
}

func clientEvent(t *testing.T, typ, data string) eventstore.RecordedEvent {
	t.Helper()
	return eventstore.RecordedEvent{
		ID: uuid.New(), Stream: eventstore.NewStreamID("client", "k1"), Version: 3, Position: 7,
		Type: typ, SchemaVersion: 1, Data: []byte(data), RecordedAt: time.Now(),
		Metadata: eventstore.Metadata{OccurredAt: time.Now()},
	}
}

func TestKeyShredderDestroysForgottenClientsKeys(t *testing.T) {
	keys := &recordingShredder{}
	handle := reactions.KeyShredderHandler(keys)
	for _, e := range []eventstore.RecordedEvent{
		clientEvent(t, "client.deactivated", `{"clientId":"k1","clinicId":"c1","by":"a"}`),
		clientEvent(t, "client.forgotten", `{"clientId":"k1","clinicId":"c1","by":"a","reason":"r"}`),
		clientEvent(t, "client.forgotten", `{"clientId":"k1","clinicId":"c1","by":"a","reason":"r"}`), // redelivered
	} {
		_, msg, err := bus.ToMessage(e)
		require.NoError(t, err)
		require.NoError(t, handle(msg))
	}
	assert.Equal(t, []string{"k1", "k1"}, keys.subjects, "only erasures destroy keys, again on redelivery")

	_, msg, err := bus.ToMessage(clientEvent(t, "client.forgotten", `{"clinicId":"c1"}`))
	require.NoError(t, err)
	assert.ErrorContains(t, handle(msg), "names no client", "a malformed erasure is not acknowledged")
}
