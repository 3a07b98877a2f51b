package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
)

// Transport makes the publishers and subscribers of one configured broker.
// Close it after every publisher and subscriber it made is closed.
type Transport struct {
	cfg    Config
	logger watermill.LoggerAdapter

	goChannel *gochannel.GoChannel // gochannel
	natsConn  *nats.Conn           // nats: stream management
	pgPool    *pgxpool.Pool        // postgres

	closeOnce sync.Once
}

// NewTransport applies defaults to cfg, validates it and connects: for NATS
// it also creates or updates the stream holding every careflow subject.
func NewTransport(ctx context.Context, cfg Config, logger watermill.LoggerAdapter) (*Transport, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	t := &Transport{cfg: cfg, logger: logger}
	switch cfg.Transport {
	case TransportGoChannel:
		// Publish returns only once every subscriber acknowledged, so the
		// relay's checkpoint never runs ahead of in-process consumers.
		// Messages published while nobody subscribes are dropped: start
		// the router before the relay.
		t.goChannel = gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger)
	case TransportNATS:
		conn, err := nats.Connect(cfg.NATSURL, t.natsOptions("careflow-bus-admin")...)
		if err != nil {
			return nil, fmt.Errorf("bus: connect to NATS at %s: %w", redactURL(cfg.NATSURL), err)
		}
		t.natsConn = conn
		if err := t.ensureStream(ctx); err != nil {
			conn.Close()
			return nil, err
		}
	case TransportPostgres:
		pool, err := pgxpool.New(ctx, cfg.PostgresURL)
		if err != nil {
			return nil, fmt.Errorf("bus: connect to PostgreSQL: %w", err)
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("bus: connect to PostgreSQL: %w", err)
		}
		t.pgPool = pool
	}
	return t, nil
}

// Config is the configuration in use, defaults applied.
func (t *Transport) Config() Config { return t.cfg }

// NewPublisher returns a publisher on the transport.
func (t *Transport) NewPublisher() (message.Publisher, error) {
	switch t.cfg.Transport {
	case TransportNATS:
		pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
			URL:               t.cfg.NATSURL,
			NatsOptions:       t.natsOptions("careflow-bus-publisher"),
			Marshaler:         &wmnats.NATSMarshaler{},
			SubjectCalculator: t.natsSubjects,
			JetStream: wmnats.JetStreamConfig{
				// Nats-Msg-Id = event id: JetStream drops a re-published
				// event within its duplicate window.
				TrackMsgId: true,
			},
		}, t.logger)
		if err != nil {
			return nil, fmt.Errorf("bus: NATS publisher: %w", err)
		}
		return subjectPublisher{Publisher: pub, subject: t.natsSubject}, nil
	case TransportPostgres:
		pub, err := wmsql.NewPublisher(wmsql.BeginnerFromPgx(t.pgPool), wmsql.PublisherConfig{
			SchemaAdapter:        wmsql.DefaultPostgreSQLSchema{},
			AutoInitializeSchema: true,
		}, t.logger)
		if err != nil {
			return nil, fmt.Errorf("bus: PostgreSQL publisher: %w", err)
		}
		return pub, nil
	default:
		return sharedGoChannel{t.goChannel}, nil
	}
}

// NewSubscriber returns a subscriber for the named consumer. Every consumer
// name receives every message of the topics it subscribes to; instances
// sharing a name share the work (NATS, PostgreSQL) and resume where the
// name left off.
func (t *Transport) NewSubscriber(consumer string) (message.Subscriber, error) {
	if !consumerNamePattern.MatchString(consumer) {
		return nil, fmt.Errorf("bus: consumer name %q must match %s", consumer, consumerNamePattern)
	}
	switch t.cfg.Transport {
	case TransportNATS:
		closed := make(chan struct{})
		conn, err := nats.Connect(t.cfg.NATSURL, append(t.natsOptions("careflow-bus-"+consumer),
			nats.ClosedHandler(func(*nats.Conn) { close(closed) }))...)
		if err != nil {
			return nil, fmt.Errorf("bus: NATS subscriber %s: connect to %s: %w", consumer, redactURL(t.cfg.NATSURL), err)
		}
		sub, err := wmnats.NewSubscriberWithNatsConn(conn, wmnats.SubscriberSubscriptionConfig{
			QueueGroupPrefix:  consumer,
			SubscribersCount:  1,
			AckWaitTimeout:    t.cfg.NATSAckWait,
			CloseTimeout:      t.cfg.NATSAckWait,
			Unmarshaler:       &wmnats.NATSMarshaler{},
			SubjectCalculator: t.natsSubjects,
			JetStream: wmnats.JetStreamConfig{
				SubscribeOptions: []nats.SubOpt{
					nats.BindStream(t.cfg.NATSStream),
					nats.DeliverAll(),
					nats.AckExplicit(),
					// watermill acks itself once the handler is done.
					nats.ManualAck(),
					nats.AckWait(t.cfg.NATSAckWait),
				},
				DurablePrefix:     consumer,
				DurableCalculator: natsDurableName,
			},
		}, t.logger)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("bus: NATS subscriber %s: %w", consumer, err)
		}
		return &natsSubscriber{Subscriber: sub, transport: t, consumer: consumer, closed: closed, closeTimeout: t.cfg.NATSAckWait}, nil
	case TransportPostgres:
		ackDeadline := t.cfg.PostgresAckDeadline
		sub, err := wmsql.NewSubscriber(wmsql.BeginnerFromPgx(t.pgPool), wmsql.SubscriberConfig{
			ConsumerGroup:    consumer,
			PollInterval:     t.cfg.PostgresPollInterval,
			AckDeadline:      &ackDeadline,
			SchemaAdapter:    wmsql.DefaultPostgreSQLSchema{},
			OffsetsAdapter:   wmsql.DefaultPostgreSQLOffsetsAdapter{},
			InitializeSchema: true,
		}, t.logger)
		if err != nil {
			return nil, fmt.Errorf("bus: PostgreSQL subscriber %s: %w", consumer, err)
		}
		return sub, nil
	default:
		return sharedGoChannel{t.goChannel}, nil
	}
}

// Close releases the transport's own connections.
func (t *Transport) Close() error {
	var err error
	t.closeOnce.Do(func() {
		if t.goChannel != nil {
			err = t.goChannel.Close()
		}
		if t.natsConn != nil {
			t.natsConn.Close()
		}
		if t.pgPool != nil {
			t.pgPool.Close()
		}
	})
	return err
}

func (t *Transport) natsOptions(name string) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.Timeout(10 * time.Second),
		nats.RetryOnFailedConnect(false),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
	}
}

// natsSubject is the subject a topic is published on.
func (t *Transport) natsSubject(topic string) string {
	if t.cfg.NATSSubjectPrefix == "" {
		return topic
	}
	return t.cfg.NATSSubjectPrefix + "." + topic
}

func (t *Transport) natsSubjects(queueGroupPrefix, topic string) *wmnats.SubjectDetail {
	subject := t.natsSubject(topic)
	return &wmnats.SubjectDetail{Primary: subject, QueueGroup: natsDurableName(queueGroupPrefix, subject)}
}

// natsDurableName names the durable consumer (and its deliver group) of one
// consumer on one subject; JetStream names may not contain '.'.
func natsDurableName(consumer, subject string) string {
	return consumer + "_" + strings.ReplaceAll(subject, ".", "_")
}

// ensureStream creates the stream that captures every careflow subject, or
// brings an existing one to the configured settings.
func (t *Transport) ensureStream(ctx context.Context) error {
	js, err := t.natsConn.JetStream(nats.Context(ctx))
	if err != nil {
		return fmt.Errorf("bus: NATS JetStream: %w", err)
	}
	cfg := &nats.StreamConfig{
		Name:       t.cfg.NATSStream,
		Subjects:   []string{t.natsSubject(TopicPrefix + ">")},
		Storage:    nats.FileStorage,
		Retention:  nats.LimitsPolicy,
		MaxAge:     t.cfg.NATSMaxAge,
		Duplicates: min(2*time.Minute, t.cfg.NATSMaxAge),
	}
	_, err = js.StreamInfo(cfg.Name, nats.Context(ctx))
	switch {
	case errors.Is(err, nats.ErrStreamNotFound):
		_, err = js.AddStream(cfg, nats.Context(ctx))
	case err == nil:
		_, err = js.UpdateStream(cfg, nats.Context(ctx))
	}
	if err != nil {
		return fmt.Errorf("bus: NATS stream %s: %w", cfg.Name, err)
	}
	return nil
}

// natsSubscriber makes sure the durable consumer of a topic exists before
// watermill subscribes to it. nats.go deletes a consumer that a
// subscription created when that subscription ends; one that already
// existed survives, so the consumer resumes after what it acknowledged.
type natsSubscriber struct {
	*wmnats.Subscriber
	transport    *Transport
	consumer     string
	closed       <-chan struct{} // closed once the connection has drained
	closeTimeout time.Duration
}

func (s *natsSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.transport.ensureConsumer(ctx, s.consumer, topic); err != nil {
		return nil, err
	}
	return s.Subscriber.Subscribe(ctx, topic)
}

// Close returns once the connection has drained, so the server has seen
// the subscription go and pushes nothing more to it: a successor that
// subscribes next gets every message not acknowledged here.
func (s *natsSubscriber) Close() error {
	if err := s.Subscriber.Close(); err != nil {
		return err
	}
	select {
	case <-s.closed:
		return nil
	case <-time.After(s.closeTimeout):
		return fmt.Errorf("bus: NATS subscriber %s: connection did not drain within %s", s.consumer, s.closeTimeout)
	}
}

// ensureConsumer creates the durable push consumer of consumer on topic if
// it is missing. Its settings match the subscribe options NewSubscriber
// gives watermill, which nats.go checks when it attaches.
func (t *Transport) ensureConsumer(ctx context.Context, consumer, topic string) error {
	js, err := t.natsConn.JetStream(nats.Context(ctx))
	if err != nil {
		return fmt.Errorf("bus: NATS JetStream: %w", err)
	}
	subject := t.natsSubject(topic)
	name := natsDurableName(consumer, subject)
	_, err = js.ConsumerInfo(t.cfg.NATSStream, name, nats.Context(ctx))
	if err == nil {
		return nil
	}
	if !errors.Is(err, nats.ErrConsumerNotFound) {
		return fmt.Errorf("bus: NATS consumer %s: %w", name, err)
	}
	_, err = js.AddConsumer(t.cfg.NATSStream, &nats.ConsumerConfig{
		Durable:        name,
		DeliverSubject: "_CAREFLOW_DELIVER." + t.cfg.NATSStream + "." + name,
		DeliverGroup:   name,
		FilterSubject:  subject,
		DeliverPolicy:  nats.DeliverAllPolicy,
		AckPolicy:      nats.AckExplicitPolicy,
		AckWait:        t.cfg.NATSAckWait,
	}, nats.Context(ctx))
	if err != nil {
		return fmt.Errorf("bus: NATS consumer %s: %w", name, err)
	}
	return nil
}

// subjectPublisher publishes each topic on its NATS subject (watermill-nats
// publishes on the topic itself).
type subjectPublisher struct {
	message.Publisher
	subject func(topic string) string
}

func (p subjectPublisher) Publish(topic string, messages ...*message.Message) error {
	return p.Publisher.Publish(p.subject(topic), messages...)
}

// sharedGoChannel hands out the transport's one GoChannel; the Router closes
// the publishers and subscribers of its handlers, which must not close the
// channel everyone shares. Transport.Close closes it.
type sharedGoChannel struct{ *gochannel.GoChannel }

func (sharedGoChannel) Close() error { return nil }
