package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/careflow/careflow/eventstore"
)

// cursor is one generation of a projection's tables and how far it got.
type cursor struct {
	names    TableNames
	version  int
	position int64
	// pending: the generation being rebuilt, not the active one.
	pending bool
	// live: the current code can apply events to it (same version and
	// tables). An active generation built by another version is frozen: it
	// serves reads until the rebuild replaces it.
	live bool
	// failed: Apply failed at the event after position.
	failed bool
	// behind: the last read filled its batch, so more is waiting and the
	// next read takes a catch-up sized batch.
	behind bool
	// started is when this process started building a pending generation.
	started time.Time
	// indexed: the generation has its indexes (see createGeneration). A
	// generation is created without them and gets them when it first
	// catches up; false until this process checked.
	indexed bool
}

type requestKind int

const (
	requestRebuild requestKind = iota
	requestRetry
)

// request is an order from the Runner to a projection's goroutine, which
// alone changes the projection's state while Run runs.
type request struct {
	kind    requestKind
	started chan error // the order was carried out (or could not be)
	done    chan error // rebuild: the new generation was swapped in, or failed
}

// worker runs one projection.
type worker struct {
	r        *Runner
	p        Projection
	name     string
	reg      *registration
	lag      lagTracker
	requests chan request

	// Owned by the projection's goroutine while Run runs, by Prepare before.
	active         cursor
	pending        *cursor
	rebuildWaiters []chan error

	// Shared with WaitFor.
	position atomic.Int64 // checkpoint of the active generation
	halted   atomic.Bool  // stuck(): nothing will progress until a retry or rebuild
	loaded   atomic.Bool  // the fields above were loaded from the database
	changed  *eventstore.Signal
}

func newWorker(r *Runner, p Projection, reg *registration) *worker {
	return &worker{
		r:        r,
		p:        p,
		name:     p.Name(),
		reg:      reg,
		requests: make(chan request),
		changed:  eventstore.NewSignal(),
	}
}

func (w *worker) log() *slog.Logger { return w.r.logger.With("projection", w.name) }

// prepare creates the projection's first generation, or reconciles the
// stored state with the code: a generation built by another version (or
// with other tables) is rebuilt. A failure recorded by a previous run is
// cleared: a restart tries again from the checkpoint.
func (w *worker) prepare(ctx context.Context) error {
	db, d := w.r.db, w.r.db.dialect
	version, tables := w.p.Version(), w.p.Tables()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projections: %s: begin prepare: %w", w.name, err)
	}
	defer func() { _ = tx.Rollback() }()
	st, found, err := loadState(ctx, tx, d, w.name)
	if err != nil {
		return err
	}
	startedRebuild := false
	if !found {
		st = state{generation: 1, version: version, tables: tables, status: statusOK}
		if err := createGeneration(ctx, tx, d, w.p, newTableNames(w.name, 1, tables)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO projection_state (name, generation, version, position, tables)
			VALUES (?, ?, ?, 0, ?)`), w.name, st.generation, version, joinTables(tables)); err != nil {
			return fmt.Errorf("projections: %s: create state: %w", w.name, err)
		}
	} else {
		if st.pendingGeneration != 0 && (st.pendingVersion != version || !slices.Equal(st.pendingTables, tables)) {
			if err := dropGeneration(ctx, tx, newTableNames(w.name, st.pendingGeneration, st.pendingTables)); err != nil {
				return err
			}
			st.pendingGeneration, st.pendingVersion, st.pendingPosition, st.pendingTables = 0, 0, 0, nil
		}
		if st.pendingGeneration == 0 && (st.version != version || !slices.Equal(st.tables, tables)) {
			st.pendingGeneration, st.pendingVersion, st.pendingPosition, st.pendingTables = st.generation+1, version, 0, tables
			if err := createGeneration(ctx, tx, d, w.p, newTableNames(w.name, st.pendingGeneration, tables)); err != nil {
				return err
			}
			startedRebuild = true
		}
		st.status = statusOK
		if err := execOne(ctx, tx, d, w.name+": prepare", `UPDATE projection_state SET pending_generation = ?,
			pending_version = ?, pending_position = ?, pending_tables = ?, status = ? WHERE name = ?`,
			st.pendingGeneration, st.pendingVersion, st.pendingPosition, joinTables(st.pendingTables), st.status, w.name); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projections: %s: commit prepare: %w", w.name, err)
	}

	w.setCursors(st)
	w.loaded.Store(true)
	if startedRebuild {
		w.log().Info("projection version changed: rebuilding", "stored_version", st.version, "version", version,
			"generation", st.pendingGeneration)
	}
	return nil
}

// setCursors makes the in-memory state what st says, with no failure: the
// next step tries again from the checkpoints.
func (w *worker) setCursors(st state) {
	w.active = cursor{
		names:    newTableNames(w.name, st.generation, st.tables),
		version:  st.version,
		position: st.position,
		live:     st.version == w.p.Version() && slices.Equal(st.tables, w.p.Tables()),
	}
	var started time.Time
	if w.pending != nil && w.pending.names.Generation() == st.pendingGeneration {
		started = w.pending.started
	}
	w.pending = nil
	if st.pendingGeneration != 0 {
		if started.IsZero() {
			started = time.Now()
		}
		w.pending = &cursor{
			names:    newTableNames(w.name, st.pendingGeneration, st.pendingTables),
			version:  st.pendingVersion,
			position: st.pendingPosition,
			pending:  true,
			live:     true,
			started:  started,
		}
	}
	w.reg.swap.Lock()
	w.reg.active.Store(st.generation)
	w.reg.swap.Unlock()
	w.position.Store(st.position)
	w.noteChange()
}

// reload re-reads the state after an error whose outcome is unknown: a
// failed COMMIT may or may not have been written, a swap may have happened.
func (w *worker) reload(ctx context.Context) error {
	st, found, err := loadState(ctx, w.r.db.write, w.r.db.dialect, w.name)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("projections: %s: state disappeared", w.name)
	}
	w.setCursors(st)
	if w.pending == nil {
		// The rebuild those callers wait for was swapped in after all.
		w.stopWaiters(nil)
	}
	return nil
}

// stuck says that nothing can progress: the active generation is failed or
// frozen, and no healthy rebuild is under way to replace it.
func (w *worker) stuck() bool {
	activeStuck := w.active.failed || !w.active.live
	return activeStuck && (w.pending == nil || w.pending.failed)
}

// noteChange publishes a change of the in-memory state to WaitFor.
func (w *worker) noteChange() {
	w.halted.Store(w.stuck())
	w.changed.Broadcast()
}

// run is the projection's goroutine.
func (w *worker) run(ctx context.Context) {
	defer w.stopWaiters(errors.New("projections: runner stopped before the rebuild finished"))
	reload := false
	for {
		woken := w.r.wake.Wait()
		w.handlePending(ctx)
		if reload {
			if err := w.reload(ctx); err != nil {
				if !w.pause(ctx, err) {
					return
				}
				continue
			}
			reload = false
		}
		if !w.stuck() {
			progressed, err := w.step(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				reload = true
				if !w.pause(ctx, err) {
					return
				}
				continue
			}
			if progressed {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-woken:
		case req := <-w.requests:
			w.handle(ctx, req)
		}
	}
}

// pause logs an error that is not the projection's own and waits before
// the next attempt.
func (w *worker) pause(ctx context.Context, err error) bool {
	w.log().Warn("projection will retry", "error", err, "retry_in", w.r.opts.RetryDelay)
	t := time.NewTimer(w.r.opts.RetryDelay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (w *worker) handlePending(ctx context.Context) {
	for {
		select {
		case req := <-w.requests:
			w.handle(ctx, req)
		default:
			return
		}
	}
}

func (w *worker) handle(ctx context.Context, req request) {
	switch req.kind {
	case requestRebuild:
		err := w.startRebuild(ctx)
		if err == nil {
			w.rebuildWaiters = append(w.rebuildWaiters, req.done)
		}
		req.started <- err
	case requestRetry:
		req.started <- w.retry(ctx)
	}
}

// step applies one batch to the active generation (when it can take one)
// and one to the generation being rebuilt, and swaps the latter in once it
// has caught up. progressed says whether anything changed.
func (w *worker) step(ctx context.Context) (progressed bool, err error) {
	if w.active.live && !w.active.failed {
		moved, caughtUp, err := w.advance(ctx, &w.active)
		if err != nil {
			return false, err
		}
		progressed = moved
		if caughtUp && !w.active.indexed {
			if err := w.index(ctx, &w.active); err != nil {
				return false, err
			}
		}
	}
	if p := w.pending; p != nil && !p.failed {
		moved, caughtUp, err := w.advance(ctx, p)
		if err != nil {
			return false, err
		}
		progressed = progressed || moved
		if caughtUp && p.position >= w.active.position {
			// Indexed before the swap, outside it: nobody reads the
			// pending tables, and readers wait while the swap runs.
			if !p.indexed {
				if err := w.index(ctx, p); err != nil {
					return false, err
				}
			}
			if err := w.swap(ctx); err != nil {
				return false, err
			}
			progressed = true
		}
	}
	return progressed, nil
}

// index creates c's indexes in a transaction of their own, in a turn at
// the writer, when the batch that caught up did not (the log ended exactly
// at a full batch, or was empty). A generation is filled without indexes
// (see createGeneration); once it has caught up, its rows change at the
// pace of the log and the indexes are kept up row by row.
func (w *worker) index(ctx context.Context, c *cursor) error {
	endTurn, err := w.r.db.takeTurn(ctx)
	if err != nil {
		return err
	}
	defer endTurn()
	began := time.Now()
	if err := inTx(ctx, w.r.db.write, func(tx *sql.Tx) error {
		return createIndexes(ctx, tx, w.p, c.names)
	}); err != nil {
		return err
	}
	c.indexed = true
	if took := time.Since(began); took > time.Second {
		w.log().Info("projection indexed", "generation", c.names.Generation(), "took", took.Round(time.Millisecond))
	}
	return nil
}

// advance applies the next batch of events to c. caughtUp says that c has
// applied everything the log held when it was read.
func (w *worker) advance(ctx context.Context, c *cursor) (moved, caughtUp bool, err error) {
	limit := w.r.opts.BatchSize
	if c.pending || c.behind {
		limit = w.r.opts.CatchUpBatchSize
	}
	// Following live, the projection waits for its turn at the writer
	// before it reads: what arrives while the others commit joins its
	// batch, so the projections commit a few larger batches instead of
	// one transaction each per event. Behind, it reads first: the next
	// batch is read while the others write.
	live := !c.pending && !c.behind
	var endTurn func()
	if live {
		if endTurn, err = w.r.db.takeTurn(ctx); err != nil {
			return false, false, err
		}
		defer endTurn()
	}
	events, err := w.r.feed.ReadAll(ctx, c.position, limit)
	c.behind = len(events) == limit
	if err != nil {
		return false, false, fmt.Errorf("read the event log after %d: %w", c.position, err)
	}
	if len(events) == 0 {
		return false, true, nil
	}
	var prepared []preparation
	if !live {
		// Before the turn: while another projection holds the writer.
		prepared = w.prepareBatch(events)
		if endTurn, err = w.r.db.takeTurn(ctx); err != nil {
			return false, false, err
		}
		defer endTurn()
	}
	before := c.position
	// The batch that catches up builds the generation's indexes.
	index := !c.indexed && len(events) < limit
	if err := w.commitIsolating(ctx, c, events, prepared, index); err != nil {
		return false, false, err
	}
	last := events[len(events)-1].Position
	moved = c.position != before || c.failed
	return moved, !c.failed && c.position == last && len(events) < limit, nil
}

// commitIsolating commits events to c in one transaction. If Apply fails on
// one of them, the batch is rolled back, the events before the failing one
// are committed on their own, and the failing one is tried alone: if it
// fails again, first in its transaction, c is marked failed at it.
// prepared, when not nil, holds what Prepare made of each event.
func (w *worker) commitIsolating(ctx context.Context, c *cursor, events []eventstore.RecordedEvent, prepared []preparation, index bool) error {
	at, applyErr, err := w.commit(ctx, c, events, prepared, index)
	if err != nil || applyErr == nil {
		return err
	}
	if at == len(events) && len(events) > 1 {
		// Flush failed: no one event to blame yet. Halves until one is.
		half := len(events) / 2
		if err := w.commitIsolating(ctx, c, events[:half], slicePrepared(prepared, 0, half), false); err != nil || c.failed {
			return err
		}
		return w.commitIsolating(ctx, c, events[half:], slicePrepared(prepared, half, len(events)), false)
	}
	at = min(at, len(events)-1)
	if at == 0 {
		return w.fail(ctx, c, events[0], applyErr)
	}
	if err := w.commitIsolating(ctx, c, events[:at], slicePrepared(prepared, 0, at), false); err != nil || c.failed {
		return err
	}
	// The rest of the batch is read again by the next step.
	return w.commitIsolating(ctx, c, events[at:at+1], slicePrepared(prepared, at, at+1), false)
}

// commit applies events and the new checkpoint in one transaction, in the
// caller's turn at the writer (see DB.takeTurn), and with index, creates
// the generation's indexes in it too. An Apply error rolls everything back
// and is returned as applyErr with the index of its event, a Flush error
// with len(events); err is any other failure.
func (w *worker) commit(ctx context.Context, c *cursor, events []eventstore.RecordedEvent, prepared []preparation, index bool) (at int, applyErr, err error) {
	tx, applyCtx, endTx, err := w.r.db.beginBatch(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer func() {
		if endErr := endTx(); endErr != nil && err == nil {
			err = fmt.Errorf("end the batch: %w", endErr)
		}
	}()
	for i, e := range events {
		var prep *preparation
		if prepared != nil {
			prep = &prepared[i]
		}
		if err := w.apply(applyCtx, tx, c.names, e, prep); err != nil {
			_ = tx.Rollback()
			if ctx.Err() != nil {
				return 0, nil, ctx.Err()
			}
			return i, err, nil
		}
	}
	if err := w.flush(applyCtx, tx, c.names); err != nil {
		_ = tx.Rollback()
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return len(events), err, nil
	}
	if index {
		if err := createIndexes(ctx, tx, w.p, c.names); err != nil {
			_ = tx.Rollback()
			return 0, nil, err
		}
	}
	last := events[len(events)-1].Position
	if err := w.saveCheckpoint(ctx, tx, c, last); err != nil {
		_ = tx.Rollback()
		return 0, nil, err
	}
	if err := tx.Commit(); err != nil {
		return 0, nil, fmt.Errorf("commit: %w", err)
	}
	c.position = last
	c.indexed = c.indexed || index
	if !c.pending {
		// Lag first: a WaitFor that sees the new position sees its lag too.
		w.observeLag(events)
		w.position.Store(last)
		w.changed.Broadcast()
	}
	return 0, nil, nil
}

// preparation is what a Preparer's Prepare made of one event.
type preparation struct {
	value any
	err   error
}

// prepareBatch runs the projection's Prepare on every event, if it has one:
// nil otherwise. A panic is the event's failure, as in apply.
func (w *worker) prepareBatch(events []eventstore.RecordedEvent) []preparation {
	p, ok := w.p.(Preparer)
	if !ok {
		return nil
	}
	out := make([]preparation, len(events))
	for i, e := range events {
		func() {
			defer func() {
				if v := recover(); v != nil {
					out[i].err = fmt.Errorf("panic: %v", v)
				}
			}()
			out[i].value, out[i].err = p.Prepare(e)
		}()
	}
	return out
}

func slicePrepared(prepared []preparation, from, to int) []preparation {
	if prepared == nil {
		return nil
	}
	return prepared[from:to]
}

// apply runs the projection's Apply (ApplyPrepared with what prep holds),
// turning a panic into its failure so a bug in one projection cannot take
// the others down.
func (w *worker) apply(ctx context.Context, tx *sql.Tx, t TableNames, e eventstore.RecordedEvent, prep *preparation) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	if prep != nil {
		if prep.err != nil {
			return prep.err
		}
		return w.p.(Preparer).ApplyPrepared(ctx, tx, t, e, prep.value)
	}
	return w.p.Apply(ctx, tx, t, e)
}

// flush runs a Flusher's Flush, turning a panic into its failure as apply
// does.
func (w *worker) flush(ctx context.Context, tx *sql.Tx, t TableNames) (err error) {
	f, ok := w.p.(Flusher)
	if !ok {
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	if err := f.Flush(ctx, tx, t); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

func (w *worker) saveCheckpoint(ctx context.Context, tx *sql.Tx, c *cursor, position int64) error {
	if c.pending {
		return execOne(ctx, tx, w.r.db.dialect, w.name+": save rebuild checkpoint",
			`UPDATE projection_state SET pending_position = ? WHERE name = ? AND pending_generation = ?`,
			position, w.name, c.names.Generation())
	}
	return execOne(ctx, tx, w.r.db.dialect, w.name+": save checkpoint",
		`UPDATE projection_state SET position = ? WHERE name = ? AND generation = ?`,
		position, w.name, c.names.Generation())
}

func (w *worker) observeLag(events []eventstore.RecordedEvent) {
	now := w.r.opts.Clock()
	for _, e := range events {
		lag := now.Sub(e.RecordedAt)
		w.lag.observe(lag)
		if w.r.opts.LagObserver != nil {
			w.r.opts.LagObserver.ObserveLag(w.name, max(lag, 0))
		}
	}
}

// fail marks c failed at e: that generation stops there. The projection
// is reported failed, unless the failing generation is an active one that a
// rebuild under way is about to replace: then the rebuild goes on and the
// active generation stays frozen until the swap. A failed rebuild leaves the
// active generation following the log.
func (w *worker) fail(ctx context.Context, c *cursor, e eventstore.RecordedEvent, applyErr error) error {
	status := statusOK
	if c.pending || w.pending == nil || w.pending.failed {
		status = statusFailed
	}
	msg := fmt.Sprintf("generation %d: apply event %d (%s, id %s, stream %s): %v",
		c.names.Generation(), e.Position, e.Type, e.ID, e.Stream, applyErr)
	if err := execOne(ctx, w.r.db.write, w.r.db.dialect, w.name+": record failure",
		`UPDATE projection_state SET status = ?, failed_position = ?, last_error = ?, last_error_at = ? WHERE name = ?`,
		status, e.Position, msg, w.r.opts.Clock().UnixNano(), w.name); err != nil {
		return err
	}
	c.failed = true
	// Logged before WaitFor callers are woken, so what they see next is
	// already on record.
	w.log().Error("projection failed", "generation", c.names.Generation(), "position", e.Position,
		"event_id", e.ID, "event_type", e.Type, "rebuild", c.pending, "stopped", w.stuck(), "error", applyErr)
	w.noteChange()
	if c.pending {
		w.stopWaiters(fmt.Errorf("projections: rebuild of %s failed: %s", w.name, msg))
	}
	return nil
}

// retry clears the failure so the next step tries again from the
// checkpoint.
func (w *worker) retry(ctx context.Context) error {
	if err := execOne(ctx, w.r.db.write, w.r.db.dialect, w.name+": retry",
		`UPDATE projection_state SET status = ? WHERE name = ?`, statusOK, w.name); err != nil {
		return err
	}
	w.active.failed = false
	if w.pending != nil {
		w.pending.failed = false
	}
	w.noteChange()
	w.log().Info("projection retrying", "position", w.active.position)
	return nil
}

// startRebuild creates the next generation's tables and records it as
// pending. A rebuild already under way is kept; a failed one starts over.
func (w *worker) startRebuild(ctx context.Context) error {
	if w.pending != nil && !w.pending.failed {
		return nil
	}
	db, d := w.r.db, w.r.db.dialect
	names := newTableNames(w.name, w.active.names.Generation()+1, w.p.Tables())
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projections: %s: begin rebuild: %w", w.name, err)
	}
	defer func() { _ = tx.Rollback() }()
	if w.pending != nil {
		if err := dropGeneration(ctx, tx, w.pending.names); err != nil {
			return err
		}
	}
	if err := createGeneration(ctx, tx, d, w.p, names); err != nil {
		return err
	}
	if err := execOne(ctx, tx, d, w.name+": start rebuild", `UPDATE projection_state SET pending_generation = ?,
		pending_version = ?, pending_position = 0, pending_tables = ?, status = ? WHERE name = ? AND generation = ?`,
		names.Generation(), w.p.Version(), joinTables(names.Logical()), statusOK, w.name, w.active.names.Generation()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projections: %s: commit rebuild start: %w", w.name, err)
	}
	w.pending = &cursor{names: names, version: w.p.Version(), pending: true, live: true, started: time.Now()}
	w.noteChange()
	w.log().Info("projection rebuild started", "generation", names.Generation())
	return nil
}

// swap makes the caught-up pending generation the active one and drops the
// old tables, in one transaction, while no reader uses them.
func (w *worker) swap(ctx context.Context) error {
	p, old := w.pending, w.active.names
	w.reg.swap.Lock()
	defer w.reg.swap.Unlock()
	tx, err := w.r.db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin swap: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := execOne(ctx, tx, w.r.db.dialect, w.name+": swap", `UPDATE projection_state SET generation = ?, version = ?,
		position = ?, tables = ?, pending_generation = 0, pending_version = 0, pending_position = 0,
		pending_tables = '', status = ? WHERE name = ? AND generation = ? AND pending_generation = ?`,
		p.names.Generation(), p.version, p.position, joinTables(p.names.Logical()), statusOK,
		w.name, old.Generation(), p.names.Generation()); err != nil {
		return err
	}
	if err := dropGeneration(ctx, tx, old); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit swap: %w", err)
	}
	w.reg.active.Store(p.names.Generation())
	w.active = cursor{names: p.names, version: p.version, position: p.position, live: true, indexed: p.indexed}
	w.pending = nil
	w.position.Store(p.position)
	w.noteChange()
	w.stopWaiters(nil)
	w.log().Info("projection rebuilt", "generation", p.names.Generation(), "position", p.position,
		"took", time.Since(p.started).Round(time.Millisecond))
	return nil
}

// stopWaiters answers every Rebuild waiting for this projection.
func (w *worker) stopWaiters(err error) {
	for _, done := range w.rebuildWaiters {
		done <- err
	}
	w.rebuildWaiters = nil
}
