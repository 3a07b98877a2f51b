package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/careflow/careflow/eventstore/sqlite"
	"github.com/careflow/careflow/projections/pgsql"
)

var (
	// ErrUnknownProjection: no projection of that name is registered.
	ErrUnknownProjection = errors.New("projections: unknown projection")
	// ErrNoTables: the projection's tables have not been created yet (the
	// runner creates them in Prepare or Run).
	ErrNoTables = errors.New("projections: projection has no tables yet")
	// ErrAlreadyRunning: another runner is running these projections.
	ErrAlreadyRunning = errors.New("projections: already running")
	// ErrNotRunning: the request needs Run to be running.
	ErrNotRunning = errors.New("projections: runner is not running")
)

// Queryer is what reads need: a *sql.DB, *sql.Tx or *sql.Conn.
type Queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Dialect holds what differs between the SQL databases read models can live
// in. The runner's own SQL is written with ? placeholders and portable types
// (TEXT, BIGINT) and passed through Rebind.
type Dialect interface {
	Name() string
	// Rebind turns a query written with ? placeholders into the dialect's.
	Rebind(query string) string
	// CreateTable adapts a projection's CREATE TABLE, written for SQLite
	// (it may end in WITHOUT ROWID), to the dialect.
	CreateTable(stmt string) string
	// Columns lists a table's columns in definition order and the columns
	// of its primary key in key order (empty when it has none).
	Columns(ctx context.Context, q Queryer, table string) (columns, key []string, err error)
}

type sqliteDialect struct{}

func (sqliteDialect) Name() string { return "sqlite" }

func (sqliteDialect) Rebind(query string) string { return query }

func (sqliteDialect) CreateTable(stmt string) string { return stmt }

func (sqliteDialect) Columns(ctx context.Context, q Queryer, table string) ([]string, []string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return nil, nil, fmt.Errorf("projections: columns of %s: %w", table, err)
	}
	defer rows.Close()
	var columns []string
	keyAt := map[int]string{}
	for rows.Next() {
		var name string
		var pk int
		if err := rows.Scan(&name, &pk); err != nil {
			return nil, nil, fmt.Errorf("projections: columns of %s: %w", table, err)
		}
		columns = append(columns, name)
		if pk > 0 {
			keyAt[pk] = name
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("projections: columns of %s: %w", table, err)
	}
	if len(columns) == 0 {
		return nil, nil, fmt.Errorf("projections: table %s does not exist", table)
	}
	key := make([]string, 0, len(keyAt))
	for i := 1; i <= len(keyAt); i++ {
		key = append(key, keyAt[i])
	}
	return columns, key, nil
}

// postgresDialect is PostgreSQL through pgsql.Open, whose connections
// rebind ? placeholders themselves; Rebind does the same for callers that
// want the final text.
type postgresDialect struct{}

func (postgresDialect) Name() string { return "postgres" }

func (postgresDialect) Rebind(query string) string { return pgsql.Rebind(query) }

func (postgresDialect) CreateTable(stmt string) string { return pgsql.TrimTableOptions(stmt) }

func (postgresDialect) Columns(ctx context.Context, q Queryer, table string) ([]string, []string, error) {
	// Unquoted names are folded to lower case, and read-model names are
	// lower case already (physicalPattern).
	columns, err := queryStrings(ctx, q, `SELECT column_name::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
	if err != nil {
		return nil, nil, fmt.Errorf("projections: columns of %s: %w", table, err)
	}
	if len(columns) == 0 {
		return nil, nil, fmt.Errorf("projections: table %s does not exist", table)
	}
	key, err := queryStrings(ctx, q, `SELECT k.column_name::text FROM information_schema.table_constraints c
		JOIN information_schema.key_column_usage k
		  ON k.constraint_schema = c.constraint_schema AND k.constraint_name = c.constraint_name
		 AND k.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND c.table_name = $1 AND c.constraint_type = 'PRIMARY KEY'
		ORDER BY k.ordinal_position`, table)
	if err != nil {
		return nil, nil, fmt.Errorf("projections: primary key of %s: %w", table, err)
	}
	return columns, key, nil
}

func queryStrings(ctx context.Context, q Queryer, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// readConns is the size of the read pool. Reads never wait for the writer
// in WAL mode; a handful of connections serve an API process well.
const readConns = 4

// DB is the read-model database: one writer connection, used by the runner
// for every projection's transactions, and a pool of read-only connections
// for readers. The SQLite implementation keeps it in a file of its own so
// projection writes never contend with the event store's writer. On
// PostgreSQL the writer is a small pool (projections commit in parallel)
// and the tables live in the connection's current schema.
//
// Readers resolve a projection's current physical table names through Read
// (or Tables), so a rebuild can fill the next generation while the current
// one keeps answering.
type DB struct {
	path    string // SQLite file, or "" on PostgreSQL
	url     string // PostgreSQL URL, or ""
	dialect Dialect
	write   *sql.DB
	read    *sql.DB
	// checkpoints copies the SQLite writer's WAL back into the file (see
	// checkpointer); nil on PostgreSQL.
	checkpoints *checkpointer
	// turns orders the batches of the projections on SQLite's single
	// writer (see takeTurn); nil on PostgreSQL.
	turns chan struct{}

	mu         sync.Mutex
	registered map[string]*registration
}

// registration is what the DB knows about one projection.
type registration struct {
	name       string
	tables     []string
	projection Projection
	// swap is held shared by Read while it uses the current tables and
	// exclusively while a rebuild swaps generations and drops the old ones.
	swap sync.RWMutex
	// active is the active generation, 0 until it was read or created.
	active atomic.Int64
	// claimed is true while a runner runs (or prepares) the projection.
	claimed bool
}

// OpenDB opens the read-model database at location: a PostgreSQL URL
// (postgres://…, see openPostgres), or else the path of a SQLite file,
// created if needed: WAL, synchronous=NORMAL, one writer connection and a
// read-only pool.
func OpenDB(ctx context.Context, location string) (*DB, error) {
	if pgsql.IsURL(location) {
		return openPostgres(ctx, location)
	}
	path := location
	db := &DB{path: path, dialect: sqliteDialect{}, turns: make(chan struct{}, 1), registered: map[string]*registration{}}
	if err := db.open(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// Read models are derived data, so synchronous=NORMAL is enough (ADR 0004):
// in WAL mode a commit survives a process crash; a power loss may drop the
// last transactions, but rows and checkpoint drop together and are applied
// again from the event store, which stays synchronous=FULL. The files are
// created owner-only (they hold sealed PHI) and their connections cache
// their statements (sqlite.OpenFile).
func (db *DB) open(ctx context.Context) error {
	var err error
	if db.write, err = sqlite.OpenFile(ctx, db.path, sqlite.FileOptions{Synchronous: "NORMAL", BackgroundCheckpoints: true}); err != nil {
		return fmt.Errorf("projections: %w", err)
	}
	if err := checkSQLitePragmas(ctx, db.write); err != nil {
		return err
	}
	if _, err := db.write.ExecContext(ctx, stateSchema); err != nil {
		return fmt.Errorf("projections: create %s: %w", stateTable, err)
	}
	if db.read, err = sqlite.OpenFile(ctx, db.path, sqlite.FileOptions{Synchronous: "NORMAL", QueryOnly: true, MaxConns: readConns}); err != nil {
		return fmt.Errorf("projections: open for reading: %w", err)
	}
	conn, err := sqlite.OpenFile(ctx, db.path, sqlite.FileOptions{Synchronous: "NORMAL"})
	if err != nil {
		return fmt.Errorf("projections: open for checkpoints: %w", err)
	}
	db.checkpoints = startCheckpoints(conn, checkpointInterval, db.takeTurn)
	return nil
}

// checkpointInterval is how often the read-model file's WAL is copied back
// into the file. The writer's commits leave that to this connection
// (sqlite's BackgroundCheckpoints): checkpointing in the commits was a
// tenth of the writer's time in a rebuild, and the writer is the
// projections' one bottleneck on SQLite, while a checkpoint from another
// connection runs beside it on another core (docs/performance.md, session
// 8). A WAL grown to restartFrames is made to start over (see
// checkpointer). Once a second, not every 100 ms as first: a page the
// writer changes again and again (a B-tree's inner pages, the last leaf)
// is copied once per pass, and the passes of a rebuild took 1.7 CPU-s
// instead of 0.8 (session 11), on a machine whose two cores the writer
// does not have to itself.
const checkpointInterval = time.Second

// restartFrames is the WAL length (in pages, 64 MiB) at which the
// checkpointer, having copied what it could, makes the WAL start over: a
// PASSIVE checkpoint never lets it start over while the writer keeps
// committing. A quarter of the length at which the writer's own commits
// would checkpoint (sqlite.BackgroundCheckpointPages), so that in a
// rebuild, whose WAL grows by about that much a second, they never do.
const restartFrames = sqlite.BackgroundCheckpointPages / 4

// checkpointer checkpoints on a connection of its own until stopped, a
// pass every interval (counted from the end of the last one, so that slow
// passes do not follow each other without a break). A pass is PASSIVE: it
// never waits for the writer or the readers and copies what it can. When
// the WAL has grown to restartFrames it then runs a RESTART checkpoint in
// a turn at the writer (DB.takeTurn), so that no commit runs meanwhile:
// it copies the last frames and lets the WAL start over.
type checkpointer struct {
	conn *sql.DB
	turn func(context.Context) (func(), error)
	stop context.CancelFunc
	done chan struct{}
	once sync.Once
	err  error
}

func startCheckpoints(conn *sql.DB, every time.Duration, turn func(context.Context) (func(), error)) *checkpointer {
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{conn: conn, turn: turn, stop: stop, done: make(chan struct{})}
	go c.loop(ctx, every)
	return c
}

func (c *checkpointer) loop(ctx context.Context, every time.Duration) {
	defer close(c.done)
	wait := time.NewTimer(every)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
		// A failure is retried at the next pass; the WAL keeps every
		// commit meanwhile.
		_, _ = c.pass(ctx)
		wait.Reset(every)
	}
}

// pass checkpoints once, and makes a long WAL start over, and returns the
// WAL's length in frames as the PASSIVE checkpoint found it.
func (c *checkpointer) pass(ctx context.Context) (frames int, err error) {
	frames, err = c.checkpoint(ctx, "PASSIVE")
	if err != nil || frames < restartFrames {
		return frames, err
	}
	endTurn, err := c.turn(ctx)
	if err != nil {
		return frames, err
	}
	defer endTurn()
	_, err = c.checkpoint(ctx, "RESTART")
	return frames, err
}

// checkpoint runs PRAGMA wal_checkpoint(mode) and returns the WAL's length
// in frames.
func (c *checkpointer) checkpoint(ctx context.Context, mode string) (frames int, err error) {
	var busy, copied int
	if err := c.conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &frames, &copied); err != nil {
		return 0, fmt.Errorf("projections: %s checkpoint: %w", mode, err)
	}
	return frames, nil
}

// close stops the loop, checkpoints what is left and closes the
// connection, once.
func (c *checkpointer) close() error {
	c.once.Do(func() {
		c.stop()
		<-c.done
		_, err := c.checkpoint(context.Background(), "PASSIVE")
		c.err = errors.Join(err, c.conn.Close())
	})
	return c.err
}

// takeTurn waits until the caller may commit a batch, and returns the
// function that ends its turn. On SQLite the projections' batches go one
// after another through the single writer connection anyway; database/sql
// hands that connection to any of its waiters, so one projection could get
// many batches ahead of the others and stop sharing the runner's reads of
// the log. Turns are given in arrival order instead (a channel serves the
// senders waiting on it first in, first out): the projections advance
// batch by batch in turn. PostgreSQL commits in parallel: no turns.
func (db *DB) takeTurn(ctx context.Context) (func(), error) {
	if db.turns == nil {
		return func() {}, nil
	}
	select {
	case db.turns <- struct{}{}:
		return func() { <-db.turns }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// postgresWriteConns bounds the writer pool on PostgreSQL: each projection
// holds one connection for a batch, and a few in parallel keep a rebuild of
// several projections from queueing behind one another.
const postgresWriteConns = 4

// openPostgres opens the read models in the PostgreSQL database at url.
// Statements keep their ? placeholders: pgsql's connections rebind them.
func openPostgres(ctx context.Context, url string) (*DB, error) {
	db := &DB{url: url, dialect: postgresDialect{}, registered: map[string]*registration{}}
	var err error
	if db.write, err = pgsql.Open(url); err != nil {
		return nil, fmt.Errorf("projections: %w", err)
	}
	db.write.SetMaxOpenConns(postgresWriteConns)
	db.write.SetMaxIdleConns(postgresWriteConns)
	if db.read, err = pgsql.Open(url); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("projections: %w", err)
	}
	db.read.SetMaxOpenConns(2 * readConns)
	db.read.SetMaxIdleConns(2 * readConns)
	if err := db.write.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("projections: connect to the PostgreSQL read-model database: %w", err)
	}
	// Two processes starting at once both run CREATE TABLE IF NOT EXISTS;
	// PostgreSQL can fail one of them on the catalog's unique index, so
	// the creation is serialised by a transaction-scoped advisory lock.
	if err := inTx(ctx, db.write, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLockKey); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, stateSchema)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("projections: create %s: %w", stateTable, err)
	}
	return db, nil
}

// beginBatch begins the transaction of a batch at the writer and returns
// the context its Apply calls get (with the batch's statement cache, see
// stmt.go) and the function to call once the transaction has ended. On
// SQLite the transaction holds its connection as a sql.Conn, so that Exec
// can run on the driver connection directly (directExec).
func (db *DB) beginBatch(ctx context.Context) (tx *sql.Tx, applyCtx context.Context, end func() error, err error) {
	if db.dialect.Name() != "sqlite" {
		if tx, err = db.write.BeginTx(ctx, nil); err != nil {
			return nil, nil, nil, fmt.Errorf("begin: %w", err)
		}
		return tx, withStmtCache(ctx, tx), func() error { return nil }, nil
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("begin: %w", err)
	}
	if tx, err = conn.BeginTx(ctx, nil); err != nil {
		_ = conn.Close()
		return nil, nil, nil, fmt.Errorf("begin: %w", err)
	}
	applyCtx, endDirect := withDirectExec(ctx, tx, conn)
	return tx, applyCtx, func() error {
		// Rolling back an ended transaction does nothing: end is also
		// safe on a path that forgot to end it.
		_ = tx.Rollback()
		return errors.Join(endDirect(), conn.Close())
	}, nil
}

// inTx runs fn in a transaction on db and commits it.
func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// checkSQLitePragmas makes sure the durability settings took: journal_mode
// can silently stay "delete" on a file system without shared memory.
func checkSQLitePragmas(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("projections: read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("projections: journal mode is %q, want wal", mode)
	}
	var syncLevel int
	if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&syncLevel); err != nil {
		return fmt.Errorf("projections: read synchronous: %w", err)
	}
	if syncLevel < 1 {
		return fmt.Errorf("projections: synchronous is %d, want NORMAL (1) or more", syncLevel)
	}
	return nil
}

// Close closes both connection pools. Stop the runner first.
func (db *DB) Close() error {
	var errs []error
	if db.checkpoints != nil {
		errs = append(errs, db.checkpoints.close())
	}
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		errs = append(errs, db.write.Close())
	}
	return errors.Join(errs...)
}

// Dialect is the SQL dialect of this database.
func (db *DB) Dialect() Dialect { return db.dialect }

// Register makes a projection's tables known to the DB so readers can
// resolve them. NewRunner registers its projections; a process that only
// reads registers them itself. Registering the same name again with the
// same tables is allowed.
func (db *DB) Register(p Projection) error {
	if err := validateProjection(p); err != nil {
		return err
	}
	_, err := db.register(p)
	return err
}

// Projection returns the projection registered under name (the first one
// registered), so a read model's query functions can use what it was made
// with, such as the Sealer that opens its PHI columns.
func (db *DB) Projection(name string) (Projection, error) {
	reg, err := db.registration(name)
	if err != nil {
		return nil, err
	}
	return reg.projection, nil
}

func (db *DB) register(p Projection) (*registration, error) {
	name, tables := p.Name(), p.Tables()
	db.mu.Lock()
	defer db.mu.Unlock()
	if reg, ok := db.registered[name]; ok {
		if !slices.Equal(reg.tables, tables) {
			return nil, fmt.Errorf("projections: %s is already registered with tables %v, not %v", name, reg.tables, tables)
		}
		return reg, nil
	}
	for other, reg := range db.registered {
		for _, table := range tables {
			if slices.Contains(reg.tables, table) {
				return nil, fmt.Errorf("projections: table %q of %s is already owned by %s", table, name, other)
			}
		}
	}
	reg := &registration{name: name, tables: slices.Clone(tables), projection: p}
	db.registered[name] = reg
	return reg, nil
}

func (db *DB) registration(name string) (*registration, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	reg, ok := db.registered[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownProjection, name)
	}
	return reg, nil
}

// claim marks projections as run by one runner, so two runners never write
// the same projection through one DB.
func (db *DB) claim(regs []*registration) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, reg := range regs {
		if reg.claimed {
			return fmt.Errorf("%w: %s is run by another runner", ErrAlreadyRunning, reg.name)
		}
	}
	for _, reg := range regs {
		reg.claimed = true
	}
	return nil
}

func (db *DB) release(regs []*registration) {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, reg := range regs {
		reg.claimed = false
	}
}

// Tables returns the physical names of the projection's active generation.
// A rebuild may drop them right after: reads that must not race a swap go
// through Read.
func (db *DB) Tables(ctx context.Context, projection string) (TableNames, error) {
	reg, err := db.registration(projection)
	if err != nil {
		return TableNames{}, err
	}
	return db.activeTables(ctx, reg)
}

func (db *DB) activeTables(ctx context.Context, reg *registration) (TableNames, error) {
	generation := reg.active.Load()
	if generation == 0 {
		st, found, err := loadState(ctx, db.read, db.dialect, reg.name)
		if err != nil {
			return TableNames{}, err
		}
		if !found {
			return TableNames{}, fmt.Errorf("%w: %s", ErrNoTables, reg.name)
		}
		generation = st.generation
		reg.active.CompareAndSwap(0, generation)
	}
	return newTableNames(reg.name, generation, reg.tables), nil
}

// Read runs fn in a read transaction on the read pool with the projection's
// active table names. A rebuild does not swap generations while fn runs, so
// the tables fn reads exist until it returns. fn must not call Read again
// (a waiting swap would deadlock it) and should be short: a swap waits for it.
func (db *DB) Read(ctx context.Context, projection string, fn func(tx *sql.Tx, t TableNames) error) error {
	reg, err := db.registration(projection)
	if err != nil {
		return err
	}
	reg.swap.RLock()
	defer reg.swap.RUnlock()
	t, err := db.activeTables(ctx, reg)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The read is short and runs to its end: a transaction begun with a
	// cancellable context has database/sql watch it from a goroutine, and
	// so does every query in it (the views run theirs without it too).
	tx, err := db.read.BeginTx(context.WithoutCancel(ctx), db.readOptions())
	if err != nil {
		return fmt.Errorf("projections: begin read of %s: %w", projection, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx, t); err != nil {
		return err
	}
	return tx.Commit()
}

// Checkpoint returns the position up to which the generation t names
// (a Read's tables) has applied the log, as tx (that Read's transaction)
// sees it: the tables hold the effects of the events up to it and of none
// after. A read that joins the tables with the event store uses it to show
// the same moment from both.
func (db *DB) Checkpoint(ctx context.Context, tx *sql.Tx, t TableNames) (int64, error) {
	st, found, err := loadState(ctx, tx, db.dialect, t.Projection())
	if err != nil {
		return 0, err
	}
	switch {
	case !found:
		return 0, fmt.Errorf("%w: %s", ErrNoTables, t.Projection())
	case st.generation == t.Generation():
		return st.position, nil
	case st.pendingGeneration == t.Generation():
		return st.pendingPosition, nil
	}
	return 0, fmt.Errorf("projections: %s: generation %d is neither active nor being rebuilt", t.Projection(), t.Generation())
}

// readOptions are the options of Read's transactions. A SQLite read
// transaction sees one snapshot from its first statement on; PostgreSQL
// needs REPEATABLE READ for that (READ COMMITTED takes a snapshot per
// statement, so the parts of one view could come from different commits).
func (db *DB) readOptions() *sql.TxOptions {
	if db.url == "" {
		return nil
	}
	return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
}
