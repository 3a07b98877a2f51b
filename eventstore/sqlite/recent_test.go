package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/storetest"
)

func recorded(positions ...int64) []eventstore.RecordedEvent {
	out := make([]eventstore.RecordedEvent, len(positions))
	for i, p := range positions {
		out[i] = eventstore.RecordedEvent{Position: p, Type: "t", Data: []byte(`{}`)}
	}
	return out
}

func positions(events []eventstore.RecordedEvent) []int64 {
	out := []int64{}
	for _, e := range events {
		out = append(out, e.Position)
	}
	return out
}

func TestRecentEventsAnswerOnlyFromAnUnbrokenRun(t *testing.T) {
	r := newRecentEvents(4)
	_, ok := r.read(0, 10)
	assert.False(t, ok, "empty")

	r.add(recorded(5, 6, 7))
	got, ok := r.read(4, 10)
	require.True(t, ok)
	assert.Equal(t, []int64{5, 6, 7}, positions(got))
	got, ok = r.read(5, 1)
	require.True(t, ok)
	assert.Equal(t, []int64{6}, positions(got), "limit")
	_, ok = r.read(3, 10)
	assert.False(t, ok, "position 4 may exist: not held here")
	_, ok = r.read(7, 10)
	assert.False(t, ok, "at the end: newer events are in the database only")

	// A commit that does not continue the run (another writer took 8)
	// starts a new one.
	r.add(recorded(9, 10))
	_, ok = r.read(6, 10)
	assert.False(t, ok, "6 is before the new run")
	got, ok = r.read(8, 10)
	require.True(t, ok)
	assert.Equal(t, []int64{9, 10}, positions(got))

	// Bounded: past twice the size it keeps the newest max.
	r.add(recorded(11, 12, 13, 14, 15, 16, 17))
	assert.LessOrEqual(t, len(r.events), 8)
	got, ok = r.read(16, 10)
	require.True(t, ok)
	assert.Equal(t, []int64{17}, positions(got))

	// Readers get copies.
	got[0].Data[0] = 'X'
	again, _ := r.read(16, 10)
	assert.Equal(t, `{}`, string(again[0].Data))
}

// What subscriptions read from memory is what the file holds: every page,
// from every position, equals the same read of the file, after concurrent
// appends committed in groups.
func TestReadAllFromMemoryMatchesTheFile(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, filepath.Join(t.TempDir(), "events.db"), eventstore.Options{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := storetest.Stream("session")
			for i := range 20 {
				_, err := s.Append(ctx, stream, eventstore.AnyVersion,
					[]eventstore.NewEvent{storetest.Event("a"), storetest.Event("b")})
				assert.NoError(t, err, "writer %d append %d", w, i)
			}
		}()
	}
	wg.Wait()
	head, err := s.HeadPosition(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(320), head)
	fromMemory := 0
	for after := int64(0); after <= head; after++ {
		for _, limit := range []int{1, 7, 1000} {
			want, err := s.ReadAll(ctx, after, limit)
			require.NoError(t, err)
			if _, ok := s.recent.read(after, limit); ok {
				fromMemory++
			}
			got, err := s.readAllLive(ctx, after, limit)
			require.NoError(t, err)
			require.Equal(t, want, got, "after %d, limit %d", after, limit)
		}
	}
	assert.Positive(t, fromMemory, "the recent events answered some reads")
}
