package bus

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	sqlitestore "github.com/careflow/careflow/eventstore/sqlite"
)

var testStreams = []eventstore.StreamID{
	eventstore.NewStreamID("session", "a"),
	eventstore.NewStreamID("session", "b"),
	eventstore.NewStreamID("client", "c"),
}

// goChannelPipeline is an in-process bus with one consumer, "audit", that
// handles careflow.session and careflow.client through a SQLite inbox and
// writes one effect row per event in the inbox transaction.
type goChannelPipeline struct {
	transport *Transport
	publisher message.Publisher
	inbox     *Inbox
	rec       *recorder
}

func newGoChannelPipeline(t *testing.T, ctx context.Context, dir string) *goChannelPipeline {
	t.Helper()
	transport, err := NewTransport(ctx, Config{}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, transport.Close()) })
	publisher, err := transport.NewPublisher()
	require.NoError(t, err)

	inbox := openInbox(t, ctx, dir)
	createEffects(t, ctx, inbox.DB())
	p := &goChannelPipeline{transport: transport, publisher: publisher, inbox: inbox, rec: &recorder{}}

	router, err := NewRouter(RouterConfig{MaxRetries: 2, RetryInitialInterval: time.Millisecond, RetryMaxInterval: time.Millisecond}, publisher, nil)
	require.NoError(t, err)
	handle := p.rec.observe(t, inbox.HandleTx("audit", writeEffect(SQLite)))
	for _, topic := range []string{"careflow.session", "careflow.client"} {
		sub, err := transport.NewSubscriber("audit")
		require.NoError(t, err)
		router.AddConsumerHandler("audit_"+topic, topic, sub, handle)
	}
	runRouter(t, router)
	return p
}

func TestRelayOverGoChannelDeliversEveryEventOnceInStreamOrderAndResumesFromCheckpoint(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	store := newMemoryStore(t)
	p := newGoChannelPipeline(t, ctx, dir)
	checkpointPath := filepath.Join(dir, "relay.db")

	appendInterleaved(t, ctx, store, testStreams, 20)
	checkpoints, _ := openCheckpoints(t, ctx, checkpointPath)
	relay, err := NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: p.publisher, Checkpoints: checkpoints})
	require.NoError(t, err)
	stop := startRelay(t, relay)
	waitUntil(t, "first 60 events relayed", func() bool { return relay.Position() == 60 })
	require.ErrorIs(t, stop(), context.Canceled)

	events, err := store.ReadAll(ctx, 0, 1000)
	require.NoError(t, err)
	require.Len(t, events, 60)
	assertOncePerEventInStreamOrder(t, events, p.rec.raw())

	// A new relay on a freshly opened checkpoint file publishes only what
	// came after: no delivery of the first 60 again.
	appendInterleaved(t, ctx, store, testStreams, 5)
	reopened, _ := openCheckpoints(t, ctx, checkpointPath)
	saved, err := reopened.Load(ctx, "relay")
	require.NoError(t, err)
	require.Equal(t, int64(60), saved)
	relay, err = NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: p.publisher, Checkpoints: reopened})
	require.NoError(t, err)
	stop = startRelay(t, relay)
	waitUntil(t, "75 events relayed", func() bool { return relay.Position() == 75 })
	require.ErrorIs(t, stop(), context.Canceled)

	events, err = store.ReadAll(ctx, 0, 1000)
	require.NoError(t, err)
	require.Len(t, events, 75)
	assertOncePerEventInStreamOrder(t, events, p.rec.raw())
	assert.Equal(t, 75, countRows(t, ctx, p.inbox.DB(), `SELECT count(*) FROM effects`))
}

func TestRelayFollowsLiveCommitsOfTheSQLiteStore(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	store, err := sqlitestore.Open(ctx, sqlitestore.Config{Path: filepath.Join(dir, "events.db")}, eventstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	p := newGoChannelPipeline(t, ctx, dir)
	checkpoints, _ := openCheckpoints(t, ctx, filepath.Join(dir, "relay.db"))
	relay, err := NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: p.publisher, Checkpoints: checkpoints, BatchSize: 7})
	require.NoError(t, err)
	stop := startRelay(t, relay)

	// Once the first event is through, the relay has caught up and waits:
	// every later event reaches it through the store's commit notification.
	appendInterleaved(t, ctx, store, []eventstore.StreamID{eventstore.NewStreamID("client", "first")}, 1)
	waitUntil(t, "the first event relayed", func() bool { return relay.Position() == 1 })
	appendInterleaved(t, ctx, store, testStreams, 15)
	waitUntil(t, "46 events relayed", func() bool { return relay.Position() == 46 })
	require.ErrorIs(t, stop(), context.Canceled)

	events, err := store.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	assertOncePerEventInStreamOrder(t, events, p.rec.raw())
	saved, err := checkpoints.Load(ctx, "relay")
	require.NoError(t, err)
	assert.Equal(t, int64(46), saved)
}

func TestRelayRepublishesWhenCheckpointWriteFailsAndInboxKeepsOne(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	store := newMemoryStore(t)
	p := newGoChannelPipeline(t, ctx, dir)
	stream := eventstore.NewStreamID("session", "x")
	appendInterleaved(t, ctx, store, []eventstore.StreamID{stream}, 10)

	checkpoints, _ := openCheckpoints(t, ctx, filepath.Join(dir, "relay.db"))
	flaky := &flakyCheckpoints{Checkpoints: checkpoints, failAt: 4}
	relay, err := NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: p.publisher, Checkpoints: flaky, BatchSize: 1})
	require.NoError(t, err)
	// The "crash": Run stops right after publishing position 4.
	require.ErrorIs(t, relay.Run(ctx), errCheckpointWrite)
	saved, err := checkpoints.Load(ctx, "relay")
	require.NoError(t, err)
	require.Equal(t, int64(3), saved, "the checkpoint must not pass an event whose checkpoint write failed")
	require.Len(t, p.rec.raw(), 4)

	// Restart: position 4 is published a second time.
	relay, err = NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: p.publisher, Checkpoints: checkpoints, BatchSize: 1})
	require.NoError(t, err)
	stop := startRelay(t, relay)
	waitUntil(t, "all 10 events relayed", func() bool { return relay.Position() == 10 })
	require.ErrorIs(t, stop(), context.Canceled)

	events, err := store.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	fourth := events[3]
	require.Equal(t, int64(4), fourth.Position)
	deliveries := 0
	for _, d := range p.rec.raw() {
		if d.eventID == fourth.ID.String() {
			deliveries++
		}
	}
	assert.Equal(t, 2, deliveries, "the event whose checkpoint failed arrives twice")
	assert.Len(t, p.rec.raw(), 11)
	db := p.inbox.DB()
	assert.Equal(t, 10, countRows(t, ctx, db, `SELECT count(*) FROM bus_inbox WHERE consumer = 'audit'`))
	assert.Equal(t, 10, countRows(t, ctx, db, `SELECT count(*) FROM effects`), "the inbox keeps one effect per event")
	assert.Equal(t, 1, countRows(t, ctx, db, `SELECT count(*) FROM effects WHERE event_id = ?`, fourth.ID.String()))
}

func TestRelayRepublishesTheWholeUncheckpointedBatchAndInboxKeepsOne(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	store := newMemoryStore(t)
	p := newGoChannelPipeline(t, ctx, dir)
	appendInterleaved(t, ctx, store, []eventstore.StreamID{eventstore.NewStreamID("session", "batch")}, 10)

	checkpoints, _ := openCheckpoints(t, ctx, filepath.Join(dir, "relay.db"))
	// Batches of 4: checkpoints at 4, 8, 10; the one at 8 fails once.
	relay, err := NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: p.publisher,
		Checkpoints: &flakyCheckpoints{Checkpoints: checkpoints, failAt: 8}, BatchSize: 4})
	require.NoError(t, err)
	require.ErrorIs(t, relay.Run(ctx), errCheckpointWrite)
	saved, err := checkpoints.Load(ctx, "relay")
	require.NoError(t, err)
	require.Equal(t, int64(4), saved)
	assert.Equal(t, int64(4), relay.Position())

	relay, err = NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: p.publisher, Checkpoints: checkpoints, BatchSize: 4})
	require.NoError(t, err)
	stop := startRelay(t, relay)
	waitUntil(t, "all 10 events relayed", func() bool { return relay.Position() == 10 })
	require.ErrorIs(t, stop(), context.Canceled)

	raw := p.rec.raw()
	require.Len(t, raw, 14, "positions 5 to 8 were published twice")
	for i, want := range []int64{1, 2, 3, 4, 5, 6, 7, 8, 5, 6, 7, 8, 9, 10} {
		assert.Equal(t, want, raw[i].position, "delivery %d", i)
	}
	assert.Equal(t, 10, countRows(t, ctx, p.inbox.DB(), `SELECT count(*) FROM effects`))
}

func TestRelayServeRestartsAfterAFailureAndStopsWithContext(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	store := newMemoryStore(t)
	p := newGoChannelPipeline(t, ctx, dir)
	appendInterleaved(t, ctx, store, []eventstore.StreamID{eventstore.NewStreamID("client", "y")}, 5)

	checkpoints, _ := openCheckpoints(t, ctx, filepath.Join(dir, "relay.db"))
	relay, err := NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: p.publisher, Checkpoints: &flakyCheckpoints{Checkpoints: checkpoints, failAt: 2}, BatchSize: 1})
	require.NoError(t, err)
	serveCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Serve(serveCtx, time.Millisecond, 10*time.Millisecond) }()
	waitUntil(t, "all 5 events relayed", func() bool { return relay.Position() == 5 })
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(waitBound):
		t.Fatal("Serve did not stop")
	}
	assert.Len(t, p.rec.raw(), 6, "position 2 published twice")
	assert.Equal(t, 5, countRows(t, ctx, p.inbox.DB(), `SELECT count(*) FROM effects`))

	require.Error(t, relay.Serve(ctx, 0, time.Second))
	require.Error(t, relay.Serve(ctx, time.Second, time.Millisecond))
}

func TestRelayStopsAtAnEventItCannotRouteWithoutMovingTheCheckpoint(t *testing.T) {
	ctx := testContext(t)
	store := newMemoryStore(t)
	_, err := store.Append(ctx, eventstore.NewStreamID("session", "z"), eventstore.NoStream, []eventstore.NewEvent{{Type: "Not A Type", Data: json.RawMessage(`{}`)}})
	require.NoError(t, err)
	checkpoints, _ := openCheckpoints(t, ctx, filepath.Join(t.TempDir(), "relay.db"))
	pub := &recordingPublisher{}
	relay, err := NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: pub, Checkpoints: checkpoints})
	require.NoError(t, err)

	require.ErrorIs(t, relay.Run(ctx), ErrUnroutable)
	saved, err := checkpoints.Load(ctx, "relay")
	require.NoError(t, err)
	assert.Zero(t, saved)
	assert.Empty(t, pub.topics)
}

func TestRelayDoesNotMoveTheCheckpointWhenPublishFails(t *testing.T) {
	ctx := testContext(t)
	store := newMemoryStore(t)
	appendInterleaved(t, ctx, store, []eventstore.StreamID{eventstore.NewStreamID("session", "p")}, 3)
	checkpoints, _ := openCheckpoints(t, ctx, filepath.Join(t.TempDir(), "relay.db"))
	pub := &recordingPublisher{failFrom: 2}
	relay, err := NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: pub, Checkpoints: checkpoints})
	require.NoError(t, err)

	require.ErrorIs(t, relay.Run(ctx), errPublish)
	saved, err := checkpoints.Load(ctx, "relay")
	require.NoError(t, err)
	assert.Equal(t, int64(1), saved)
	assert.Equal(t, []string{"careflow.session"}, pub.topics)
}

func TestRelayCheckpointsWhatItPublishedWhenStoppedMidBatch(t *testing.T) {
	ctx := testContext(t)
	store := newMemoryStore(t)
	appendInterleaved(t, ctx, store, []eventstore.StreamID{eventstore.NewStreamID("session", "stop")}, 10)
	checkpoints, _ := openCheckpoints(t, ctx, filepath.Join(t.TempDir(), "relay.db"))
	runCtx, cancel := context.WithCancel(ctx)
	pub := &recordingPublisher{afterPublish: func(calls int) {
		if calls == 3 {
			cancel()
		}
	}}
	relay, err := NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: pub, Checkpoints: checkpoints, BatchSize: 10})
	require.NoError(t, err)

	require.ErrorIs(t, relay.Run(runCtx), context.Canceled)
	assert.Len(t, pub.messages, 3)
	saved, err := checkpoints.Load(ctx, "relay")
	require.NoError(t, err)
	assert.Equal(t, int64(3), saved, "the three published events are not published again")
}

func TestNewRelayRefusesMissingParts(t *testing.T) {
	_, err := NewRelay(RelayConfig{BatchSize: -1})
	require.Error(t, err)
	for _, want := range []string{"name is empty", "needs a store", "needs a publisher", "needs checkpoints", "BatchSize -1"} {
		assert.ErrorContains(t, err, want)
	}
}

func TestCheckpointsStartAtZeroNeverMoveBackAndRefuseNegative(t *testing.T) {
	ctx := testContext(t)
	checkpoints, _ := openCheckpoints(t, ctx, filepath.Join(t.TempDir(), "relay.db"))
	got, err := checkpoints.Load(ctx, "r")
	require.NoError(t, err)
	assert.Zero(t, got)

	require.NoError(t, checkpoints.Save(ctx, "r", 7))
	require.NoError(t, checkpoints.Save(ctx, "r", 5))
	require.NoError(t, checkpoints.Save(ctx, "other", 1))
	got, err = checkpoints.Load(ctx, "r")
	require.NoError(t, err)
	assert.Equal(t, int64(7), got)
	require.Error(t, checkpoints.Save(ctx, "r", -1))
}

func TestOpenSQLiteRefusesNonFilePaths(t *testing.T) {
	ctx := testContext(t)
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=memory"} {
		_, err := OpenSQLite(ctx, path)
		assert.Error(t, err, path)
	}
}

var errPublish = &publishError{}

type publishError struct{}

func (*publishError) Error() string { return "publish failed (injected)" }

// recordingPublisher records topics and fails from the failFrom-th
// publish on (1-based; 0 never fails).
type recordingPublisher struct {
	failFrom     int
	afterPublish func(calls int)
	calls        int
	topics       []string
	messages     []*message.Message
}

func (p *recordingPublisher) Publish(topic string, messages ...*message.Message) error {
	p.calls++
	if p.failFrom > 0 && p.calls >= p.failFrom {
		return errPublish
	}
	p.topics = append(p.topics, topic)
	p.messages = append(p.messages, messages...)
	if p.afterPublish != nil {
		p.afterPublish(p.calls)
	}
	return nil
}

func (p *recordingPublisher) Close() error { return nil }

func TestToMessageCarriesTheEnvelopeAndDecodeReadsItBack(t *testing.T) {
	id := uuid.MustParse("0190c3d2-0000-7000-8000-000000000001")
	recorded := time.Date(2026, 11, 22, 10, 11, 12, 13, time.UTC)
	occurred := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	e := eventstore.RecordedEvent{
		ID:            id,
		Stream:        eventstore.NewStreamID("session", "s-1"),
		Version:       3,
		Position:      42,
		Type:          "session.scheduled",
		SchemaVersion: 2,
		Data:          json.RawMessage(`{"at":"2026-12-01T09:00:00Z"}`),
		Metadata: eventstore.Metadata{
			ActorID: "u-1", ActorRole: "provider", CommandID: "cmd-1",
			CorrelationID: "corr-1", CausationID: "cause-1", ClinicID: "clinic-1", OccurredAt: occurred,
		},
		RecordedAt: recorded,
	}
	topic, msg, err := ToMessage(e)
	require.NoError(t, err)
	assert.Equal(t, "careflow.session", topic)
	assert.Equal(t, id.String(), msg.UUID)
	assert.JSONEq(t, `{"at":"2026-12-01T09:00:00Z"}`, string(msg.Payload))
	assert.Equal(t, message.Metadata{
		"type": "session.scheduled", "stream": "session-s-1", "stream_type": "session",
		"version": "3", "position": "42", "schema_version": "2",
		"correlation_id": "corr-1", "causation_id": "cause-1", "clinic_id": "clinic-1",
		"recorded_at": "2026-11-22T10:11:12.000000013Z",
		"actor_id":    "u-1", "actor_role": "provider", "command_id": "cmd-1",
		"occurred_at": "2026-11-22T10:00:00Z",
	}, msg.Metadata)

	back, err := Decode(msg)
	require.NoError(t, err)
	assert.Equal(t, e, back)

	_, err = Decode(message.NewMessage("not-a-uuid", []byte(`{}`)))
	require.ErrorIs(t, err, ErrNotAnEvent)
}

func TestTopicForTakesTheFamilyBeforeTheFirstDot(t *testing.T) {
	for eventType, want := range map[string]string{
		"session.scheduled":            "careflow.session",
		"assignment.feedback.given":    "careflow.assignment",
		"care_plan.created":            "careflow.care_plan",
		"clinic":                       "careflow.clinic",
		"institute_admin.appointed.v2": "careflow.institute_admin",
	} {
		got, err := TopicFor(eventType)
		require.NoError(t, err, eventType)
		assert.Equal(t, want, got, eventType)
	}
	for _, bad := range []string{"", ".x", "Session.scheduled", "se ssion.x", "poison.x", "a>b.c", "a*.c"} {
		_, err := TopicFor(bad)
		assert.ErrorIs(t, err, ErrUnroutable, bad)
	}
}

func TestSQLiteCheckpointFileIsOwnerOnly(t *testing.T) {
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "sub", "relay.db")
	openCheckpoints(t, ctx, path)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, "-rw-------", info.Mode().String())
}
