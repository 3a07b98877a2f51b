package bus

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/careflow/careflow/eventstore"
)

// DefaultRelayBatch is how many events the relay publishes per checkpoint
// write by default.
const DefaultRelayBatch = 100

// checkpointTimeout bounds one checkpoint write.
const checkpointTimeout = 10 * time.Second

// RelayConfig is what a Relay needs.
type RelayConfig struct {
	// Name keys the relay's checkpoint.
	Name        string
	Store       eventstore.Store
	Publisher   message.Publisher
	Checkpoints Checkpoints
	// BatchSize is how many events are read and published, in order, before
	// one checkpoint write. It bounds what a crash re-publishes. Defaults to
	// DefaultRelayBatch; 1 checkpoints every event.
	BatchSize int
	Logger    watermill.LoggerAdapter
}

// Relay publishes every committed event of a Store, in log order, to a
// watermill Publisher.
//
// Guarantee: at least once. The checkpoint is saved only after Publish
// returned for every event up to it, so no event is ever skipped; a crash
// (or a failed checkpoint write) before the save makes the next Run publish
// those events again, at most BatchSize of them. Consumers dedupe with an
// Inbox. Events of one stream are published in version order because the
// log is in commit order and the relay publishes one event at a time.
type Relay struct {
	cfg RelayConfig

	// position is the last position published and checkpointed, for
	// observers; the checkpoint store is the truth.
	position atomic.Int64
}

// NewRelay checks cfg and returns a relay.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	var errs []error
	if cfg.Name == "" {
		errs = append(errs, errors.New("bus: relay name is empty"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("bus: relay needs a store"))
	}
	if cfg.Publisher == nil {
		errs = append(errs, errors.New("bus: relay needs a publisher"))
	}
	if cfg.Checkpoints == nil {
		errs = append(errs, errors.New("bus: relay needs checkpoints"))
	}
	if cfg.BatchSize < 0 || cfg.BatchSize > eventstore.CatchUpBatch {
		errs = append(errs, fmt.Errorf("bus: relay BatchSize %d must be between 1 and %d", cfg.BatchSize, eventstore.CatchUpBatch))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultRelayBatch
	}
	if cfg.Logger == nil {
		cfg.Logger = watermill.NopLogger{}
	}
	return &Relay{cfg: cfg}, nil
}

// Position is the last position this relay published and checkpointed.
func (r *Relay) Position() int64 { return r.position.Load() }

// Run publishes from the saved checkpoint on, following new commits, until
// ctx ends (it returns ctx.Err()) or reading, publishing or a checkpoint
// write fails (it returns that error; the caller restarts it, see Serve).
func (r *Relay) Run(ctx context.Context) error {
	after, err := r.cfg.Checkpoints.Load(ctx, r.cfg.Name)
	if err != nil {
		return err
	}
	r.position.Store(after)
	r.cfg.Logger.Info("Relay starting", watermill.LogFields{"relay": r.cfg.Name, "after": after})

	// A subscription from the current head only wakes the loop below; the
	// loop reads in batches itself so it can checkpoint once per batch.
	head, err := r.cfg.Store.HeadPosition(ctx)
	if err != nil {
		return fmt.Errorf("bus: relay %s: head position: %w", r.cfg.Name, err)
	}
	wakeCtx, stopWake := context.WithCancel(ctx)
	wake := make(chan struct{}, 1)
	wakeDone := make(chan error, 1)
	go func() {
		wakeDone <- r.cfg.Store.Subscribe(wakeCtx, head, func(eventstore.RecordedEvent) error {
			select {
			case wake <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	defer func() {
		stopWake()
		<-wakeDone
	}()

	for {
		events, err := r.cfg.Store.ReadAll(ctx, after, r.cfg.BatchSize)
		if err != nil {
			return fmt.Errorf("bus: relay %s: read after %d: %w", r.cfg.Name, after, err)
		}
		if len(events) > 0 {
			if after, err = r.publish(ctx, after, events); err != nil {
				return err
			}
		}
		if len(events) == r.cfg.BatchSize {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case err := <-wakeDone:
			wakeDone <- err // for the deferred wait
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("bus: relay %s: following the log: %w", r.cfg.Name, err)
		}
	}
}

// publish publishes events in order and checkpoints the last one published:
// all of them, or those before a failed publish (whose error it returns).
func (r *Relay) publish(ctx context.Context, after int64, events []eventstore.RecordedEvent) (int64, error) {
	published := after
	var failure error
	for _, e := range events {
		if failure = ctx.Err(); failure != nil {
			break
		}
		if failure = r.publishOne(ctx, e); failure != nil {
			break
		}
		published = e.Position
	}
	if published > after {
		// Saved even when ctx just ended: what was published need not be
		// published again after a clean shutdown.
		saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkpointTimeout)
		err := r.cfg.Checkpoints.Save(saveCtx, r.cfg.Name, published)
		cancel()
		if err != nil {
			return after, errors.Join(failure, fmt.Errorf("bus: relay %s: after publishing up to position %d: %w", r.cfg.Name, published, err))
		}
		r.position.Store(published)
	}
	return published, failure
}

func (r *Relay) publishOne(ctx context.Context, e eventstore.RecordedEvent) error {
	topic, msg, err := ToMessage(e)
	if err != nil {
		// Skipping would lose the event for every consumer: stop instead,
		// loudly, until the type is fixed.
		return fmt.Errorf("bus: relay %s: event %s at position %d: %w", r.cfg.Name, e.ID, e.Position, err)
	}
	msg.SetContext(ctx)
	if err := r.cfg.Publisher.Publish(topic, msg); err != nil {
		return fmt.Errorf("bus: relay %s: publish event %s at position %d to %s: %w", r.cfg.Name, e.ID, e.Position, topic, err)
	}
	return nil
}

// Serve runs the relay until ctx ends, restarting it from its checkpoint
// after a failure. Waits between restarts grow from initial, doubling up to
// maxWait, and start over once a run made progress. It returns ctx.Err().
func (r *Relay) Serve(ctx context.Context, initial, maxWait time.Duration) error {
	if initial <= 0 || maxWait < initial {
		return fmt.Errorf("bus: relay backoff initial %s, max %s: need 0 < initial <= max", initial, maxWait)
	}
	wait := initial
	for {
		before := r.Position()
		err := r.Run(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.Position() > before {
			wait = initial
		}
		r.cfg.Logger.Error("Relay stopped, restarting", err, watermill.LogFields{"relay": r.cfg.Name, "position": r.Position(), "wait": wait.String()})
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
		wait = min(2*wait, maxWait)
	}
}
