// Package sqlite is careflow's embedded event store: one SQLite file in WAL
// mode with synchronous=FULL, written by a single goroutine that commits
// waiting appends in groups (one fsync per group), read through a separate
// pool of read-only connections. The driver is modernc.org/sqlite (pure Go,
// no cgo).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/careflow/careflow/eventstore"
)

// Store is the SQLite eventstore.Store. It is safe for concurrent use.
// Open a database file with one Store at a time: subscribers are woken by
// this Store's own writer, so they would not notice another's commits.
type Store struct {
	cfg    Config
	opts   eventstore.Options
	signal *eventstore.Signal

	writeDB *sql.DB // one connection, owned by the writer goroutine
	readDB  *sql.DB // read-only pool
	writer  *writer
	reads   readStatements

	// mu guards closed and the hand-over to the writer: Append holds it
	// shared while it queues, reads hold it shared while they query, Close
	// takes it exclusively so nothing is in flight when it shuts down.
	mu         sync.RWMutex
	closed     bool
	requests   chan *appendRequest
	writerDone chan struct{}
	// recent holds the last commits for live subscribers.
	recent *recentEvents
}

var (
	_ eventstore.Store      = (*Store)(nil)
	_ eventstore.BodyReader = (*Store)(nil)
)

type readStatements struct {
	stream    *sql.Stmt
	all       *sql.Stmt
	bodies    *sql.Stmt
	head      *sql.Stmt
	positions *sql.Stmt
}

// The read queries. Each is an index range or seek (TestQueriesUseIndexes).
const (
	readStreamSQL = `SELECT ` + eventColumns + ` FROM events
		WHERE stream_type = ? AND stream_id = ? AND version >= ? ORDER BY version`
	readAllSQL    = `SELECT ` + eventColumns + ` FROM events WHERE position > ? ORDER BY position LIMIT ?`
	readBodiesSQL = `SELECT ` + bodyColumns + ` FROM events WHERE position > ? ORDER BY position LIMIT ?`
	headSQL       = `SELECT position FROM events ORDER BY position DESC LIMIT 1`
	// readPositionsSQL takes a JSON array of positions.
	readPositionsSQL = `SELECT ` + eventColumns + ` FROM events
		WHERE position IN (SELECT value FROM json_each(?)) ORDER BY position`
)

// Open opens (creating and migrating if needed) the database at cfg.Path.
func Open(ctx context.Context, cfg Config, opts eventstore.Options) (*Store, error) {
	s, err := openWithoutWriter(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	go s.runWriter()
	return s, nil
}

// openWithoutWriter does all of Open but start the writer goroutine; tests
// use it to line up requests before the writer sees them.
func openWithoutWriter(ctx context.Context, cfg Config, opts eventstore.Options) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := CreateFile(cfg.Path); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:        cfg,
		opts:       opts.WithDefaults(),
		signal:     eventstore.NewSignal(),
		requests:   make(chan *appendRequest, cfg.QueueSize),
		writerDone: make(chan struct{}),
		recent:     newRecentEvents(defaultRecentEvents),
	}
	if err := s.open(ctx); err != nil {
		_ = s.closeDBs()
		return nil, err
	}
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	var err error
	s.writeDB, err = sql.Open("sqlite", s.cfg.dsn(false))
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.cfg.Path, err)
	}
	// The writer keeps its one connection for the life of the store: its
	// prepared statements live on it.
	s.writeDB.SetMaxOpenConns(1)
	s.writeDB.SetMaxIdleConns(1)
	s.writeDB.SetConnMaxLifetime(0)
	s.writeDB.SetConnMaxIdleTime(0)
	if err := checkPragmas(ctx, s.writeDB); err != nil {
		return err
	}
	if err := migrate(ctx, s.writeDB); err != nil {
		return err
	}
	if s.writer, err = newWriter(ctx, s.writeDB); err != nil {
		return err
	}

	s.readDB, err = sql.Open("sqlite", s.cfg.dsn(true))
	if err != nil {
		return fmt.Errorf("sqlite: open %s for reading: %w", s.cfg.Path, err)
	}
	s.readDB.SetMaxOpenConns(s.cfg.ReadConns)
	s.readDB.SetMaxIdleConns(s.cfg.ReadConns)
	s.readDB.SetConnMaxLifetime(0)
	s.readDB.SetConnMaxIdleTime(0)
	prepare := func(query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = s.readDB.PrepareContext(ctx, query)
		return st
	}
	s.reads = readStatements{
		stream:    prepare(readStreamSQL),
		all:       prepare(readAllSQL),
		bodies:    prepare(readBodiesSQL),
		head:      prepare(headSQL),
		positions: prepare(readPositionsSQL),
	}
	if err != nil {
		return fmt.Errorf("sqlite: prepare reads: %w", err)
	}
	return nil
}

// checkPragmas makes sure the durability settings took: journal_mode=WAL
// can silently stay "delete" (e.g. on a file system without shared memory).
func checkPragmas(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: journal mode is %q, want wal", mode)
	}
	var sync int
	if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		return fmt.Errorf("sqlite: read synchronous: %w", err)
	}
	if sync < 2 {
		return fmt.Errorf("sqlite: synchronous is %d, want FULL (2)", sync)
	}
	return nil
}

// Append queues the append for the writer and waits for its answer. The
// answer is final: success only once the group's COMMIT returned.
func (s *Store) Append(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events []eventstore.NewEvent) (eventstore.AppendResult, error) {
	req, err := s.queue(ctx, stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}

	// No select on ctx here: once queued, the writer either drops the
	// request with ctx.Err() (not yet taken) or commits it, and the caller
	// must learn which.
	out := <-req.done
	return out.result, out.err
}

// queue validates and encodes the append and hands it to the writer.
func (s *Store) queue(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events []eventstore.NewEvent) (*appendRequest, error) {
	events = slices.Clone(events)
	commandID, err := eventstore.PrepareAppend(ctx, s.opts, stream, expected, events)
	if err != nil {
		return nil, err
	}
	req, err := newAppendRequest(ctx, stream, expected, commandID, events)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	select {
	case s.requests <- req:
		return req, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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
	rows, err := s.reads.stream.QueryContext(bounded(ctx), stream.Type, stream.ID, fromVersion)
	if err != nil {
		return nil, readError(ctx, "read stream", err)
	}
	events, err := scanEvents(rows, 0)
	if err != nil {
		return nil, readError(ctx, "read stream", err)
	}
	return events, nil
}

func (s *Store) ReadAll(ctx context.Context, afterPosition int64, limit int) ([]eventstore.RecordedEvent, error) {
	return s.readAll(ctx, afterPosition, limit, wholeFromFile)
}

// readAllLive is ReadAll for subscriptions: what the writer committed last
// comes from memory (recentEvents). ReadAll itself always reads the file,
// so what verifies the log (the hash chain's checks) reads what is stored.
func (s *Store) readAllLive(ctx context.Context, afterPosition int64, limit int) ([]eventstore.RecordedEvent, error) {
	return s.readAll(ctx, afterPosition, limit, recentFirst)
}

// ReadAllBodies implements eventstore.BodyReader: ReadAll from the file,
// without the events' Metadata.
func (s *Store) ReadAllBodies(ctx context.Context, afterPosition int64, limit int) ([]eventstore.RecordedEvent, error) {
	return s.readAll(ctx, afterPosition, limit, bodiesFromFile)
}

// allRead is how readAll reads the log.
type allRead int

const (
	wholeFromFile  allRead = iota // ReadAll
	recentFirst                   // readAllLive
	bodiesFromFile                // ReadAllBodies
)

func (s *Store) readAll(ctx context.Context, afterPosition int64, limit int, how allRead) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.CheckRead(ctx, afterPosition, limit); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	if how == recentFirst {
		if events, ok := s.recent.read(afterPosition, limit); ok {
			return events, nil
		}
	}
	statement, withMetadata := s.reads.all, true
	if how == bodiesFromFile {
		statement, withMetadata = s.reads.bodies, false
	}
	rows, err := statement.QueryContext(bounded(ctx), afterPosition, limit)
	if err != nil {
		return nil, readError(ctx, "read all", err)
	}
	events, err := scan(rows, limit, withMetadata)
	if err != nil {
		return nil, readError(ctx, "read all", err)
	}
	return events, nil
}

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
	// The positions go as one JSON array, so that one prepared statement
	// serves any number of them.
	list := make([]byte, 0, 8*len(positions))
	list = append(list, '[')
	for i, p := range positions {
		if i > 0 {
			list = append(list, ',')
		}
		list = strconv.AppendInt(list, p, 10)
	}
	list = append(list, ']')
	rows, err := s.reads.positions.QueryContext(bounded(ctx), string(list))
	if err != nil {
		return nil, readError(ctx, "read positions", err)
	}
	events, err := scanEvents(rows, len(positions))
	if err != nil {
		return nil, readError(ctx, "read positions", err)
	}
	return events, nil
}

// bounded is the context a read's query runs under: the caller's, without
// its cancellation. The reads are short (a stream, a page of the log, the
// head) and were checked against ctx before they start; with a cancellable
// context, database/sql and the driver each start a goroutine to watch it
// for every query: in one run, a stream's empty tail took 25.6 us to read
// with it and 14.7 us without, a ten-event stream 113 and 81 us
// (BenchmarkReadStream, docs/performance.md).
func bounded(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// Subscribe reads what is stored, then waits for the writer's signal after
// each commit. Close wakes it and it ends with ErrClosed.
func (s *Store) Subscribe(ctx context.Context, afterPosition int64, handle func(eventstore.RecordedEvent) error) error {
	return eventstore.CatchUp(ctx, s.readAllLive, s.signal.Wait, afterPosition, handle)
}

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
	err := s.reads.head.QueryRowContext(bounded(ctx)).Scan(&head)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, readError(ctx, "head position", err)
	}
	return head, nil
}

// Close stops taking appends, lets the writer finish every append already
// queued, ends subscriptions and closes the database. Later calls on the
// store return ErrClosed; a second Close returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.requests)
	s.mu.Unlock()

	<-s.writerDone
	s.signal.Broadcast()
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.reads.stream, s.reads.all, s.reads.bodies, s.reads.head, s.reads.positions} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.writer != nil {
		errs = append(errs, s.writer.close())
	}
	for _, db := range []*sql.DB{s.readDB, s.writeDB} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// readError prefers the context's error, so a cancelled read says so
// rather than surfacing the driver's interrupt message.
func readError(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}
