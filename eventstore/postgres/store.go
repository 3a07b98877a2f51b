// Package postgres is careflow's PostgreSQL event store, on pgx and its
// pool. An append is one statement (version check, idempotency check,
// insert and NOTIFY together); appends arriving while the append workers
// are busy share one statement, so one commit. The global order is
// gap-free for readers: a row's position is derived from its transaction
// id, and readers only see transactions older than every transaction of
// the database still running (see
// docs/adr/0005-postgres-gap-free-ordering.md). Subscriptions wake on
// LISTEN/NOTIFY through one listening connection per store, which listens
// only while the store has a subscription.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careflow/careflow/eventstore"
)

// Store is the PostgreSQL eventstore.Store. It is safe for concurrent use,
// and any number of Stores (in any number of processes) may share one
// database.
type Store struct {
	cfg      Config
	opts     eventstore.Options
	pool     *pgxpool.Pool
	signal   *eventstore.Signal
	listener *listener

	// mu guards closed and the hand-over to the workers: Append holds it
	// shared while it queues, reads hold it shared while they query, Close
	// takes it exclusively so nothing is in flight when it shuts down.
	mu       sync.RWMutex
	closed   bool
	requests chan *appendRequest
	workers  sync.WaitGroup
	// tokens holds one token per append statement running, at most
	// AppendWorkers: a worker takes one before it writes a group, and an
	// Append that finds the writers idle takes one to write in its own
	// goroutine (see Append).
	tokens chan struct{}
	// callerWrites lets Append write a lone append itself (off in tests
	// that line appends up for a worker).
	callerWrites bool
	// grouping is set while the last group a worker wrote held several
	// appends: appenders then go through the queue, so they share commits.
	grouping atomic.Bool
	// With Config.NotifyAfterCommit: commits waiting for a notification,
	// and the notifier goroutine's end.
	notifyNeeded chan struct{}
	notifierDone chan struct{}

	// afterInsert is a test seam. When set, Append runs its statement in an
	// explicit transaction and calls afterInsert between the insert and the
	// commit, so a test can hold a transaction open at that point.
	afterInsert func(ctx context.Context, stream eventstore.StreamID)
	// afterRead is a test seam: Subscribe calls it after each read with
	// whether committed events were waiting behind an open transaction.
	afterRead func(blocked bool)
}

var _ eventstore.Store = (*Store)(nil)

// notifyChannel is the LISTEN/NOTIFY channel appends announce commits on.
const notifyChannel = "careflow_events"

// positionShift: a position is (transaction id << positionShift) + the
// event's index in its transaction; the SQL spells it as 16. 16 bits allow
// 65,536 events per transaction (an Append holds at most
// eventstore.MaxEventsPerAppend, a group at most maxGroupEvents) and 2^47
// transaction ids, centuries at ten thousand transactions a second.
const positionShift = 16

type option func(*Store)

// Open connects to cfg.URL, checks the server's durability setting and the
// schema (migrating first when cfg.Migrate is set), and starts listening for
// commits.
func Open(ctx context.Context, cfg Config, opts eventstore.Options) (*Store, error) {
	return open(ctx, cfg, opts)
}

func open(ctx context.Context, cfg Config, opts eventstore.Options, options ...option) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: URL: %w", err)
	}
	pc.MaxConns = cfg.MaxConns
	if !cfg.AllowAsyncCommit {
		// Checked on every new connection: a setting made per database or
		// per role after Open would otherwise go unnoticed.
		pc.AfterConnect = checkSynchronousCommit
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	s := &Store{
		cfg: cfg, opts: opts.WithDefaults(), pool: pool, signal: eventstore.NewSignal(),
		requests: make(chan *appendRequest, cfg.AppendWorkers*cfg.MaxGroup),
	}
	for _, o := range options {
		o(s)
	}
	s.tokens = make(chan struct{}, max(s.cfg.AppendWorkers, 1))
	s.callerWrites = s.cfg.AppendWorkers > 0
	if err := s.start(ctx, pc.ConnConfig); err != nil {
		pool.Close()
		return nil, err
	}
	for range s.cfg.AppendWorkers {
		s.workers.Add(1)
		go s.runWorker()
	}
	if s.cfg.NotifyAfterCommit {
		s.notifyNeeded, s.notifierDone = make(chan struct{}, 1), make(chan struct{})
		go s.runNotifier()
	}
	return s, nil
}

func (s *Store) start(ctx context.Context, cc *pgx.ConnConfig) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	if s.cfg.Migrate {
		if err := Migrate(ctx, s.pool); err != nil {
			return err
		}
	} else if err := checkSchema(ctx, s.pool); err != nil {
		return err
	}
	if err := checkTransactionIDs(ctx, s.pool); err != nil {
		return err
	}
	l, err := startListener(ctx, cc, s.signal)
	if err != nil {
		return err
	}
	s.listener = l
	return nil
}

// checkTransactionIDs refuses a log written by transaction ids this server
// has not reached yet. That happens when a logical dump is restored into
// another cluster (physical backups, replicas and pg_upgrade keep the
// counter): its new events would sort before the restored ones, and the
// restored ones would stay invisible to readers.
func checkTransactionIDs(ctx context.Context, pool *pgxpool.Pool) error {
	var newest, next int64
	if err := pool.QueryRow(ctx, `SELECT COALESCE(MAX(position), 0) >> 16,
		pg_snapshot_xmax(pg_current_snapshot())::text::bigint FROM events`).Scan(&newest, &next); err != nil {
		return fmt.Errorf("postgres: check transaction ids: %w", err)
	}
	if newest >= next {
		return fmt.Errorf("postgres: the events were written by transaction id %d but this server is at %d "+
			"(restored from a logical dump into another cluster?); advance the server's transaction id "+
			"past %d (pg_resetwal -x on the stopped server) before opening the store", newest, next, newest)
	}
	return nil
}

// checkSynchronousCommit refuses a connection whose commits are
// acknowledged before they are durable.
func checkSynchronousCommit(ctx context.Context, conn *pgx.Conn) error {
	var mode string
	if err := conn.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&mode); err != nil {
		return fmt.Errorf("postgres: read synchronous_commit: %w", err)
	}
	if mode == "off" {
		return errors.New("postgres: the server runs with synchronous_commit = off, so a crash can lose " +
			"acknowledged appends; set synchronous_commit to on for this database or role, " +
			"or set Config.AllowAsyncCommit to accept that risk")
	}
	return nil
}

// Append hands the append to a worker and waits for its answer. Appends
// that arrive while all workers are busy are written together. An append
// that finds no statement running, nothing queued and no grouping under
// way writes itself, in the caller's goroutine: a lone writer then skips
// two goroutine hand-overs per append (docs/performance.md), and appends
// that arrive meanwhile queue for a worker as before.
func (s *Store) Append(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events []eventstore.NewEvent) (eventstore.AppendResult, error) {
	events = slices.Clone(events)
	// The server parses every body (the data column is jsonb).
	commandID, err := eventstore.PrepareAppendStoreParsesJSON(ctx, s.opts, stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	req, err := newAppendRequest(ctx, stream, expected, commandID, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}

	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	if s.callerWrites && !s.grouping.Load() && len(s.requests) == 0 {
		select {
		case s.tokens <- struct{}{}:
			// Holding mu shared until the write ends keeps Close waiting
			// for it, as it waits for the workers.
			defer s.mu.RUnlock()
			defer func() { <-s.tokens }()
			if err := ctx.Err(); err != nil {
				return eventstore.AppendResult{}, err
			}
			return s.appendAlone(req)
		default:
		}
	}
	select {
	case s.requests <- req:
	case <-ctx.Done():
		s.mu.RUnlock()
		return eventstore.AppendResult{}, ctx.Err()
	}
	s.mu.RUnlock()

	// No select on ctx here: once queued, a worker either drops the request
	// with ctx.Err() (not yet taken) or writes it, and the caller must learn
	// which. Once taken, the write ignores the context (see appendAlone).
	out := <-req.done
	return out.result, out.err
}

// priorAppendSQL reads the events of a stored command: $1, $2 the stream,
// $3 the command id, $4 the most events one append holds.
const priorAppendSQL = `SELECT ` + eventColumns + ` FROM events,
		(SELECT version AS first FROM events WHERE stream_type = $1 AND stream_id = $2 AND command_id = $3
			AND command_id <> '' AND first_of_command) AS f
	WHERE stream_type = $1 AND stream_id = $2 AND command_id = $3
		AND version >= f.first AND version < f.first + $4
	ORDER BY version`

// priorAppend is the result of the append that already stored commandID
// in stream.
func (s *Store) priorAppend(ctx context.Context, stream eventstore.StreamID, commandID string) (eventstore.AppendResult, error) {
	// The command's events are consecutive versions from its first, found
	// through events_command_once; no other append in the stream has the
	// same command id (that index refuses it). The upper bound keeps a
	// retry of an old command in a long stream from reading the rest of it.
	rows, err := s.pool.Query(ctx, priorAppendSQL, stream.Type, stream.ID, commandID, eventstore.MaxEventsPerAppend)
	if err != nil {
		return eventstore.AppendResult{}, readError(ctx, "look up command "+commandID, err)
	}
	prior, err := scanEvents(rows, 0)
	if err != nil {
		return eventstore.AppendResult{}, readError(ctx, "look up command "+commandID, err)
	}
	if len(prior) == 0 {
		return eventstore.AppendResult{}, fmt.Errorf("postgres: command %s in %s was stored but is gone", commandID, stream)
	}
	return eventstore.AppendResult{Stream: stream, Version: prior[len(prior)-1].Version, Events: prior, Duplicate: true}, nil
}

func (s *Store) ReadStream(ctx context.Context, stream eventstore.StreamID, fromVersion int64) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.CheckRead(ctx, fromVersion, 1); err != nil {
		return nil, err
	}
	if err := stream.Validate(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE stream_type = $1 AND stream_id = $2 AND version >= $3 ORDER BY version`,
		stream.Type, stream.ID, fromVersion)
	if err != nil {
		return nil, readError(ctx, "read stream", err)
	}
	events, err := scanEvents(rows, 0)
	if err != nil {
		return nil, readError(ctx, "read stream", err)
	}
	return events, nil
}

// ReadPositions reads committed events by position. Unlike ReadAll it does
// not stop at the horizon: its callers name positions they already saw.
func (s *Store) ReadPositions(ctx context.Context, positions []int64) ([]eventstore.RecordedEvent, error) {
	positions, err := eventstore.CheckPositions(ctx, positions)
	if err != nil || len(positions) == 0 {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE position = ANY($1) ORDER BY position`, positions)
	if err != nil {
		return nil, readError(ctx, "read positions", err)
	}
	events, err := scanEvents(rows, len(positions))
	if err != nil {
		return nil, readError(ctx, "read positions", err)
	}
	return events, nil
}

// horizonSQL is the first position readers may not see yet: the positions
// of the oldest transaction of this database that was running when the
// statement's snapshot was taken (or, with none, of the next transaction
// to start). Every transaction with a smaller id has ended, and none can
// start any more, so the rows below it are a prefix of the log that never
// changes again.
//
// Transaction ids are shared by all databases of a cluster, but a
// transaction only ever writes to its own database: a transaction that is
// still running in another database (per pg_stat_activity, read after the
// snapshot) cannot hold an event and does not hold readers back. Nor does
// an autovacuum worker (an ANALYZE holds a transaction id while it writes
// statistics, never events). Anything not known to be one of those (it
// ended since the snapshot, or its session is not visible) counts.
const horizonSQL = `(COALESCE(
	(SELECT MIN(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
		WHERE x::text::bigint % 4294967296 NOT IN (
			SELECT backend_xid::text::bigint FROM pg_stat_activity
			WHERE backend_xid IS NOT NULL AND (backend_type = 'autovacuum worker'
				OR (datid IS NOT NULL AND datname IS DISTINCT FROM current_database())))),
	pg_snapshot_xmax(pg_current_snapshot())::text::bigint) << 16)`

// readPageSQL reads the next page below the horizon and says whether
// committed rows exist at or above it (so the reader knows to look again
// soon even if nobody notifies it). The inner query is the plain
// "next rows by position", which the planner always answers from the
// primary key; the horizon then cuts its tail. That cut leaves an exact
// page: every row below the horizon sorts before every row above it, so
// if the cut removed anything, nothing below the horizon was left out.
// MAX(position) is read from the end of the primary key.
const readPageSQL = `
WITH h AS MATERIALIZED (
	SELECT x.horizon, COALESCE((SELECT MAX(position) FROM events), 0) >= x.horizon AS blocked
	FROM (SELECT ` + horizonSQL + ` AS horizon) AS x
)
SELECT (SELECT blocked FROM h), ` + eventColumns + ` FROM (
	SELECT ` + eventColumns + ` FROM events WHERE position > $1 ORDER BY position LIMIT $2
) AS page
WHERE position < (SELECT horizon FROM h)
ORDER BY position`

// ReadAll returns events of finished transactions only: an event whose
// transaction is older than one still running waits until that one ends,
// so a reader never moves past a position that a commit could still fill.
//
// A page cut short by the horizon is read once more at once: the
// transaction that held it back is often one of another database that
// ended between the snapshot and the look at pg_stat_activity, which the
// horizon must count (it cannot tell it from an append of this database
// that just committed), and a fresh snapshot no longer sees it. That race
// once hid a caller's own committed appends from it in CI; now it would
// have to strike twice in a row.
func (s *Store) ReadAll(ctx context.Context, afterPosition int64, limit int) ([]eventstore.RecordedEvent, error) {
	events, blocked, err := s.readPage(ctx, afterPosition, limit)
	if err == nil && blocked && len(events) < limit {
		events, _, err = s.readPage(ctx, afterPosition, limit)
	}
	return events, err
}

// readPage is ReadAll that also reports whether committed events exist
// beyond what it may return yet.
func (s *Store) readPage(ctx context.Context, afterPosition int64, limit int) ([]eventstore.RecordedEvent, bool, error) {
	if err := eventstore.CheckRead(ctx, afterPosition, limit); err != nil {
		return nil, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, false, eventstore.ErrClosed
	}
	rows, err := s.pool.Query(ctx, readPageSQL, afterPosition, limit)
	if err != nil {
		return nil, false, readError(ctx, "read all", err)
	}
	defer rows.Close()
	var (
		sc      eventScanner
		blocked bool
		out     = make([]eventstore.RecordedEvent, 0, min(limit, eventstore.CatchUpBatch))
	)
	for rows.Next() {
		var e eventstore.RecordedEvent
		if err := sc.scan(rows, &e, &blocked); err != nil {
			return nil, false, readError(ctx, "read all", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, readError(ctx, "read all", err)
	}
	if len(out) == 0 {
		// No row carried the flag. Anything stored after afterPosition is
		// then either not readable yet or became readable just now; either
		// way the reader should look again soon.
		if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(position), 0) > $1 FROM events`, afterPosition).Scan(&blocked); err != nil {
			return nil, false, readError(ctx, "read all", err)
		}
	}
	return out, blocked, nil
}

// Subscribe reads what is stored, then waits for a commit notification.
// While it knows of committed events it may not read yet (an older
// transaction, perhaps not even an append, is still open and will send no
// notification when it ends) it also looks again every RecheckInterval
// (see recheckAfter). Close wakes it and it ends with ErrClosed.
func (s *Store) Subscribe(ctx context.Context, afterPosition int64, handle func(eventstore.RecordedEvent) error) error {
	if err := eventstore.CheckRead(ctx, afterPosition, 1); err != nil {
		return err
	}
	defer s.listener.subscribe()()
	var recheck *time.Timer
	defer func() {
		if recheck != nil {
			recheck.Stop()
		}
	}()
	for {
		woken := s.signal.Wait()
		events, blocked, err := s.readPage(ctx, afterPosition, eventstore.CatchUpBatch)
		if err != nil {
			return err
		}
		if s.afterRead != nil {
			s.afterRead(blocked)
		}
		for _, e := range events {
			if err := handle(e); err != nil {
				return err
			}
			afterPosition = e.Position
		}
		if len(events) == eventstore.CatchUpBatch {
			continue
		}
		var again <-chan time.Time
		if wait := s.recheckAfter(blocked); wait > 0 {
			if recheck == nil {
				recheck = time.NewTimer(wait)
			} else {
				recheck.Reset(wait)
			}
			again = recheck.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-woken:
		case <-again:
		}
	}
}

// recheckAfter is how long a subscriber waits for a notification before it
// looks again anyway. With committed events waiting behind an open
// transaction it is RecheckInterval. With NotifyAfterCommit, a process that
// dies between a commit and its notification leaves those events
// unannounced, so an idle subscriber looks every LostNotifyRecheck.
// Otherwise every IdleRecheck: a notification lost any other way (the
// listener reconnecting, a server restart) delays events, never holds them
// back.
func (s *Store) recheckAfter(blocked bool) time.Duration {
	switch {
	case blocked:
		return s.cfg.RecheckInterval
	case s.cfg.NotifyAfterCommit:
		return s.cfg.LostNotifyRecheck
	}
	return s.cfg.IdleRecheck
}

// HeadPosition is the position of the last event readers may see: a
// reader that has reached it has seen everything below it.
func (s *Store) HeadPosition(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, eventstore.ErrClosed
	}
	var head int64
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(position), 0) FROM events WHERE position < `+horizonSQL).Scan(&head); err != nil {
		return 0, readError(ctx, "head position", err)
	}
	return head, nil
}

// Close stops taking appends, lets the workers write every append already
// queued, ends subscriptions and closes the connections. Later calls on the store return ErrClosed; a second Close
// returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.requests)
	s.mu.Unlock()

	s.workers.Wait()
	if s.notifyNeeded != nil {
		close(s.notifyNeeded)
		<-s.notifierDone
	}
	s.listener.stop()
	s.signal.Broadcast()
	s.pool.Close()
	return nil
}

// readError prefers the context's error, so a cancelled read says so
// rather than surfacing the driver's message.
func readError(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}
