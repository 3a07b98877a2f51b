package bus

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// natsTestURL is the NATS server the tests use; .ci/nats.sh starts one.
var natsTestURL = envOr("CAREFLOW_TEST_NATS_URL", "nats://127.0.0.1:4222")

func requireNATS(t *testing.T) {
	t.Helper()
	requireService(t, "NATS JetStream at "+natsTestURL, func(ctx context.Context) error {
		conn, err := nats.Connect(natsTestURL, nats.Timeout(5*time.Second))
		if err != nil {
			return err
		}
		defer conn.Close()
		js, err := conn.JetStream(nats.Context(ctx))
		if err != nil {
			return err
		}
		_, err = js.AccountInfo(nats.Context(ctx))
		return err
	})
}

// newNATSTransport connects to a stream and subject space of the test's
// own, deleted again at cleanup.
func newNATSTransport(t *testing.T, ctx context.Context) *Transport {
	t.Helper()
	suffix := randomSuffix(t)
	transport, err := NewTransport(ctx, Config{
		Transport:         TransportNATS,
		NATSURL:           natsTestURL,
		NATSStream:        "CAREFLOW_TEST_" + strings.ToUpper(suffix),
		NATSSubjectPrefix: "test" + suffix,
		NATSMaxAge:        time.Hour,
		NATSAckWait:       10 * time.Second,
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, transport.Close()) })
	t.Cleanup(func() {
		js, err := transport.natsConn.JetStream()
		require.NoError(t, err)
		require.NoError(t, js.DeleteStream(transport.Config().NATSStream))
	})
	return transport
}

func TestRelayOverNATSJetStream(t *testing.T) {
	requireNATS(t)
	ctx := testContext(t)
	dir := t.TempDir()
	transport := newNATSTransport(t, ctx)
	publisher, err := transport.NewPublisher()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, publisher.Close()) })

	info, err := mustJetStream(t, transport).StreamInfo(transport.Config().NATSStream)
	require.NoError(t, err)
	assert.Equal(t, []string{transport.Config().NATSSubjectPrefix + ".careflow.>"}, info.Config.Subjects)
	assert.Equal(t, nats.FileStorage, info.Config.Storage)

	inbox := openInbox(t, ctx, dir)
	createEffects(t, ctx, inbox.DB())
	rec := &recorder{}
	router, err := NewRouter(RouterConfig{MaxRetries: 2, RetryInitialInterval: time.Millisecond, RetryMaxInterval: time.Millisecond}, publisher, nil)
	require.NoError(t, err)
	handle := rec.observe(t, inbox.HandleTx("audit", writeEffect(SQLite)))
	var auditSubs []message.Subscriber
	for _, topic := range []string{"careflow.session", "careflow.client"} {
		sub, err := transport.NewSubscriber("audit")
		require.NoError(t, err)
		auditSubs = append(auditSubs, sub)
		router.AddConsumerHandler("audit_"+topic, topic, sub, handle)
	}
	stopRouter := runRouter(t, router)

	store := newMemoryStore(t)
	appendInterleaved(t, ctx, store, testStreams, 10)
	checkpoints, _ := openCheckpoints(t, ctx, filepath.Join(dir, "relay.db"))
	relay, err := NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: publisher, Checkpoints: &flakyCheckpoints{Checkpoints: checkpoints, failAt: 5}, BatchSize: 1})
	require.NoError(t, err)
	require.ErrorIs(t, relay.Run(ctx), errCheckpointWrite)

	relay, err = NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: publisher, Checkpoints: checkpoints, BatchSize: 1})
	require.NoError(t, err)
	stop := startRelay(t, relay)
	waitUntil(t, "30 events relayed", func() bool { return relay.Position() == 30 })
	require.ErrorIs(t, stop(), context.Canceled)
	waitUntil(t, "30 events handled", func() bool {
		return countRows(t, ctx, inbox.DB(), `SELECT count(*) FROM effects`) == 30
	})

	events, err := store.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	// Position 5 was published twice; JetStream dropped the second copy by
	// its Nats-Msg-Id (the event id), so each event arrived once, in order.
	assertOncePerEventInStreamOrder(t, events, rec.raw())
	assert.Equal(t, 30, countRows(t, ctx, inbox.DB(), `SELECT count(*) FROM bus_inbox WHERE consumer = 'audit'`))

	// "audit" goes away while 6 more events are published; when it comes
	// back its durable consumers resume after what it acknowledged.
	stopRouter()
	for _, sub := range auditSubs {
		// The router closes its subscribers without waiting; this waits
		// until the server has seen them go, so no message is pushed to a
		// departing subscription and redelivered late, out of order.
		require.NoError(t, sub.Close())
	}
	appendInterleaved(t, ctx, store, testStreams, 2)
	relay, err = NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: publisher, Checkpoints: checkpoints})
	require.NoError(t, err)
	stop = startRelay(t, relay)
	waitUntil(t, "36 events relayed", func() bool { return relay.Position() == 36 })
	require.ErrorIs(t, stop(), context.Canceled)
	router, err = NewRouter(RouterConfig{}, publisher, nil)
	require.NoError(t, err)
	for _, topic := range []string{"careflow.session", "careflow.client"} {
		sub, err := transport.NewSubscriber("audit")
		require.NoError(t, err)
		router.AddConsumerHandler("audit_"+topic, topic, sub, handle)
	}
	runRouter(t, router)
	waitUntil(t, "36 events handled", func() bool {
		return countRows(t, ctx, inbox.DB(), `SELECT count(*) FROM effects`) == 36
	})
	events, err = store.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	assertOncePerEventInStreamOrder(t, events, rec.raw())

	// A consumer that subscribes later still gets the whole stream: its
	// durable JetStream consumer starts at the beginning.
	late := &recorder{}
	lateInbox, err := OpenSQLiteInbox(ctx, filepath.Join(dir, "late.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lateInbox.Close() })
	lateRouter, err := NewRouter(RouterConfig{}, publisher, nil)
	require.NoError(t, err)
	sub, err := transport.NewSubscriber("late")
	require.NoError(t, err)
	lateRouter.AddConsumerHandler("late_session", "careflow.session", sub,
		late.observe(t, lateInbox.Handle("late", func(*message.Message) error { return nil })))
	runRouter(t, lateRouter)
	waitUntil(t, "24 session events for the late consumer", func() bool { return late.count() >= 24 })
	sessionEvents := 0
	for _, e := range events {
		if e.Stream.Type == "session" {
			sessionEvents++
		}
	}
	assert.Equal(t, 24, sessionEvents)
	assert.Len(t, late.raw(), 24)
}

func mustJetStream(t *testing.T, transport *Transport) nats.JetStreamContext {
	t.Helper()
	js, err := transport.natsConn.JetStream()
	require.NoError(t, err)
	return js
}
