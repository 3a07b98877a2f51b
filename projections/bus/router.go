package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// Metadata keys of a poison message besides MetaType, MetaStream,
// MetaPosition, MetaCorrelationID and MetaClinicID, which it copies.
const (
	MetaEventID    = "event_id"
	MetaReason     = middleware.ReasonForPoisonedKey
	MetaTopic      = middleware.PoisonedTopicKey
	MetaHandler    = middleware.PoisonedHandlerKey
	MetaSubscriber = middleware.PoisonedSubscriberKey
	MetaPoisonedAt = "poisoned_at"
)

// maxReasonBytes caps the error text a poison message carries.
const maxReasonBytes = 1024

// RouterConfig tunes NewRouter.
type RouterConfig struct {
	// PoisonTopic receives what no retry could handle. Defaults to
	// DefaultPoisonTopic.
	PoisonTopic string
	// MaxRetries is how often a failing handler is retried before the
	// message goes to the poison topic. Defaults to 5.
	MaxRetries int
	// RetryInitialInterval is the first wait; each next one is multiplied
	// by RetryMultiplier up to RetryMaxInterval. Default 100ms, 2, 10s.
	RetryInitialInterval time.Duration
	RetryMultiplier      float64
	RetryMaxInterval     time.Duration
	// CloseTimeout bounds how long Close waits for running handlers.
	// Defaults to 30s.
	CloseTimeout time.Duration
	// NewID makes poison message ids; defaults to watermill.NewUUID.
	NewID func() string
	// Clock stamps poisoned_at; defaults to time.Now.
	Clock func() time.Time
}

func (c *RouterConfig) setDefaults() {
	if c.PoisonTopic == "" {
		c.PoisonTopic = DefaultPoisonTopic
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 5
	}
	if c.RetryInitialInterval == 0 {
		c.RetryInitialInterval = 100 * time.Millisecond
	}
	if c.RetryMultiplier == 0 {
		c.RetryMultiplier = 2
	}
	if c.RetryMaxInterval == 0 {
		c.RetryMaxInterval = 10 * time.Second
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 30 * time.Second
	}
	if c.NewID == nil {
		c.NewID = watermill.NewUUID
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
}

// Validate reports what is wrong with the configuration (after defaults).
func (c RouterConfig) Validate() error {
	var errs []error
	if c.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("bus: MaxRetries %d must not be negative", c.MaxRetries))
	}
	if c.RetryInitialInterval <= 0 || c.RetryMaxInterval < c.RetryInitialInterval {
		errs = append(errs, fmt.Errorf("bus: retry intervals initial %s, max %s: need 0 < initial <= max", c.RetryInitialInterval, c.RetryMaxInterval))
	}
	if c.RetryMultiplier < 1 {
		errs = append(errs, fmt.Errorf("bus: RetryMultiplier %g must be at least 1", c.RetryMultiplier))
	}
	if c.CloseTimeout <= 0 {
		errs = append(errs, fmt.Errorf("bus: CloseTimeout %s must be positive", c.CloseTimeout))
	}
	return errors.Join(errs...)
}

// NewRouter returns a watermill Router whose handlers all run inside, from
// the outside in: the poison queue (publishing through poison), correlation
// ids copied to produced messages, retry with exponential backoff, and
// panic recovery (so a panic is retried and poisoned like an error).
//
// A poison message never carries the payload nor the original metadata: it
// has a fresh id, the event id, type, stream, position, correlation id,
// clinic id, the error (at most 1 KiB, a panic's stack cut off) and where
// it failed. Handlers must
// not put event data into their errors.
func NewRouter(cfg RouterConfig, poison message.Publisher, logger watermill.LoggerAdapter) (*message.Router, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if poison == nil {
		return nil, errors.New("bus: router needs a publisher for the poison queue")
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, logger)
	if err != nil {
		return nil, fmt.Errorf("bus: router: %w", err)
	}
	poisonQueue, err := middleware.PoisonQueue(phiFreePublisher{next: poison, newID: cfg.NewID, now: cfg.Clock}, cfg.PoisonTopic)
	if err != nil {
		return nil, fmt.Errorf("bus: poison queue: %w", err)
	}
	router.AddMiddleware(
		poisonQueue,
		middleware.CorrelationID,
		middleware.Retry{
			MaxRetries:      cfg.MaxRetries,
			InitialInterval: cfg.RetryInitialInterval,
			Multiplier:      cfg.RetryMultiplier,
			MaxInterval:     cfg.RetryMaxInterval,
			Logger:          logger,
		}.Middleware,
		middleware.Recoverer,
	)
	return router, nil
}

// phiFreePublisher is what the poison queue middleware publishes through:
// it replaces each message by a summary that leaves payload and metadata
// behind.
type phiFreePublisher struct {
	next  message.Publisher
	newID func() string
	now   func() time.Time
}

// poisonSummary is the payload of a poison message, for readers that see
// only payloads (and for PostgreSQL's JSON payload column).
type poisonSummary struct {
	EventID  string `json:"event_id"`
	Type     string `json:"type"`
	Reason   string `json:"reason"`
	Topic    string `json:"topic"`
	Handler  string `json:"handler"`
	Position string `json:"position,omitempty"`
}

func (p phiFreePublisher) Publish(topic string, messages ...*message.Message) error {
	out := make([]*message.Message, 0, len(messages))
	for _, in := range messages {
		summary := poisonSummary{
			EventID:  in.UUID,
			Type:     in.Metadata.Get(MetaType),
			Reason:   poisonReason(in.Metadata.Get(MetaReason)),
			Topic:    in.Metadata.Get(MetaTopic),
			Handler:  in.Metadata.Get(MetaHandler),
			Position: in.Metadata.Get(MetaPosition),
		}
		payload, err := json.Marshal(summary)
		if err != nil {
			return fmt.Errorf("bus: poison summary: %w", err)
		}
		msg := message.NewMessage(p.newID(), payload)
		msg.Metadata.Set(MetaEventID, summary.EventID)
		msg.Metadata.Set(MetaType, summary.Type)
		msg.Metadata.Set(MetaReason, summary.Reason)
		msg.Metadata.Set(MetaTopic, summary.Topic)
		msg.Metadata.Set(MetaHandler, summary.Handler)
		msg.Metadata.Set(MetaSubscriber, in.Metadata.Get(MetaSubscriber))
		msg.Metadata.Set(MetaPoisonedAt, p.now().UTC().Format(time.RFC3339Nano))
		for _, key := range []string{MetaStream, MetaStreamType, MetaPosition, MetaCorrelationID, MetaClinicID} {
			if v := in.Metadata.Get(key); v != "" {
				msg.Metadata.Set(key, v)
			}
		}
		out = append(out, msg)
	}
	return p.next.Publish(topic, out...)
}

func (p phiFreePublisher) Close() error { return nil }

// poisonReason is the error text without the stack a recovered panic
// carries (the retry middleware has logged it), cut to maxReasonBytes.
func poisonReason(reason string) string {
	if i := strings.Index(reason, recovererStackSeparator); i >= 0 {
		reason = reason[:i]
	}
	return truncate(reason, maxReasonBytes)
}

// recovererStackSeparator is where middleware.Recoverer's error text turns
// from the panic value to the stack.
const recovererStackSeparator = ", stacktrace:"

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}
