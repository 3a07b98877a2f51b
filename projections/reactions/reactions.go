// Package reactions is what careflow does on its own when events happen
// or time passes, as consumers of the event bus (projections/bus):
//
//   - the TimeReactor keeps durable timers (SQLite, behind TimerStore): a
//     session activates at its start (ActivateSession), a client is
//     reminded before an assignment is due, and an assignment past due is
//     marked overdue (MarkAssignmentOverdue);
//   - the CareNotifier notifies the care team when a client completes an
//     assignment, urgently on a PHQ-9 item-9 risk flag;
//   - Webhooks deliver a clinic's events, slim and signed, to the
//     endpoints its admins registered (docs/webhooks.md).
//
// Every consumer dedupes by event id with the durable bus inbox, in the
// same SQLite database as its own tables, so its writes happen exactly
// once per event. Notifications are a read model in projections/notify.
package reactions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/projections/bus"
	"github.com/careflow/careflow/projections/notify"
	"github.com/careflow/careflow/projections/pgsql"
)

// OpenDB opens the database the reactions keep their timers,
// notifications, webhooks and inbox in: a PostgreSQL database when
// location is a postgres:// URL (tables of their own, beside the event
// store's or the read models'), else a SQLite file, created if needed:
// WAL, synchronous=FULL, owner-only permissions (see bus.OpenSQLite).
func OpenDB(ctx context.Context, location string) (*sql.DB, error) {
	if !pgsql.IsURL(location) {
		return bus.OpenSQLite(ctx, location)
	}
	db, err := pgsql.Open(location)
	if err != nil {
		return nil, fmt.Errorf("reactions: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("reactions: connect to PostgreSQL: %w", err), db.Close())
	}
	return db, nil
}

// Dialect is the bus dialect of a database OpenDB opened.
func Dialect(db *sql.DB) bus.Dialect {
	if pgsql.Is(db) {
		return bus.PostgreSQL
	}
	return bus.SQLite
}

// Config is what New needs.
type Config struct {
	// DB is the reactions' database (OpenDB). The caller closes it.
	DB    *sql.DB
	Store eventstore.Store
	Codec *codec.Registry
	// Care issues the time reactor's commands (*commands.Care).
	Care CareCommands
	// Clients tells who is on a client's care team; Staff which roles a
	// user holds in a clinic (*commands.Organization implements both).
	Clients commands.ClientDirectory
	Staff   commands.StaffDirectory
	// Keys destroys forgotten clients' data keys (the key shredder
	// consumer); nil leaves the consumer out.
	Keys commands.KeyShredder
	// Deliverer takes notifications out of careflow (notify.LogDeliverer,
	// notify.SMTPDeliverer).
	Deliverer notify.Deliverer
	// Clock drives timers, retries and timestamps; defaults to time.Now.
	Clock func() time.Time
	// NewID makes webhook endpoint ids; defaults to uuid.New.
	NewID func() uuid.UUID
	// HTTPClient sends webhooks (must not follow redirects); nil makes one.
	HTTPClient *http.Client
	// WebhookAllowInternalTargets lets webhooks reach loopback and private
	// addresses (development and tests only).
	WebhookAllowInternalTargets bool
	// Webhook retry tuning; zero values take WebhookConfig's defaults.
	WebhookRetryInitial time.Duration
	WebhookRetryMax     time.Duration
	WebhookRetryWindow  time.Duration
	WebhookOrderGrace   time.Duration
	// Jitter for webhook retries; nil is random.
	Jitter func(time.Duration) time.Duration
	// MaxWait bounds how long the loops sleep between checks; default 1m.
	MaxWait time.Duration
	Logger  *slog.Logger
}

// Reactions wires the time reactor, the care notifier, the webhooks and
// the notification pump over one database.
type Reactions struct {
	cfg           Config
	inbox         *bus.Inbox
	timers        *SQLiteTimers
	notifications *notify.Store
	pump          *notify.Pump
	reactor       *TimeReactor
	notifier      *CareNotifier
	webhooks      *Webhooks
	pumpNudge     chan struct{}
}

// New creates the tables and the parts.
func New(ctx context.Context, cfg Config) (*Reactions, error) {
	if cfg.DB == nil || cfg.Store == nil || cfg.Codec == nil || cfg.Care == nil || cfg.Clients == nil || cfg.Staff == nil || cfg.Deliverer == nil {
		return nil, errors.New("reactions: New needs DB, Store, Codec, Care, Clients, Staff and Deliverer")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Reactions{cfg: cfg, pumpNudge: make(chan struct{}, 1)}
	var err error
	if r.inbox, err = bus.NewInbox(ctx, cfg.DB, Dialect(cfg.DB), cfg.Clock); err != nil {
		return nil, err
	}
	if r.timers, err = NewSQLiteTimers(ctx, cfg.DB); err != nil {
		return nil, err
	}
	if r.notifications, err = notify.NewStore(ctx, cfg.DB); err != nil {
		return nil, err
	}
	if r.pump, err = notify.NewPump(r.notifications, cfg.Deliverer, cfg.Clock, cfg.Logger); err != nil {
		return nil, err
	}
	if r.reactor, err = NewTimeReactor(TimeReactorConfig{
		Deps:   commands.Deps{Store: cfg.Store, Codec: cfg.Codec, Clock: cfg.Clock},
		Care:   cfg.Care,
		Timers: r.timers, Notifications: r.notifications, Clock: cfg.Clock,
		MaxWait: cfg.MaxWait, Logger: cfg.Logger, Fired: r.NudgePump,
	}); err != nil {
		return nil, err
	}
	if r.notifier, err = NewCareNotifier(cfg.Codec, cfg.Clients, r.notifications, cfg.Logger, r.NudgePump); err != nil {
		return nil, err
	}
	if r.webhooks, err = NewWebhooks(ctx, WebhookConfig{
		DB: cfg.DB, AllowInternalTargets: cfg.WebhookAllowInternalTargets,
		Codec: cfg.Codec, Staff: cfg.Staff, Notifications: r.notifications, Clock: cfg.Clock, NewID: cfg.NewID,
		Client: cfg.HTTPClient, RetryInitial: cfg.WebhookRetryInitial, RetryMax: cfg.WebhookRetryMax,
		RetryWindow: cfg.WebhookRetryWindow, OrderGrace: cfg.WebhookOrderGrace, Jitter: cfg.Jitter, MaxWait: cfg.MaxWait, Logger: cfg.Logger,
		Notified: r.NudgePump,
	}); err != nil {
		return nil, err
	}
	return r, nil
}

// Inbox is the consumers' durable inbox.
func (r *Reactions) Inbox() *bus.Inbox { return r.inbox }

// Timers is the timer store.
func (r *Reactions) Timers() TimerStore { return r.timers }

// Notifications is the notifications read model (for the API).
func (r *Reactions) Notifications() *notify.Store { return r.notifications }

// Webhooks registers and lists webhook endpoints (for the API).
func (r *Reactions) Webhooks() *Webhooks { return r.webhooks }

// TimeReactor fires the timers.
func (r *Reactions) TimeReactor() *TimeReactor { return r.reactor }

// Pump delivers notifications.
func (r *Reactions) Pump() *notify.Pump { return r.pump }

// SubscriberFactory makes the subscriber of a named consumer
// (bus.Transport.NewSubscriber).
type SubscriberFactory func(consumer string) (message.Subscriber, error)

// AddHandlers adds the consumers to router: the time reactor on the
// session and assignment topics, the care notifier on the assignment
// topic, the webhooks on every topic, the key shredder (when Keys is set)
// on the client topic. Add them before the router and the
// relay run.
func (r *Reactions) AddHandlers(router *message.Router, subscriber SubscriberFactory) error {
	sessionTopic, err := bus.TopicFor((care.SessionScheduled{}).EventType())
	if err != nil {
		return err
	}
	assignmentTopic, err := bus.TopicFor((care.AssignmentGiven{}).EventType())
	if err != nil {
		return err
	}
	type consumer struct {
		name    string
		topics  []string
		handler message.NoPublishHandlerFunc
	}
	consumers := []consumer{
		{ConsumerTimeReactor, []string{sessionTopic, assignmentTopic}, r.reactor.Handler(r.inbox)},
		{ConsumerCareNotifier, []string{assignmentTopic}, r.notifier.Handler(r.inbox)},
		{ConsumerWebhooks, r.webhooks.Topics(), r.webhooks.Handler(r.inbox)},
	}
	if r.cfg.Keys != nil {
		clientTopic, err := bus.TopicFor((organization.ClientForgotten{}).EventType())
		if err != nil {
			return err
		}
		consumers = append(consumers, consumer{ConsumerKeyShredder, []string{clientTopic}, KeyShredderHandler(r.cfg.Keys)})
	}
	for _, c := range consumers {
		sub, err := subscriber(c.name)
		if err != nil {
			return fmt.Errorf("reactions: subscriber %s: %w", c.name, err)
		}
		for _, topic := range c.topics {
			router.AddConsumerHandler(c.name+"@"+topic, topic, sub, c.handler)
		}
	}
	return nil
}

// NudgePump makes Run deliver pending notifications now.
func (r *Reactions) NudgePump() {
	select {
	case r.pumpNudge <- struct{}{}:
	default:
	}
}

// Run fires timers, delivers webhooks and delivers notifications until ctx
// ends; it returns ctx.Err().
func (r *Reactions) Run(ctx context.Context) error {
	maxWait := r.cfg.MaxWait
	if maxWait <= 0 {
		maxWait = time.Minute
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = r.reactor.Run(ctx) }()
	go func() { defer wg.Done(); _ = r.webhooks.Run(ctx) }()
	go func() {
		defer wg.Done()
		for {
			if _, err := r.pump.DeliverPending(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Warn("notification delivery pass failed", "error", err)
			}
			timer := time.NewTimer(maxWait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-r.pumpNudge:
				timer.Stop()
			case <-timer.C:
			}
		}
	}()
	wg.Wait()
	return ctx.Err()
}

// eventTypes is the set of the events' type names.
func eventTypes(events ...interface{ EventType() string }) map[string]bool {
	set := make(map[string]bool, len(events))
	for _, e := range events {
		set[e.EventType()] = true
	}
	return set
}

// ignores reports whether msg is an event of a type outside wants, which
// its handler may acknowledge without reading it. A message without a type
// is not ignored: the handler refuses it as malformed.
func ignores(wants map[string]bool, msg *message.Message) bool {
	typ := msg.Metadata.Get(bus.MetaType)
	return typ != "" && !wants[typ]
}
