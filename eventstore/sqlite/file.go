package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// FileOptions say how OpenFile opens one of careflow's SQLite files (the
// event store opens its own the same way). The zero value is the durable
// default: synchronous=FULL, a 5 s busy timeout, one connection.
type FileOptions struct {
	// Synchronous is "FULL" (the default: a commit survives power loss)
	// or "NORMAL" (a commit survives a process crash; for data that can be
	// rebuilt).
	Synchronous string
	// BusyTimeout is how long a connection waits for another's lock.
	BusyTimeout time.Duration
	// MaxConns is the connection pool size (default 1).
	MaxConns int
	// SecureDelete overwrites deleted content in the file (for data that
	// must be erasable, such as destroyed keys).
	SecureDelete bool
	// ForeignKeys enforces REFERENCES clauses.
	ForeignKeys bool
	// QueryOnly refuses every write on these connections (a read pool).
	QueryOnly bool
	// DeferredTx begins transactions without taking the write lock; by
	// default they take it at BEGIN (so a busy writer makes them wait there
	// instead of failing half way).
	DeferredTx bool
	// BackgroundCheckpoints is for a file whose owner runs checkpoints
	// itself, from another connection (PRAGMA wal_checkpoint), so that the
	// writer does not pay for them. A commit then checkpoints only once the
	// WAL passes BackgroundCheckpointPages (wal_autocheckpoint; SQLite's
	// default is 1,000), and such a checkpoint gives up at once while the
	// owner's runs: the owner must also make a long WAL start over (a
	// RESTART checkpoint while the writer pauses) well before that, or it
	// grows without bound under a writer that never pauses. A WAL that grew
	// past 128 MiB is cut back to that when it starts over
	// (journal_size_limit).
	BackgroundCheckpoints bool
}

func (o *FileOptions) setDefaults() {
	if o.Synchronous == "" {
		o.Synchronous = "FULL"
	}
	if o.BusyTimeout == 0 {
		o.BusyTimeout = defaultBusyTimeout
	}
	if o.MaxConns == 0 {
		o.MaxConns = 1
	}
}

// Validate reports what is wrong with the options (after defaults).
func (o FileOptions) Validate() error {
	var errs []error
	if o.Synchronous != "FULL" && o.Synchronous != "NORMAL" {
		errs = append(errs, fmt.Errorf("sqlite: Synchronous %q is neither FULL nor NORMAL", o.Synchronous))
	}
	if o.BusyTimeout < 0 {
		errs = append(errs, fmt.Errorf("sqlite: BusyTimeout %s must not be negative", o.BusyTimeout))
	}
	if o.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("sqlite: MaxConns %d must be at least 1", o.MaxConns))
	}
	return errors.Join(errs...)
}

// checkPath refuses what is not a plain file path: ":memory:", URIs and
// paths with '?' or '#' would bypass the pragmas given in the DSN.
func checkPath(path string) error {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return fmt.Errorf("sqlite: database path %q must be a plain file path", path)
	}
	return nil
}

// CreateFile makes path's parent directories (0700) and, if it is missing,
// an empty database file readable by its owner only: careflow's files hold
// PHI or what protects it. SQLite gives the -wal and -shm files the same
// mode.
func CreateFile(path string) error {
	if err := checkPath(path); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sqlite: create directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return f.Close()
}

// BackgroundCheckpointPages is the WAL length (in pages) past which a
// commit on a file opened with BackgroundCheckpoints checkpoints: a
// backstop for an owner whose passes fall behind. 65,536 pages (256 MiB),
// four times the length at which careflow's owner (the projections'
// checkpointer) makes the WAL start over: when both were 16,384, a
// rebuild's WAL passed that between two of the owner's passes often enough
// for the writer to spend 0.6 CPU-s of its turns copying it (and 0.4 at
// 4,096; docs/performance.md, sessions 11 and 12).
const BackgroundCheckpointPages = 65536

// backgroundJournalSizeLimit is what a grown WAL of such a file is cut
// back to when it starts over: 128 MiB, more than careflow's owner lets it
// grow in a rebuild (about twice its 64 MiB restart length), so that the
// WAL keeps its disk blocks from one start to the next. Cut back to 64 MiB,
// a WAL that had passed it grew again into new blocks each time, and on
// ext4 each checkpoint's fsync then also waited for those blocks to be
// written: the in-turn restart took 150 to 185 ms instead of about 120,
// and live lag p99 doubled (docs/performance.md, session 12).
const backgroundJournalSizeLimit = 128 << 20

// fileDSN is the driver's connection string for path with o's pragmas.
func fileDSN(path string, o FileOptions) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+o.Synchronous+")")
	if o.ForeignKeys {
		q.Add("_pragma", "foreign_keys(ON)")
	}
	if o.SecureDelete {
		q.Add("_pragma", "secure_delete(ON)")
	}
	if o.BackgroundCheckpoints {
		q.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(BackgroundCheckpointPages)+")")
		q.Add("_pragma", "journal_size_limit("+strconv.Itoa(backgroundJournalSizeLimit)+")")
	}
	if o.QueryOnly {
		q.Add("_pragma", "query_only(ON)")
	} else if !o.DeferredTx {
		q.Set("_txlock", "immediate")
	}
	return path + "?" + q.Encode()
}

// OpenFile opens (creating it owner-only if needed) the SQLite file at
// path in WAL mode with o's settings, and checks that WAL took effect.
func OpenFile(ctx context.Context, path string, o FileOptions) (*sql.DB, error) {
	o.setDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := CreateFile(path); err != nil {
		return nil, err
	}
	db, err := openCaching(fileDSN(path, o))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(o.MaxConns)
	db.SetMaxIdleConns(o.MaxConns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open %s: %w", path, err), db.Close())
	}
	if mode != "wal" {
		return nil, errors.Join(fmt.Errorf("sqlite: %s: journal_mode is %q, want wal", path, mode), db.Close())
	}
	return db, nil
}
