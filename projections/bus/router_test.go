package bus

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
)

const secretNote = "client disclosed PHI-SECRET-7f3a"

// routerFixture is a GoChannel bus with a router that retries quickly.
type routerFixture struct {
	transport *Transport
	publisher message.Publisher
	router    *message.Router
	poisoned  <-chan *message.Message
}

func newRouterFixture(t *testing.T, ctx context.Context, maxRetries int) *routerFixture {
	t.Helper()
	transport, err := NewTransport(ctx, Config{Transport: TransportGoChannel}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, transport.Close()) })
	publisher, err := transport.NewPublisher()
	require.NoError(t, err)
	poisonSub, err := transport.NewSubscriber("poison_watch")
	require.NoError(t, err)
	subCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	poisoned, err := poisonSub.Subscribe(subCtx, DefaultPoisonTopic)
	require.NoError(t, err)
	router, err := NewRouter(RouterConfig{
		MaxRetries:           maxRetries,
		RetryInitialInterval: time.Millisecond,
		RetryMaxInterval:     2 * time.Millisecond,
		NewID:                func() string { return "poison-1" },
		Clock:                func() time.Time { return time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC) },
	}, publisher, nil)
	require.NoError(t, err)
	return &routerFixture{transport: transport, publisher: publisher, router: router, poisoned: poisoned}
}

func (f *routerFixture) subscriber(t *testing.T, consumer string) message.Subscriber {
	t.Helper()
	sub, err := f.transport.NewSubscriber(consumer)
	require.NoError(t, err)
	return sub
}

func relayedMessage(t *testing.T) (string, *message.Message, eventstore.RecordedEvent) {
	t.Helper()
	e := eventstore.RecordedEvent{
		ID:            [16]byte{1, 2, 3},
		Stream:        eventstore.NewStreamID("client", "c-9"),
		Version:       1,
		Position:      17,
		Type:          "client.noted",
		SchemaVersion: 1,
		Data:          []byte(`{"note":"` + secretNote + `"}`),
		Metadata:      eventstore.Metadata{CorrelationID: "corr-9", ClinicID: "clinic-9"},
		RecordedAt:    time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC),
	}
	topic, msg, err := ToMessage(e)
	require.NoError(t, err)
	return topic, msg, e
}

// publishAsync publishes without waiting: a GoChannel Publish returns only
// once every subscriber acknowledged, which may be the test itself.
func publishAsync(t *testing.T, pub message.Publisher, topic string, msg *message.Message) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- pub.Publish(topic, msg) }()
	t.Cleanup(func() {
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(waitBound):
			t.Error("publish did not return")
		}
	})
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-ch:
		require.True(t, ok, "channel closed")
		msg.Ack()
		return msg
	case <-time.After(waitBound):
		t.Fatal("no message arrived")
		return nil
	}
}

func TestPoisonQueueKeepsEventIDTypeAndErrorButNoPayload(t *testing.T) {
	ctx := testContext(t)
	f := newRouterFixture(t, ctx, 2)
	var calls atomic.Int32
	topic, msg, e := relayedMessage(t)
	f.router.AddConsumerHandler("notifier", topic, f.subscriber(t, "notifier"), func(*message.Message) error {
		calls.Add(1)
		return errors.New("template missing")
	})
	runRouter(t, f.router)

	publishAsync(t, f.publisher, topic, msg)
	poisoned := receive(t, f.poisoned)

	assert.Equal(t, int32(3), calls.Load(), "one try and two retries before poisoning")
	assert.Equal(t, "poison-1", poisoned.UUID, "a fresh id, so transport dedupe cannot drop it")
	assert.Equal(t, e.ID.String(), poisoned.Metadata.Get(MetaEventID))
	assert.Equal(t, "client.noted", poisoned.Metadata.Get(MetaType))
	assert.Equal(t, "template missing", poisoned.Metadata.Get(MetaReason))
	assert.Equal(t, "notifier", poisoned.Metadata.Get(MetaHandler))
	assert.Equal(t, topic, poisoned.Metadata.Get(MetaTopic))
	assert.Equal(t, "17", poisoned.Metadata.Get(MetaPosition))
	assert.Equal(t, "corr-9", poisoned.Metadata.Get(MetaCorrelationID))
	assert.Equal(t, "2026-11-22T13:00:00Z", poisoned.Metadata.Get(MetaPoisonedAt))
	assert.JSONEq(t, `{"event_id":"`+e.ID.String()+`","type":"client.noted","reason":"template missing","topic":"careflow.client","handler":"notifier","position":"17"}`, string(poisoned.Payload))

	assertNoPHI(t, poisoned)
}

func assertNoPHI(t *testing.T, poisoned *message.Message) {
	t.Helper()
	assert.NotContains(t, string(poisoned.Payload), "PHI-SECRET")
	assert.NotContains(t, string(poisoned.Payload), `"note":`)
	for k, v := range poisoned.Metadata {
		assert.NotContains(t, v, "PHI-SECRET", k)
	}
}

func TestRouterRecoversPanicsRetriesThemAndPoisonsWithoutPayload(t *testing.T) {
	ctx := testContext(t)
	f := newRouterFixture(t, ctx, 1)
	topic, msg, _ := relayedMessage(t)
	f.router.AddConsumerHandler("panicky", topic, f.subscriber(t, "panicky"), func(*message.Message) error {
		panic("nil map")
	})
	runRouter(t, f.router)

	publishAsync(t, f.publisher, topic, msg)
	poisoned := receive(t, f.poisoned)
	assert.Contains(t, poisoned.Metadata.Get(MetaReason), "nil map")
	assert.NotContains(t, poisoned.Metadata.Get(MetaReason), "goroutine", "the panic's stack is cut off")
	assertNoPHI(t, poisoned)
}

func TestRouterRetriesATransientFailureWithoutPoisoning(t *testing.T) {
	ctx := testContext(t)
	f := newRouterFixture(t, ctx, 5)
	topic, msg, _ := relayedMessage(t)
	var calls atomic.Int32
	handled := make(chan struct{})
	f.router.AddConsumerHandler("flaky", topic, f.subscriber(t, "flaky"), func(*message.Message) error {
		if calls.Add(1) < 3 {
			return errors.New("database busy")
		}
		close(handled)
		return nil
	})
	runRouter(t, f.router)

	// GoChannel's Publish returns once the handler acknowledged.
	require.NoError(t, f.publisher.Publish(topic, msg))
	<-handled
	assert.Equal(t, int32(3), calls.Load())
	select {
	case m := <-f.poisoned:
		t.Fatalf("unexpected poison message %s", m.UUID)
	default:
	}
}

func TestRouterCopiesTheCorrelationIDToProducedMessages(t *testing.T) {
	ctx := testContext(t)
	f := newRouterFixture(t, ctx, 1)
	topic, msg, _ := relayedMessage(t)
	outSub := f.subscriber(t, "downstream")
	subCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	out, err := outSub.Subscribe(subCtx, "careflow.reaction_test")
	require.NoError(t, err)
	f.router.AddHandler("reactor", topic, f.subscriber(t, "reactor"), "careflow.reaction_test", f.publisher,
		func(*message.Message) ([]*message.Message, error) {
			return []*message.Message{message.NewMessage("produced-1", []byte(`{}`))}, nil
		})
	runRouter(t, f.router)

	publishAsync(t, f.publisher, topic, msg)
	produced := receive(t, out)
	assert.Equal(t, "corr-9", produced.Metadata.Get(MetaCorrelationID))
}

func TestRouterConfigValidates(t *testing.T) {
	_, err := NewRouter(RouterConfig{}, nil, nil)
	require.ErrorContains(t, err, "poison queue")
	cfg := RouterConfig{MaxRetries: -1, RetryInitialInterval: time.Second, RetryMaxInterval: time.Millisecond, RetryMultiplier: 0.5, CloseTimeout: -1}
	cfg.setDefaults()
	err = cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{"MaxRetries", "retry intervals", "RetryMultiplier", "CloseTimeout"} {
		assert.ErrorContains(t, err, want)
	}
}

func TestPoisonReasonIsBounded(t *testing.T) {
	assert.Len(t, poisonReason(strings.Repeat("x", 5000)), maxReasonBytes)
	assert.Equal(t, `panic occurred: "boom"`, poisonReason("panic occurred: \"boom\", stacktrace: \ngoroutine 1"))
}

func TestTruncateKeepsUTF8Whole(t *testing.T) {
	assert.Equal(t, "abc", truncate("abc", 5))
	assert.Equal(t, "ab", truncate("abé", 3))
	assert.True(t, strings.HasPrefix("ééé", truncate("ééé", 5)))
	assert.Equal(t, "éé", truncate("ééé", 5))
}
