// Package storetest is the conformance suite every eventstore.Store backend
// runs from its own tests, so all backends keep the same guarantees.
package storetest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
)

// Factory makes a fresh, empty store configured with opts and registers
// its Close with t.Cleanup.
type Factory func(t *testing.T, opts eventstore.Options) eventstore.Store

// Types is the catalogue the suite configures stores with: it knows
// "test.happened" (versions 1 and 2) and "test.other".
type Types struct{}

func (Types) KnowsType(name string, v int) bool {
	switch name {
	case "test.happened":
		return v == 1 || v == 2
	case "test.other":
		return v == 1
	}
	return false
}

// Options returns the options the suite passes to factories.
func Options() eventstore.Options { return eventstore.Options{Types: Types{}} }

// Run runs the whole conformance suite.
func Run(t *testing.T, newStore Factory) {
	t.Run("AppendAndReadBack", func(t *testing.T) { testAppendAndReadBack(t, newStore) })
	t.Run("ExpectedVersion", func(t *testing.T) { testExpectedVersion(t, newStore) })
	t.Run("ConcurrentWritersOneStream", func(t *testing.T) { testConcurrentWritersOneStream(t, newStore) })
	t.Run("IdempotentByCommandID", func(t *testing.T) { testIdempotentByCommandID(t, newStore) })
	t.Run("GlobalOrderAcrossStreams", func(t *testing.T) { testGlobalOrder(t, newStore) })
	t.Run("SubscribeBeforeDuringAfter", func(t *testing.T) { testSubscribe(t, newStore) })
	t.Run("ReadFromTheMiddle", func(t *testing.T) { testReadFromMiddle(t, newStore) })
	t.Run("ReadPositions", func(t *testing.T) { testReadPositions(t, newStore) })
	t.Run("ReadAllBodies", func(t *testing.T) { testReadAllBodies(t, newStore) })
	t.Run("LargeAndUnicodePayloads", func(t *testing.T) { testPayloads(t, newStore) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, newStore) })
	t.Run("ContextCancellation", func(t *testing.T) { testContextCancellation(t, newStore) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, newStore) })
}

// Event builds a valid test event with the given body.
func Event(body string) eventstore.NewEvent {
	data, _ := json.Marshal(map[string]string{"body": body})
	return eventstore.NewEvent{
		Type: "test.happened",
		Data: data,
		Metadata: eventstore.Metadata{
			ActorID: "actor-1", ActorRole: "provider", CorrelationID: "corr-1",
			CausationID: "cause-1", ClinicID: "clinic-1",
			OccurredAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		},
	}
}

// requireHead checks that the store's head reaches want and goes no
// further. A head may trail a moment behind a commit: PostgreSQL holds it
// below any transaction still running that could commit below it (in a
// busy cluster, one of another database's that ended a moment ago can
// count until the store can tell), never ahead.
func requireHead(t *testing.T, s eventstore.Store, want int64) {
	t.Helper()
	var (
		mu       sync.Mutex
		last     int64
		past     bool
		firstErr error
	)
	ok := assert.Eventually(t, func() bool {
		head, err := s.HeadPosition(context.Background())
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			return true
		}
		last, past = head, past || head > want
		return head >= want
	}, 10*time.Second, 5*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.NoError(t, firstErr)
	require.True(t, ok, "head %d, want %d", last, want)
	require.False(t, past, "the head went past the last commit (%d > %d)", last, want)
}

func withCommand(e eventstore.NewEvent, commandID string) eventstore.NewEvent {
	e.Metadata.CommandID = commandID
	return e
}

// Stream returns a stream id unique to this call.
func Stream(kind string) eventstore.StreamID {
	return eventstore.NewStreamID(kind, uuid.NewString())
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testAppendAndReadBack(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	ctx := ctxT(t)
	stream := Stream("session")
	first, second := Event("one"), Event("two")
	first.ID = uuid.Must(uuid.NewV7())
	second.Type, second.SchemaVersion = "test.other", 1

	res, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{first, second})
	require.NoError(t, err)
	assert.Equal(t, int64(2), res.Version)
	assert.False(t, res.Duplicate)
	require.Len(t, res.Events, 2)
	assert.Equal(t, first.ID, res.Events[0].ID, "a given event id is kept")
	assert.NotEqual(t, uuid.Nil, res.Events[1].ID, "a missing event id is filled in")
	assert.Equal(t, uuid.Version(7), res.Events[1].ID.Version(), "generated ids are UUIDv7")
	assert.Less(t, res.Events[0].Position, res.Events[1].Position)

	got, err := s.ReadStream(ctx, stream, 1)
	require.NoError(t, err)
	require.Len(t, got, 2)
	for i, e := range got {
		assert.Equal(t, stream, e.Stream)
		assert.Equal(t, int64(i+1), e.Version)
		assert.Equal(t, res.Events[i].ID, e.ID)
		assert.Equal(t, res.Events[i].Position, e.Position)
		assert.False(t, e.RecordedAt.IsZero())
		assert.Equal(t, time.UTC, e.RecordedAt.Location())
	}
	assert.Equal(t, "test.happened", got[0].Type)
	assert.Equal(t, 1, got[0].SchemaVersion, "schema version defaults to 1")
	assert.Equal(t, "test.other", got[1].Type)
	assert.JSONEq(t, `{"body":"one"}`, string(got[0].Data))
	assert.Equal(t, first.Metadata.ActorID, got[0].Metadata.ActorID)
	assert.Equal(t, first.Metadata.ActorRole, got[0].Metadata.ActorRole)
	assert.Equal(t, first.Metadata.CorrelationID, got[0].Metadata.CorrelationID)
	assert.Equal(t, first.Metadata.CausationID, got[0].Metadata.CausationID)
	assert.Equal(t, first.Metadata.ClinicID, got[0].Metadata.ClinicID)
	assert.True(t, first.Metadata.OccurredAt.Equal(got[0].Metadata.OccurredAt))

	all, err := s.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	assert.Equal(t, got, all, "ReadAll and ReadStream agree")

	requireHead(t, s, res.Events[1].Position)

	none, err := s.ReadStream(ctx, Stream("session"), 1)
	require.NoError(t, err)
	assert.Empty(t, none, "a stream that does not exist reads as empty")

	v2 := Event("v2")
	v2.SchemaVersion = 2
	res2, err := s.Append(ctx, stream, eventstore.Exactly(2), []eventstore.NewEvent{v2})
	require.NoError(t, err)
	assert.Equal(t, 2, res2.Events[0].SchemaVersion)
}

func testExpectedVersion(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	ctx := ctxT(t)
	stream := Stream("client")

	_, err := s.Append(ctx, stream, eventstore.Exactly(1), []eventstore.NewEvent{Event("a")})
	assertConflict(t, err, stream, 1, 0)

	_, err = s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{Event("a")})
	require.NoError(t, err)

	_, err = s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{Event("b")})
	assertConflict(t, err, stream, eventstore.NoStream, 1)

	_, err = s.Append(ctx, stream, eventstore.Exactly(2), []eventstore.NewEvent{Event("b")})
	assertConflict(t, err, stream, 2, 1)

	res, err := s.Append(ctx, stream, eventstore.Exactly(1), []eventstore.NewEvent{Event("b"), Event("c")})
	require.NoError(t, err)
	assert.Equal(t, int64(3), res.Version)

	res, err = s.Append(ctx, stream, eventstore.AnyVersion, []eventstore.NewEvent{Event("d")})
	require.NoError(t, err)
	assert.Equal(t, int64(4), res.Version)

	other := Stream("client")
	res, err = s.Append(ctx, other, eventstore.AnyVersion, []eventstore.NewEvent{Event("x")})
	require.NoError(t, err, "any version also creates a stream")
	assert.Equal(t, int64(1), res.Version)

	got, err := s.ReadStream(ctx, stream, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c", "d"}, bodies(got), "failed appends wrote nothing")
}

func assertConflict(t *testing.T, err error, stream eventstore.StreamID, expected eventstore.ExpectedVersion, actual int64) {
	t.Helper()
	require.ErrorIs(t, err, eventstore.ErrConcurrency)
	var ce *eventstore.ConcurrencyError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, stream, ce.Stream)
	assert.Equal(t, expected, ce.Expected)
	assert.Equal(t, actual, ce.Actual)
	assert.Contains(t, err.Error(), stream.String(), "the message names the stream")
}

// 32+ goroutines race on one stream, each appending at the version it last
// read. Exactly one wins per version; the losers retry; nothing is lost.
func testConcurrentWritersOneStream(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	ctx := ctxT(t)
	stream := Stream("session")
	const writers, perWriter = 32, 5

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		winners   = map[int64]string{}
		conflicts int
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				body := fmt.Sprintf("w%d-%d", w, i)
				for {
					evs, err := s.ReadStream(ctx, stream, 1)
					if !assert.NoError(t, err) {
						return
					}
					res, err := s.Append(ctx, stream, eventstore.Exactly(int64(len(evs))), []eventstore.NewEvent{Event(body)})
					if errors.Is(err, eventstore.ErrConcurrency) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					_, dup := winners[res.Version]
					assert.False(t, dup, "two writers won version %d", res.Version)
					winners[res.Version] = body
					mu.Unlock()
					break
				}
			}
		}()
	}
	wg.Wait()

	got, err := s.ReadStream(ctx, stream, 1)
	require.NoError(t, err)
	require.Len(t, got, writers*perWriter, "no lost or duplicated event")
	seen := map[string]bool{}
	for i, e := range got {
		assert.Equal(t, int64(i+1), e.Version, "versions are contiguous")
		b := bodyOf(e)
		assert.False(t, seen[b], "event %s stored twice", b)
		seen[b] = true
		assert.Equal(t, winners[e.Version], b, "the stored event is the one whose append was acknowledged")
	}
	t.Logf("%d conflicts resolved by retry", conflicts)
}

func testIdempotentByCommandID(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	ctx := ctxT(t)
	stream := Stream("session")

	batch := []eventstore.NewEvent{withCommand(Event("a"), "cmd-1"), withCommand(Event("b"), "cmd-1")}
	first, err := s.Append(ctx, stream, eventstore.NoStream, batch)
	require.NoError(t, err)

	// The retry carries other event ids and an expected version that is now
	// stale: it must still be recognised as the same command.
	retry := []eventstore.NewEvent{withCommand(Event("a"), "cmd-1"), withCommand(Event("b"), "cmd-1")}
	again, err := s.Append(ctx, stream, eventstore.NoStream, retry)
	require.NoError(t, err)
	assert.True(t, again.Duplicate)
	assert.Equal(t, first.Version, again.Version)
	require.Len(t, again.Events, 2)
	for i := range first.Events {
		assert.Equal(t, first.Events[i].ID, again.Events[i].ID)
		assert.Equal(t, first.Events[i].Position, again.Events[i].Position)
		assert.Equal(t, first.Events[i].Version, again.Events[i].Version)
	}

	// A retry that expects the version the stream is at now (its first
	// answer's) is the same command too, not a next append.
	again, err = s.Append(ctx, stream, eventstore.Exactly(first.Version), retry)
	require.NoError(t, err)
	assert.True(t, again.Duplicate, "a retry expecting the current version")
	assert.Equal(t, first.Events[0].ID, again.Events[0].ID)

	got, err := s.ReadStream(ctx, stream, 1)
	require.NoError(t, err)
	assert.Len(t, got, 2, "the retries wrote nothing")
	requireHead(t, s, first.LastPosition())

	// A retry that carries its first try's event ids (a caller that chose
	// them) is the same command as well, whatever version it expects.
	stream3 := Stream("session")
	chosen := []uuid.UUID{uuid.New(), uuid.New()}
	withIDs := func() []eventstore.NewEvent {
		out := []eventstore.NewEvent{withCommand(Event("x"), "cmd-ids"), withCommand(Event("y"), "cmd-ids")}
		for i := range out {
			out[i].ID = chosen[i]
		}
		return out
	}
	stored, err := s.Append(ctx, stream3, eventstore.NoStream, withIDs())
	require.NoError(t, err)
	for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Exactly(stored.Version), eventstore.AnyVersion} {
		again, err := s.Append(ctx, stream3, expected, withIDs())
		require.NoError(t, err, "a retry with the same event ids, expecting %d", expected)
		assert.True(t, again.Duplicate, "expecting %d", expected)
		assert.Equal(t, stored.Events[1].Position, again.Events[1].Position)
	}

	// The same command id may write to another stream (a command that
	// schedules several sessions writes each with the same command id).
	other, err := s.Append(ctx, Stream("session"), eventstore.NoStream, []eventstore.NewEvent{withCommand(Event("c"), "cmd-1")})
	require.NoError(t, err)
	assert.False(t, other.Duplicate)

	_, err = s.Append(ctx, stream, eventstore.Exactly(2), []eventstore.NewEvent{withCommand(Event("d"), "cmd-2"), withCommand(Event("e"), "cmd-3")})
	assert.ErrorIs(t, err, eventstore.ErrInvalidEvent, "one append carries one command id")

	// Concurrent retries of one command: exactly one writes.
	stream2 := Stream("session")
	var wg sync.WaitGroup
	results := make([]eventstore.AppendResult, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Append(ctx, stream2, eventstore.AnyVersion, []eventstore.NewEvent{withCommand(Event("once"), "cmd-race")})
			assert.NoError(t, err)
			results[i] = r
		}()
	}
	wg.Wait()
	written := 0
	for _, r := range results {
		if !r.Duplicate {
			written++
		}
		assert.Equal(t, int64(1), r.Version)
	}
	assert.Equal(t, 1, written, "exactly one concurrent retry writes")
	got, err = s.ReadStream(ctx, stream2, 1)
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

func testGlobalOrder(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	ctx := ctxT(t)
	const writers, perWriter = 8, 25
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := Stream("client")
			for i := range perWriter {
				_, err := s.Append(ctx, stream, eventstore.Exactly(int64(i)), []eventstore.NewEvent{Event(fmt.Sprint(i))})
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	all := readAll(t, s, 0, 7)
	require.Len(t, all, writers*perWriter)
	last := map[eventstore.StreamID]int64{}
	for i, e := range all {
		if i > 0 {
			assert.Greater(t, e.Position, all[i-1].Position, "positions strictly increase")
		}
		assert.Equal(t, last[e.Stream]+1, e.Version, "a stream's events appear in version order")
		last[e.Stream] = e.Version
	}
	assert.Len(t, last, writers)
}

// readAll pages through the whole log with the given page size.
func readAll(t *testing.T, s eventstore.Store, after int64, page int) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for {
		evs, err := s.ReadAll(ctxT(t), after, page)
		require.NoError(t, err)
		require.LessOrEqual(t, len(evs), page)
		out = append(out, evs...)
		if len(evs) < page {
			return out
		}
		after = evs[len(evs)-1].Position
	}
}

// A subscriber started before, one started during and one started after
// concurrent appends each see every event once, in global order.
func testSubscribe(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	const writers, perWriter = 8, 40
	total := writers * perWriter

	type sub struct {
		mu     sync.Mutex
		events []eventstore.RecordedEvent
		done   chan struct{}
		err    error
	}
	start := func() *sub {
		sb := &sub{done: make(chan struct{})}
		go func() {
			defer close(sb.done)
			sb.err = s.Subscribe(ctx, 0, func(e eventstore.RecordedEvent) error {
				sb.mu.Lock()
				defer sb.mu.Unlock()
				sb.events = append(sb.events, e)
				if len(sb.events) == total {
					return errDone
				}
				return nil
			})
		}()
		return sb
	}

	before := start()
	var during *sub
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := Stream("session")
			for i := range perWriter {
				_, err := s.Append(ctx, stream, eventstore.Exactly(int64(i)), []eventstore.NewEvent{Event(fmt.Sprint(i))})
				assert.NoError(t, err)
			}
		}()
		if w == writers/2 {
			during = start()
		}
	}
	wg.Wait()
	after := start()

	want := readAll(t, s, 0, 1000)
	require.Len(t, want, total)
	for name, sb := range map[string]*sub{"before": before, "during": during, "after": after} {
		select {
		case <-sb.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("subscriber %s got %d of %d events", name, len(sb.events), total)
		}
		assert.ErrorIs(t, sb.err, errDone, name)
		assert.Equal(t, positions(want), positions(sb.events), "subscriber %s sees every event once, in order", name)
	}

	// A subscription that starts in the middle resumes after that position,
	// and a handler error ends it with that error.
	mid := want[total/2].Position
	var firstSeen int64
	boom := errors.New("boom")
	err := s.Subscribe(ctx, mid, func(e eventstore.RecordedEvent) error {
		firstSeen = e.Position
		return boom
	})
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, want[total/2+1].Position, firstSeen)

	// A live subscriber wakes for an append made after it caught up.
	live := make(chan eventstore.RecordedEvent, 1)
	liveCtx, liveCancel := context.WithCancel(ctx)
	liveDone := make(chan error, 1)
	go func() {
		liveDone <- s.Subscribe(liveCtx, want[total-1].Position, func(e eventstore.RecordedEvent) error {
			live <- e
			return nil
		})
	}()
	res, err := s.Append(ctx, Stream("session"), eventstore.NoStream, []eventstore.NewEvent{Event("live")})
	require.NoError(t, err)
	select {
	case e := <-live:
		assert.Equal(t, res.Events[0].ID, e.ID)
	case <-time.After(10 * time.Second):
		t.Fatal("a live subscriber was not woken by a new append")
	}
	liveCancel()
	select {
	case err := <-liveDone:
		assert.ErrorIs(t, err, context.Canceled, "cancelling the context ends a subscription")
	case <-time.After(10 * time.Second):
		t.Fatal("a subscription did not end when its context was cancelled")
	}
}

var errDone = errors.New("storetest: subscriber has everything")

func testReadFromMiddle(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	ctx := ctxT(t)
	stream := Stream("session")
	var batch []eventstore.NewEvent
	for i := 1; i <= 10; i++ {
		batch = append(batch, Event(fmt.Sprint(i)))
	}
	res, err := s.Append(ctx, stream, eventstore.NoStream, batch)
	require.NoError(t, err)

	got, err := s.ReadStream(ctx, stream, 4)
	require.NoError(t, err)
	assert.Equal(t, []string{"4", "5", "6", "7", "8", "9", "10"}, bodies(got))

	got, err = s.ReadStream(ctx, stream, 11)
	require.NoError(t, err)
	assert.Empty(t, got, "reading past the end gives nothing")

	got, err = s.ReadStream(ctx, stream, 0)
	require.NoError(t, err)
	assert.Len(t, got, 10, "from version 0 reads the whole stream")

	p3 := res.Events[2].Position
	got, err = s.ReadAll(ctx, p3, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"4", "5", "6"}, bodies(got), "ReadAll starts after the position and honours the limit")

	got, err = s.ReadAll(ctx, res.LastPosition(), 10)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func testReadPositions(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	ctx := ctxT(t)
	a, b := Stream("session"), Stream("client")
	var positions []int64
	for i := 1; i <= 6; i++ {
		stream := a
		if i%2 == 0 {
			stream = b
		}
		res, err := s.Append(ctx, stream, eventstore.AnyVersion, []eventstore.NewEvent{Event(fmt.Sprint(i))})
		require.NoError(t, err)
		positions = append(positions, res.LastPosition())
	}
	all, err := s.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	require.Len(t, all, 6)

	// In any order, repeated, with a position past the head: the events
	// that are there, in position order, as ReadAll gives them.
	got, err := s.ReadPositions(ctx, []int64{positions[4], positions[1], positions[4], positions[5] + 1000, positions[0]})
	require.NoError(t, err)
	assert.Equal(t, []string{"1", "2", "5"}, bodies(got))
	assert.Equal(t, []eventstore.RecordedEvent{all[0], all[1], all[4]}, got)

	got, err = s.ReadPositions(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, got)

	_, err = s.ReadPositions(ctx, []int64{positions[0], 0})
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument, "positions start at 1")
	_, err = s.ReadPositions(ctx, make([]int64, eventstore.MaxReadPositions+1))
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument, "too many at once")
	many := make([]int64, eventstore.MaxReadPositions)
	for i := range many {
		many[i] = positions[5] + int64(i) + 1
	}
	copy(many, positions)
	got, err = s.ReadPositions(ctx, many)
	require.NoError(t, err)
	assert.Len(t, got, 6, "the most positions at once")
}

func testPayloads(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	ctx := ctxT(t)
	stream := Stream("session")
	big := strings.Repeat("x", 1<<20)
	unicode := "Ça va? 心理健康 — ✓ 🧠 \u00e9\u0301 \"quoted\" \\ back\nline"
	res, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{Event(big), Event(unicode)})
	require.NoError(t, err)
	got, err := s.ReadStream(ctx, stream, 1)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, big, bodyOf(got[0]), "a 1 MiB payload round-trips")
	assert.Equal(t, unicode, bodyOf(got[1]), "unicode round-trips")
	assert.Equal(t, res.Events[1].ID, got[1].ID)

	meta := Event("m")
	meta.Metadata.ActorID = "Zoë-👩‍⚕️"
	_, err = s.Append(ctx, stream, eventstore.Exactly(2), []eventstore.NewEvent{meta})
	require.NoError(t, err)
	got, err = s.ReadStream(ctx, stream, 3)
	require.NoError(t, err)
	assert.Equal(t, "Zoë-👩‍⚕️", got[0].Metadata.ActorID)
}

func testBadInput(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	ctx := ctxT(t)
	stream := Stream("session")
	one := func(mut func(*eventstore.NewEvent)) []eventstore.NewEvent {
		e := Event("x")
		mut(&e)
		return []eventstore.NewEvent{e}
	}
	cases := []struct {
		name    string
		stream  eventstore.StreamID
		events  []eventstore.NewEvent
		want    error
		mention string
	}{
		{"empty stream id", eventstore.StreamID{Type: "session"}, one(func(*eventstore.NewEvent) {}), eventstore.ErrInvalidStream, "empty"},
		{"bad stream type", eventstore.StreamID{Type: "Bad-Type", ID: "1"}, one(func(*eventstore.NewEvent) {}), eventstore.ErrInvalidStream, "Bad-Type"},
		{"NUL in stream id", eventstore.StreamID{Type: "session", ID: "a\x00b"}, one(func(*eventstore.NewEvent) {}), eventstore.ErrInvalidStream, "control"},
		{"invalid UTF-8 in stream id", eventstore.StreamID{Type: "session", ID: "a\xffb"}, one(func(*eventstore.NewEvent) {}), eventstore.ErrInvalidStream, "UTF-8"},
		{"no events", stream, nil, eventstore.ErrInvalidEvent, "no events"},
		{"no type", stream, one(func(e *eventstore.NewEvent) { e.Type = "" }), eventstore.ErrInvalidEvent, "no type"},
		{"unknown type", stream, one(func(e *eventstore.NewEvent) { e.Type = "test.unheard_of" }), eventstore.ErrUnknownEventType, "test.unheard_of"},
		{"unknown schema version", stream, one(func(e *eventstore.NewEvent) { e.SchemaVersion = 3 }), eventstore.ErrUnknownEventType, "3"},
		{"invalid JSON", stream, one(func(e *eventstore.NewEvent) { e.Data = []byte(`{"body":`) }), eventstore.ErrInvalidEvent, "JSON"},
		{"JSON not an object", stream, one(func(e *eventstore.NewEvent) { e.Data = []byte(`[1,2]`) }), eventstore.ErrInvalidEvent, "JSON object"},
		{"empty data", stream, one(func(e *eventstore.NewEvent) { e.Data = nil }), eventstore.ErrInvalidEvent, "JSON"},
		{"invalid JSON shaped as an object", stream, one(func(e *eventstore.NewEvent) { e.Data = []byte(`{"body": }`) }), eventstore.ErrInvalidEvent, "JSON"},
		{"two objects", stream, one(func(e *eventstore.NewEvent) { e.Data = []byte(`{} {}`) }), eventstore.ErrInvalidEvent, "JSON"},
		{"the second event invalid", stream, []eventstore.NewEvent{Event("fine"), {Type: "test.happened", Data: []byte(`{"body": "\x"}`)}},
			eventstore.ErrInvalidEvent, "event 1"},
	}
	for _, c := range cases {
		_, err := s.Append(ctx, c.stream, eventstore.AnyVersion, c.events)
		assert.ErrorIs(t, err, c.want, c.name)
		if err != nil {
			assert.Contains(t, err.Error(), c.mention, c.name)
		}
	}
	stored, err := s.Append(ctx, Stream("session"), eventstore.NoStream, []eventstore.NewEvent{Event("first")})
	require.NoError(t, err)
	reused := Event("again")
	reused.ID = stored.Events[0].ID
	_, err = s.Append(ctx, Stream("session"), eventstore.NoStream, []eventstore.NewEvent{reused})
	assert.ErrorIs(t, err, eventstore.ErrInvalidEvent, "an event id is stored once")
	storedHead := stored.LastPosition()

	_, err = s.Append(ctx, stream, eventstore.ExpectedVersion(-2), []eventstore.NewEvent{Event("x")})
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument, "expected version below AnyVersion")

	_, err = s.ReadStream(ctx, stream, -1)
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	_, err = s.ReadStream(ctx, eventstore.StreamID{}, 1)
	assert.ErrorIs(t, err, eventstore.ErrInvalidStream)
	_, err = s.ReadAll(ctx, -5, 10)
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	_, err = s.ReadAll(ctx, 0, 0)
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	err = s.Subscribe(ctx, -1, func(eventstore.RecordedEvent) error { return nil })
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)

	requireHead(t, s, storedHead)
}

func testContextCancellation(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stream := Stream("session")
	_, err := s.Append(ctx, stream, eventstore.AnyVersion, []eventstore.NewEvent{Event("x")})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.ReadStream(ctx, stream, 1)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.ReadAll(ctx, 0, 10)
	assert.ErrorIs(t, err, context.Canceled)
	err = s.Subscribe(ctx, 0, func(eventstore.RecordedEvent) error { return nil })
	assert.ErrorIs(t, err, context.Canceled)

	head, err := s.HeadPosition(context.Background())
	require.NoError(t, err)
	assert.Zero(t, head, "a cancelled append wrote nothing")

	// A subscription waiting for events ends when its context does.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	err = s.Subscribe(ctx2, 0, func(eventstore.RecordedEvent) error { return nil })
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func testClosed(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	ctx := ctxT(t)
	stream := Stream("session")
	_, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{Event("x")})
	require.NoError(t, err)

	waiting := make(chan error, 1)
	go func() {
		waiting <- s.Subscribe(ctx, 1, func(eventstore.RecordedEvent) error { return nil })
	}()
	require.NoError(t, s.Close())
	_, err = s.Append(ctx, stream, eventstore.AnyVersion, []eventstore.NewEvent{Event("y")})
	assert.ErrorIs(t, err, eventstore.ErrClosed)
	_, err = s.ReadAll(ctx, 0, 10)
	assert.ErrorIs(t, err, eventstore.ErrClosed)
	_, err = s.ReadPositions(ctx, []int64{1})
	assert.ErrorIs(t, err, eventstore.ErrClosed)
	select {
	case err := <-waiting:
		assert.ErrorIs(t, err, eventstore.ErrClosed, "closing the store ends its subscriptions")
	case <-time.After(10 * time.Second):
		t.Fatal("a subscription outlived Close")
	}
}

func bodyOf(e eventstore.RecordedEvent) string {
	var m map[string]string
	_ = json.Unmarshal(e.Data, &m)
	return m["body"]
}

func bodies(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = bodyOf(e)
	}
	return out
}

func positions(evs []eventstore.RecordedEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Position
	}
	return out
}

// A store that is an eventstore.BodyReader reads what ReadAll reads, page
// by page, with each event's Metadata as stored or left zero.
func testReadAllBodies(t *testing.T, newStore Factory) {
	s := newStore(t, Options())
	bodies, ok := s.(eventstore.BodyReader)
	if !ok {
		t.Skipf("%T reads no bodies alone", s)
	}
	ctx := ctxT(t)
	for i := range 5 {
		_, err := s.Append(ctx, Stream("session"), eventstore.NoStream, []eventstore.NewEvent{Event(fmt.Sprint(i)), Event("x")})
		require.NoError(t, err)
	}
	all, err := s.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	require.Len(t, all, 10)
	require.NotEmpty(t, all[0].Metadata.ActorID, "the events have metadata to leave out")
	var got []eventstore.RecordedEvent
	after := int64(0)
	for {
		page, err := bodies.ReadAllBodies(ctx, after, 3)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 3)
		got = append(got, page...)
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].Position
	}
	require.Len(t, got, len(all))
	for i, e := range got {
		if e.Metadata != (eventstore.Metadata{}) {
			assert.Equal(t, all[i].Metadata, e.Metadata, "metadata as stored, or none")
		}
		e.Metadata = all[i].Metadata
		assert.Equal(t, all[i], e)
	}
	_, err = bodies.ReadAllBodies(ctx, -1, 3)
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	_, err = bodies.ReadAllBodies(ctx, 0, 0)
	assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
}
