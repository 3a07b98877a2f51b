package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/careflow/careflow/projections/pgsql"
)

// ErrLocked: another process runs the projections of this database.
var ErrLocked = errors.New("projections: another process holds the read-model database")

// Lock takes the process-wide lock of the read-model database at path: the
// one process that holds it runs the projections. Two runners applying the
// same log to the same tables would apply events twice, and the guard in
// DB only covers one process. The lock is an flock on path+".lock", so the
// kernel releases it when the process dies, however it dies.
func Lock(path string) (release func() error, err error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("projections: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("projections: lock %s: %w", path, err)
	}
	return f.Close, nil // closing the file releases the lock
}

// Keys of the PostgreSQL advisory locks the read models take. Advisory
// locks are per database, so read models in another database of the same
// server do not contend.
const (
	// runnerLockKey is held, for its session, by the process that runs the
	// projections (DB.Lock).
	runnerLockKey int64 = 0x63665f70726f6a00 // "cf_proj\0"
	// schemaLockKey serialises CREATE TABLE IF NOT EXISTS between
	// processes starting at once, for one transaction.
	schemaLockKey int64 = 0x63665f736368656d // "cf_schem"
)

// Lock takes the lock that admits one process to run the projections of
// this database (see the function Lock). On SQLite it is the flock beside
// the file. On PostgreSQL it is a session advisory lock held by a
// connection of its own: the server releases it when that connection ends,
// however the process dies. release unlocks and closes that connection.
func (db *DB) Lock(ctx context.Context) (release func() error, err error) {
	if db.url == "" {
		return Lock(db.path)
	}
	pool, err := pgsql.Open(db.url)
	if err != nil {
		return nil, fmt.Errorf("projections: lock: %w", err)
	}
	pool.SetMaxOpenConns(1)
	conn, err := pool.Conn(ctx)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("projections: lock: %w", err), pool.Close())
	}
	var locked bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, runnerLockKey).Scan(&locked); err != nil {
		return nil, errors.Join(fmt.Errorf("projections: lock: %w", err), conn.Close(), pool.Close())
	}
	if !locked {
		return nil, errors.Join(ErrLocked, conn.Close(), pool.Close())
	}
	return func() error {
		// Closing the session would release the lock too; unlocking first
		// makes it free at once even if the pool kept the connection.
		_, unlockErr := conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, runnerLockKey)
		return errors.Join(unlockErr, conn.Close(), pool.Close())
	}, nil
}

// Requests let a tool ask the process that runs the projections to rebuild
// one, without stopping the service: the tool writes a row, the service
// picks it up, and the tool waits for the row to be marked done.
const requestsSchema = `CREATE TABLE IF NOT EXISTS projection_requests (
	id           %s,
	kind         TEXT NOT NULL,
	name         TEXT NOT NULL,
	requested_at BIGINT NOT NULL,
	done_at      BIGINT NOT NULL DEFAULT 0,
	error        TEXT NOT NULL DEFAULT ''
)`

// requestsID is the id column of projection_requests: ids are never
// reused, so a tool waiting on one never reads another's outcome.
func (db *DB) requestsID() string {
	if db.url != "" {
		return "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	return "INTEGER PRIMARY KEY AUTOINCREMENT"
}

const requestKindRebuild = "rebuild"

func (db *DB) ensureRequests(ctx context.Context) error {
	err := inTx(ctx, db.write, func(tx *sql.Tx) error {
		if db.url != "" {
			// See openPostgres: concurrent CREATE IF NOT EXISTS can fail.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, schemaLockKey); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf(requestsSchema, db.requestsID()))
		return err
	})
	if err != nil {
		return fmt.Errorf("projections: create projection_requests: %w", err)
	}
	return nil
}

// RequestRebuild records a request to rebuild name (or AllProjections) for
// the process running the projections, and returns its id.
func (db *DB) RequestRebuild(ctx context.Context, name string) (int64, error) {
	if err := db.ensureRequests(ctx); err != nil {
		return 0, err
	}
	// RETURNING rather than LastInsertId, which pgx does not implement.
	var id int64
	err := db.write.QueryRowContext(ctx,
		`INSERT INTO projection_requests (kind, name, requested_at) VALUES (?, ?, ?) RETURNING id`,
		requestKindRebuild, name, time.Now().UnixNano()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("projections: request rebuild of %s: %w", name, err)
	}
	return id, nil
}

// WaitRequest polls until request id is done and returns the error it
// ended with, if any, or ctx's error.
func (db *DB) WaitRequest(ctx context.Context, id int64, poll time.Duration) error {
	for {
		var doneAt int64
		var msg string
		err := db.write.QueryRowContext(ctx,
			`SELECT done_at, error FROM projection_requests WHERE id = ?`, id).Scan(&doneAt, &msg)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("projections: no request %d", id)
		}
		if err != nil {
			return fmt.Errorf("projections: read request %d: %w", id, err)
		}
		if doneAt != 0 {
			if msg != "" {
				return errors.New(msg)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// ServeRequests carries out the requests tools leave in the database, one
// at a time, until ctx ends. Run must be running.
func (r *Runner) ServeRequests(ctx context.Context, poll time.Duration) error {
	if err := r.db.ensureRequests(ctx); err != nil {
		return err
	}
	for {
		if err := r.serveNextRequest(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("projection request failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

func (r *Runner) serveNextRequest(ctx context.Context) error {
	var id int64
	var kind, name string
	err := r.db.write.QueryRowContext(ctx,
		`SELECT id, kind, name FROM projection_requests WHERE done_at = 0 ORDER BY id LIMIT 1`).Scan(&id, &kind, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("projections: read requests: %w", err)
	}
	var result error
	switch kind {
	case requestKindRebuild:
		r.logger.Info("rebuilding projection on request", "projection", name, "request", id)
		result = r.Rebuild(ctx, name)
	default:
		result = fmt.Errorf("projections: unknown request kind %q", kind)
	}
	if ctx.Err() != nil {
		return ctx.Err() // leave it pending: the next start serves it
	}
	msg := ""
	if result != nil {
		msg = result.Error()
	}
	if _, err := r.db.write.ExecContext(ctx,
		`UPDATE projection_requests SET done_at = ?, error = ? WHERE id = ?`, time.Now().UnixNano(), msg, id); err != nil {
		return fmt.Errorf("projections: mark request %d done: %w", id, err)
	}
	return result
}
