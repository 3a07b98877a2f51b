package chain

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/careflow/careflow/eventstore"
)

// Defaults for ChainerOptions.
const (
	DefaultBatchSize       = 1000
	DefaultCheckpointEvery = time.Hour
	DefaultRetryDelay      = time.Second
	DefaultInterval        = 200 * time.Millisecond
)

// closedChan is always ready: a wait on it ends at once.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// ErrNoKey: a checkpoint was asked for but the chainer has no signing key.
var ErrNoKey = errors.New("chain: no signing key configured")

// ChainerOptions tune a Chainer. The zero value chains without signing.
type ChainerOptions struct {
	// Key signs checkpoints. Without it Checkpoint fails with ErrNoKey and
	// Run signs nothing.
	Key ed25519.PrivateKey
	// CheckpointEvery is how often Run signs the head, when it moved.
	CheckpointEvery time.Duration
	// BatchSize is how many events are chained per transaction.
	BatchSize int
	// RetryDelay is Run's pause after a failed round.
	RetryDelay time.Duration
	// Interval is Run's pause after a round before the next one. Each
	// round is a write transaction in the events' database (on SQLite,
	// taken from the store's own writer): chaining every commit as it
	// landed doubled the commits there and made appends wait for the
	// lock. The links trail the log by up to Interval more; the log is
	// what is durable, and the chain is computed from it.
	Interval time.Duration
	// Clock stamps checkpoints. Defaults to time.Now.
	Clock  func() time.Time
	Logger *slog.Logger
}

func (o ChainerOptions) withDefaults() ChainerOptions {
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Chainer follows the event log and records its chain in a Table. Any
// number of chainers may follow one database: they compute the same links,
// and the table accepts each link once.
type Chainer struct {
	store eventstore.Store
	table Table
	opts  ChainerOptions

	// mu makes CatchUp and Checkpoint of one chainer take turns.
	mu sync.Mutex
	// lastSigned is the head the last checkpoint of this chainer signed.
	lastSigned Link
	signed     bool
}

// NewChainer makes a chainer of store's log into table.
func NewChainer(store eventstore.Store, table Table, opts ChainerOptions) (*Chainer, error) {
	if store == nil || table == nil {
		return nil, errors.New("chain: NewChainer needs a store and a table")
	}
	if opts.Key != nil && len(opts.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("chain: signing key has %d bytes, want %d", len(opts.Key), ed25519.PrivateKeySize)
	}
	return &Chainer{store: store, table: table, opts: opts.withDefaults()}, nil
}

// CatchUp chains every event the log holds now and returns the new head.
func (c *Chainer) CatchUp(ctx context.Context) (Link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.catchUp(ctx)
}

func (c *Chainer) catchUp(ctx context.Context) (Link, error) {
	head, err := c.table.Head(ctx)
	if err != nil {
		return Link{}, err
	}
	for {
		events, err := c.store.ReadAll(ctx, head.Position, c.opts.BatchSize)
		if err != nil {
			return Link{}, fmt.Errorf("chain: read the log after %d: %w", head.Position, err)
		}
		if len(events) == 0 {
			return head, nil
		}
		links := make([]Link, len(events))
		prev := head.Hash
		for i, e := range events {
			links[i] = Next(prev, e)
			prev = links[i].Hash
		}
		err = c.table.Append(ctx, head, links)
		switch {
		case errors.Is(err, ErrHeadMoved):
			// Another chainer recorded these (the same links); go on from
			// where it got to.
			if head, err = c.table.Head(ctx); err != nil {
				return Link{}, err
			}
		case err != nil:
			return Link{}, err
		default:
			head = links[len(links)-1]
		}
	}
}

// Checkpoint chains what the log holds now, signs the head, stores the
// checkpoint in the table and returns it.
func (c *Chainer) Checkpoint(ctx context.Context) (Checkpoint, error) {
	if c.opts.Key == nil {
		return Checkpoint{}, ErrNoKey
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	head, err := c.catchUp(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	return c.sign(ctx, head)
}

func (c *Chainer) sign(ctx context.Context, head Link) (Checkpoint, error) {
	cp := Sign(c.opts.Key, head, c.opts.Clock())
	if err := c.table.SaveCheckpoint(ctx, cp); err != nil {
		return Checkpoint{}, err
	}
	c.lastSigned, c.signed = head, true
	return cp, nil
}

// checkpointIfMoved signs the head unless this chainer signed it already.
func (c *Chainer) checkpointIfMoved(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	head, err := c.catchUp(ctx)
	if err != nil {
		return err
	}
	if c.signed && head == c.lastSigned {
		return nil
	}
	cp, err := c.sign(ctx, head)
	if err != nil {
		return err
	}
	c.opts.Logger.Info("chain: signed checkpoint", "position", cp.Position, "hash", cp.Hash.String(), "key", cp.KeyID)
	return nil
}

// Run chains the log as it grows, and signs a checkpoint every
// CheckpointEvery when a key is configured and the head moved. It returns
// nil when ctx ends, or an error when the log cannot be followed any more.
// Failed rounds (database unavailable) are logged and retried.
func (c *Chainer) Run(ctx context.Context) error {
	start, err := c.store.HeadPosition(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("chain: read the head of the log: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The subscription only wakes the chainer: it reads the log in batches
	// from the chain's own head.
	wake := eventstore.NewSignal()
	followed := make(chan error, 1)
	go func() {
		followed <- c.store.Subscribe(ctx, start, func(eventstore.RecordedEvent) error {
			wake.Broadcast()
			return nil
		})
	}()

	var tick <-chan time.Time
	if c.opts.Key != nil {
		ticker := time.NewTicker(c.opts.CheckpointEvery)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		woken := wake.Wait()
		rest := c.opts.Interval
		if _, err := c.CatchUp(ctx); err != nil && ctx.Err() == nil {
			c.opts.Logger.Error("chain: chaining failed; retrying", "error", err)
			// After a failure the next round comes after RetryDelay,
			// news or not.
			rest, woken = c.opts.RetryDelay, closedChan
		}
		// Rest, then wait for news (next stays nil until the rest ends).
		restEnded := time.NewTimer(rest)
		var next <-chan struct{}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				restEnded.Stop()
				<-followed
				return nil
			case err := <-followed:
				restEnded.Stop()
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("chain: follow the event log: %w", err)
			case <-tick:
				if err := c.checkpointIfMoved(ctx); err != nil && ctx.Err() == nil {
					c.opts.Logger.Error("chain: signing a checkpoint failed", "error", err)
				}
			case <-restEnded.C:
				next = woken
			case <-next:
				waiting = false
			}
		}
	}
}
