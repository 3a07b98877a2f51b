package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/careflow/careflow/eventstore"
)

// DefaultBatchSize is how many events a projection applies per transaction.
// Large batches make rebuilds fast (one commit, one fsync per batch); live,
// a batch holds whatever arrived since the last one.
const DefaultBatchSize = 500

// DefaultCatchUpBatchSize is the batch size while a projection is behind
// (a rebuild, a first start, a restart after downtime): fewer, larger
// transactions make catching up several times faster, and live lag does not
// suffer because live batches stay small.
const DefaultCatchUpBatchSize = 5000

// feedBatches is how many recent reads of the log the feed keeps for the
// projections behind: in a rebuild of all, they advance batch by batch in
// turn on the one writer, so two are in use at a time (the one being
// applied, the next one being read).
const feedBatches = 4

// DefaultRetryDelay is how long a projection waits after an error that is
// not its own (the event store or the database failing) before trying again.
const DefaultRetryDelay = time.Second

// AllProjections names every projection in Rebuild.
const AllProjections = "all"

// Options tune a Runner. The zero value gives the defaults.
type Options struct {
	// BatchSize is how many events are applied per transaction live.
	BatchSize int
	// CatchUpBatchSize is the batch size while behind or rebuilding.
	CatchUpBatchSize int
	// RetryDelay is the pause after an infrastructure error.
	RetryDelay time.Duration
	// Clock measures lag. Defaults to time.Now.
	Clock func() time.Time
	// LagObserver, when set, also receives every live lag observation.
	LagObserver LagObserver
}

func (o Options) withDefaults() Options {
	if o.CatchUpBatchSize <= 0 {
		// A caller that sized live batches (tests do, to cross batch
		// boundaries) gets the same size when catching up.
		o.CatchUpBatchSize = DefaultCatchUpBatchSize
		if o.BatchSize > 0 {
			o.CatchUpBatchSize = o.BatchSize
		}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}

// Runner keeps projections up to date with the event log, each in its own
// goroutine, so a failing projection stops alone.
type Runner struct {
	store  eventstore.Store
	db     *DB
	logger *slog.Logger
	opts   Options

	workers []*worker
	byName  map[string]*worker
	regs    []*registration
	// wake is broadcast whenever the event log grows.
	wake *eventstore.Signal
	// feed reads the log for every projection; a new one per Run.
	feed *feed

	lifecycle sync.Mutex
	running   bool
	stopped   chan struct{} // closed when the current Run has stopped
}

// NewRunner is NewRunnerWithOptions with default options.
func NewRunner(store eventstore.Store, db *DB, logger *slog.Logger, projections ...Projection) (*Runner, error) {
	return NewRunnerWithOptions(store, db, logger, Options{}, projections...)
}

// NewRunnerWithOptions checks the projections and registers their tables
// with db. It touches neither the store nor the database: Prepare or Run do.
func NewRunnerWithOptions(store eventstore.Store, db *DB, logger *slog.Logger, opts Options, projections ...Projection) (*Runner, error) {
	if store == nil || db == nil {
		return nil, errors.New("projections: NewRunner needs a store and a database")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{
		store:  store,
		db:     db,
		logger: logger,
		opts:   opts.withDefaults(),
		byName: map[string]*worker{},
		wake:   eventstore.NewSignal(),
	}
	for _, p := range projections {
		if err := validateProjection(p); err != nil {
			return nil, err
		}
		if p.Name() == AllProjections {
			return nil, fmt.Errorf("projections: the name %q is reserved", AllProjections)
		}
		if _, dup := r.byName[p.Name()]; dup {
			return nil, fmt.Errorf("projections: two projections are named %s", p.Name())
		}
		reg, err := db.register(p)
		if err != nil {
			return nil, err
		}
		w := newWorker(r, p, reg)
		r.workers = append(r.workers, w)
		r.byName[p.Name()] = w
		r.regs = append(r.regs, reg)
	}
	return r, nil
}

// logReader is how the feed reads the log: without the events' Metadata
// when the store can and no projection reads it (see BodiesOnly).
func (r *Runner) logReader() func(ctx context.Context, after int64, limit int) ([]eventstore.RecordedEvent, error) {
	bodies, ok := r.store.(eventstore.BodyReader)
	if !ok {
		return r.store.ReadAll
	}
	for _, w := range r.workers {
		if _, ok := w.p.(BodiesOnly); !ok {
			return r.store.ReadAll
		}
	}
	return bodies.ReadAllBodies
}

// Prepare creates the tables and state of projections seen for the first
// time and starts the rebuild of those whose version changed, so readers
// can resolve tables before Run catches up. Run calls it too.
func (r *Runner) Prepare(ctx context.Context) error {
	r.lifecycle.Lock()
	defer r.lifecycle.Unlock()
	if r.running {
		return ErrAlreadyRunning
	}
	if err := r.db.claim(r.regs); err != nil {
		return err
	}
	defer r.db.release(r.regs)
	return r.prepare(ctx)
}

func (r *Runner) prepare(ctx context.Context) error {
	for _, w := range r.workers {
		if err := w.prepare(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Run follows the event log until ctx ends, then returns nil; it returns an
// error if it cannot start or the log cannot be followed any more. A
// projection whose Apply fails stops at that event (see Status) while the
// others go on.
func (r *Runner) Run(ctx context.Context) error {
	r.lifecycle.Lock()
	if r.running {
		r.lifecycle.Unlock()
		return ErrAlreadyRunning
	}
	if err := r.db.claim(r.regs); err != nil {
		r.lifecycle.Unlock()
		return err
	}
	head, err := r.start(ctx)
	if err != nil {
		r.db.release(r.regs)
		r.lifecycle.Unlock()
		return err
	}
	stopped := make(chan struct{})
	r.running, r.stopped = true, stopped
	r.feed = newFeed(r.logReader(), feedBatches, 2*r.opts.CatchUpBatchSize)
	r.feed.follow(head)
	feed := r.feed
	r.lifecycle.Unlock()

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() { w.run(runCtx) })
	}
	// The subscription feeds the tail the projections following live read
	// from, then wakes them: each asks the feed for the batch after its own
	// checkpoint.
	err = r.store.Subscribe(runCtx, head, func(e eventstore.RecordedEvent) error {
		feed.push(e)
		r.wake.Broadcast()
		return nil
	})
	cancel()
	wg.Wait()

	r.lifecycle.Lock()
	r.running = false
	close(stopped)
	r.db.release(r.regs)
	r.lifecycle.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("projections: follow the event log: %w", err)
}

func (r *Runner) start(ctx context.Context) (int64, error) {
	if err := r.prepare(ctx); err != nil {
		return 0, err
	}
	head, err := r.store.HeadPosition(ctx)
	if err != nil {
		return 0, fmt.Errorf("projections: read the head of the event log: %w", err)
	}
	return head, nil
}

// Names lists the projections in the order given to NewRunner.
func (r *Runner) Names() []string {
	out := make([]string, len(r.workers))
	for i, w := range r.workers {
		out[i] = w.name
	}
	return out
}

func (r *Runner) worker(name string) (*worker, error) {
	w, ok := r.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownProjection, name)
	}
	return w, nil
}

// runState tells whether Run is running and gives the channel closed when
// it stops.
func (r *Runner) runState() (bool, chan struct{}) {
	r.lifecycle.Lock()
	defer r.lifecycle.Unlock()
	return r.running, r.stopped
}

// Rebuild rebuilds the named projection (or every one, for "all") from the
// start of the log into a new generation of tables while the current
// generation keeps serving reads, and returns once the new generation has
// caught up and been swapped in. A rebuild already under way is joined, not
// restarted. Ending ctx stops the wait, not the rebuild. Run must be running.
func (r *Runner) Rebuild(ctx context.Context, name string) error {
	targets := r.workers
	if name != AllProjections {
		w, err := r.worker(name)
		if err != nil {
			return err
		}
		targets = []*worker{w}
	}
	var dones []chan error
	for _, w := range targets {
		req := request{kind: requestRebuild, started: make(chan error, 1), done: make(chan error, 1)}
		if err := r.send(ctx, w, req); err != nil {
			return err
		}
		dones = append(dones, req.done)
	}
	var errs []error
	for _, done := range dones {
		select {
		case err := <-done:
			errs = append(errs, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// Retry makes a failed projection try again from its checkpoint. Restarting
// the runner does the same for every projection.
func (r *Runner) Retry(ctx context.Context, name string) error {
	w, err := r.worker(name)
	if err != nil {
		return err
	}
	return r.send(ctx, w, request{kind: requestRetry, started: make(chan error, 1)})
}

// send hands a request to a projection's goroutine and waits until it has
// been acted on.
func (r *Runner) send(ctx context.Context, w *worker, req request) error {
	running, stopped := r.runState()
	if !running {
		return ErrNotRunning
	}
	select {
	case w.requests <- req:
	case <-stopped:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.started:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitFor waits up to maxWait for the projection's checkpoint to reach
// position (typically the LastPosition of the caller's own append), so the
// caller can read its own write. reached says whether it did; false means
// the read model does not show that position yet and the caller answers
// with what it has. It returns early, with false, when the projection is
// stopped by a failure or the runner is not running.
func (r *Runner) WaitFor(ctx context.Context, name string, position int64, maxWait time.Duration) (bool, error) {
	w, err := r.worker(name)
	if err != nil {
		return false, err
	}
	if !w.loaded.Load() {
		st, _, err := loadState(ctx, r.db.read, r.db.dialect, name)
		if err != nil {
			return false, err
		}
		return st.position >= position, nil
	}
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	for {
		changed := w.changed.Wait()
		if w.position.Load() >= position {
			return true, nil
		}
		running, _ := r.runState()
		if !running || w.halted.Load() {
			return false, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// State is what a projection is doing.
type State string

const (
	// StateRunning: following the log.
	StateRunning State = "running"
	// StateRebuilding: building a new generation; the current one serves reads.
	StateRebuilding State = "rebuilding"
	// StateFailed: Apply failed at FailedPosition and that generation stopped
	// there until retried or rebuilt. When it is the generation being
	// rebuilt (Rebuild is set), the active one still follows the log.
	StateFailed State = "failed"
	// StateStopped: this runner is not running.
	StateStopped State = "stopped"
)

// Status describes one projection.
type Status struct {
	Name string
	// Version is the projection's code version; StoredVersion the one its
	// active generation was built with (they differ during a rebuild after
	// a version bump).
	Version       int
	StoredVersion int
	State         State
	// Generation is the active generation, the one reads use (0: none yet).
	Generation int64
	// Position is the checkpoint of the active generation.
	Position int64
	// Head is the position of the last event in the log.
	Head int64
	// LagEvents is Head - Position.
	LagEvents int64
	// LagTime is how long the oldest event not yet applied has been waiting
	// (now minus its RecordedAt); 0 when caught up.
	LagTime time.Duration
	// FailedPosition is the event the projection stopped at, when failed.
	FailedPosition int64
	// LastError is the last failure of an Apply and when it happened; it is
	// kept after a successful retry, for the record.
	LastError   string
	LastErrorAt time.Time
	// Rebuild is the progress of the generation being built, if any.
	Rebuild *RebuildProgress
	// LiveLag summarises the time from RecordedAt to the read model being
	// updated, over the events this runner applied to the active generation
	// (catching up after a restart included; rebuilds excluded).
	LiveLag LagStats
}

// RebuildProgress is the state of a generation being built.
type RebuildProgress struct {
	Generation int64
	Version    int
	Position   int64
}

// Status reports every projection, in the order given to NewRunner. It
// reads the persisted state, so it is accurate whether or not Run runs.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	head, err := r.store.HeadPosition(ctx)
	if err != nil {
		return nil, fmt.Errorf("projections: read the head of the event log: %w", err)
	}
	now := r.opts.Clock()
	running, _ := r.runState()
	out := make([]Status, 0, len(r.workers))
	for _, w := range r.workers {
		st, found, err := loadState(ctx, r.db.read, r.db.dialect, w.name)
		if err != nil {
			return nil, err
		}
		s := Status{Name: w.name, Version: w.p.Version(), Head: head, LiveLag: w.lag.stats(), State: StateStopped}
		if found {
			s.StoredVersion = st.version
			s.Generation = st.generation
			s.Position = st.position
			s.LastError = st.lastError
			s.LastErrorAt = st.lastErrorAt
			if st.pendingGeneration != 0 {
				s.Rebuild = &RebuildProgress{Generation: st.pendingGeneration, Version: st.pendingVersion, Position: st.pendingPosition}
			}
		}
		switch {
		case found && st.status == statusFailed:
			s.State = StateFailed
			s.FailedPosition = st.failedPosition
		case !running:
			s.State = StateStopped
		case s.Rebuild != nil:
			s.State = StateRebuilding
		default:
			s.State = StateRunning
		}
		s.LagEvents = max(head-s.Position, 0)
		if s.LagEvents > 0 {
			next, err := r.store.ReadAll(ctx, s.Position, 1)
			if err != nil {
				return nil, fmt.Errorf("projections: read the event log after %d: %w", s.Position, err)
			}
			if len(next) == 1 {
				s.LagTime = max(now.Sub(next[0].RecordedAt), 0)
			}
		}
		out = append(out, s)
	}
	return out, nil
}
