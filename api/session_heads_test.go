package api

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
)

// A session's header follows its stream: read whole the first time, then
// from the last version seen, so later writes still move the version and
// position a read waits for.
func TestSessionHeaderFollowsTheStream(t *testing.T) {
	ctx := context.Background()
	store := memory.New(eventstore.Options{})
	t.Cleanup(func() { _ = store.Close() })
	c := &careRoutes{store: store, heads: newSessionHeads(2)}
	c.cache = newViewCaches(store, c.knownSessionClient)
	id := uuid.NewString()
	stream := eventstore.NewStreamID(care.StreamType, id)
	appendEvent := func(typ, data string) eventstore.AppendResult {
		t.Helper()
		res, err := store.Append(ctx, stream, eventstore.AnyVersion,
			[]eventstore.NewEvent{{Type: typ, Data: []byte(data)}})
		require.NoError(t, err)
		return res
	}

	_, err := c.session(ctx, id)
	assert.Equal(t, domain.KindNotFound, domain.KindOf(err), "no such stream")

	first := appendEvent(care.SessionScheduled{}.EventType(), `{"clinicId":"clinic-1","clientId":"client-1"}`)
	h, err := c.session(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, sessionHeader{ID: id, ClinicID: "clinic-1", ClientID: "client-1", Version: 1,
		Position: first.Events[0].Position, seenAt: h.seenAt}, h, "seenAt: where the change tracker was, not asserted here")

	later := appendEvent("session.activated", `{}`)
	h, err = c.session(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, int64(2), h.Version)
	assert.Equal(t, later.Events[0].Position, h.Position)
	assert.Equal(t, "client-1", h.ClientID, "the owner comes from the first event, read once")

	// Unchanged streams answer from the header kept.
	again, err := c.session(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, h.Version, again.Version)
	assert.Equal(t, h.Position, again.Position)

	// A stream that does not start with a scheduling is not a session.
	other := uuid.NewString()
	_, err = store.Append(ctx, eventstore.NewStreamID(care.StreamType, other), eventstore.NoStream,
		[]eventstore.NewEvent{{Type: "session.activated", Data: []byte(`{}`)}})
	require.NoError(t, err)
	_, err = c.session(ctx, other)
	assert.Equal(t, domain.KindNotFound, domain.KindOf(err))
}

func TestSessionHeadsStayBounded(t *testing.T) {
	heads := newSessionHeads(2)
	heads.put(sessionHeader{ID: "a", Version: 3})
	heads.put(sessionHeader{ID: "a", Version: 2})
	got, ok := heads.get("a")
	require.True(t, ok)
	assert.Equal(t, int64(3), got.Version, "an older version never replaces a newer one")
	heads.put(sessionHeader{ID: "b", Version: 1})
	heads.put(sessionHeader{ID: "c", Version: 1})
	assert.LessOrEqual(t, len(heads.heads), 2)
	_, ok = heads.get("c")
	assert.True(t, ok, "the newest header is kept")
}
