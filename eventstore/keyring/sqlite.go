package keyring

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/careflow/careflow/eventstore/sqlite"
)

// sqliteSchema is the keys table. Times are unix microseconds UTC;
// destroyed_at NULL while the key lives, wrapped NULL once it is destroyed.
const sqliteSchema = `CREATE TABLE IF NOT EXISTS careflow_data_keys (
	subject      TEXT    PRIMARY KEY,
	key_id       TEXT    NOT NULL,
	kek_id       TEXT    NOT NULL,
	wrapped      BLOB,
	created_at   INTEGER NOT NULL,
	destroyed_at INTEGER,
	CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
) STRICT`

// SQLiteBackend keeps the keys in a SQLite file of their own (not the
// events' file: the keys and the ciphertexts they open are backed up,
// restored and erased on their own terms).
type SQLiteBackend struct {
	db   *sql.DB
	path string
}

var _ Backend = (*SQLiteBackend)(nil)

// OpenSQLite opens (creating if needed) the keys database at path.
//
// Every connection runs with secure_delete=ON, so the bytes of a destroyed
// key are overwritten in the file rather than left in a free page, and
// Destroy checkpoints and truncates the WAL so no old copy stays there.
// WAL with synchronous=FULL: a key is on disk before Seal returns.
func OpenSQLite(ctx context.Context, path string) (*SQLiteBackend, error) {
	// Writers take the lock at BEGIN, so two processes creating keys wait
	// for each other (busy_timeout) instead of failing mid-transaction.
	db, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{BusyTimeout: 10 * time.Second, MaxConns: 4, SecureDelete: true})
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if _, err := db.ExecContext(ctx, sqliteSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("keyring: create the keys table in %s: %w", path, err)
	}
	return &SQLiteBackend{db: db, path: path}, nil
}

func microsToTime(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return time.UnixMicro(us.Int64).UTC()
}

func (s *SQLiteBackend) Get(ctx context.Context, subject string) (Record, error) {
	r := Record{Subject: subject}
	var created, destroyed sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT key_id, kek_id, wrapped, created_at, destroyed_at
		FROM careflow_data_keys WHERE subject = ?`, subject).Scan(&r.KeyID, &r.KEKID, &r.Wrapped, &created, &destroyed)
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, errNotFound
	}
	if err != nil {
		return Record{}, err
	}
	r.CreatedAt, r.DestroyedAt = microsToTime(created), microsToTime(destroyed)
	return r, nil
}

func (s *SQLiteBackend) InsertIfAbsent(ctx context.Context, r Record) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO careflow_data_keys (subject, key_id, kek_id, wrapped, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (subject) DO NOTHING`,
		r.Subject, r.KeyID, r.KEKID, r.Wrapped, r.CreatedAt.UnixMicro())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *SQLiteBackend) Destroy(ctx context.Context, subject string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO careflow_data_keys (subject, key_id, kek_id, wrapped, created_at, destroyed_at)
		VALUES (?, '', '', NULL, ?, ?)
		ON CONFLICT (subject) DO UPDATE SET wrapped = NULL, destroyed_at = excluded.destroyed_at
		WHERE careflow_data_keys.destroyed_at IS NULL`, subject, at.UnixMicro(), at.UnixMicro())
	if err != nil {
		return err
	}
	return s.truncateWAL(ctx)
}

// truncateWAL copies the WAL into the database and empties it: until then
// the WAL still holds the page as it was before the key was erased.
func (s *SQLiteBackend) truncateWAL(ctx context.Context) error {
	var busy, logFrames, checkpointed int
	if err := s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed); err != nil {
		return fmt.Errorf("checkpoint the WAL: %w", err)
	}
	if busy != 0 {
		// A reader in another process holds an old snapshot. The key is
		// erased from the database; the WAL keeps an old copy until the next
		// checkpoint, which Destroy (idempotent) retried will also run.
		return fmt.Errorf("checkpoint the WAL of %s: busy (a reader holds an old snapshot); the key is erased but its old copy stays in the WAL until the next checkpoint: retry", s.path)
	}
	return nil
}

func (s *SQLiteBackend) Rewrap(ctx context.Context, subject, oldKEKID, newKEKID string, wrapped []byte) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE careflow_data_keys SET kek_id = ?, wrapped = ?
		WHERE subject = ? AND kek_id = ? AND destroyed_at IS NULL`, newKEKID, wrapped, subject, oldKEKID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *SQLiteBackend) NotWrappedUnder(ctx context.Context, kekID, after string, limit int) ([]Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT subject, key_id, kek_id, wrapped, created_at
		FROM careflow_data_keys WHERE destroyed_at IS NULL AND kek_id <> ? AND subject > ?
		ORDER BY subject LIMIT ?`, kekID, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var (
			r       Record
			created sql.NullInt64
		)
		if err := rows.Scan(&r.Subject, &r.KeyID, &r.KEKID, &r.Wrapped, &created); err != nil {
			return nil, err
		}
		r.CreatedAt = microsToTime(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *SQLiteBackend) Counts(ctx context.Context) ([]KEKCount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT CASE WHEN destroyed_at IS NULL THEN kek_id ELSE '' END, destroyed_at IS NOT NULL, COUNT(*)
		FROM careflow_data_keys GROUP BY 1, 2`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KEKCount
	for rows.Next() {
		var c KEKCount
		if err := rows.Scan(&c.KEKID, &c.Destroyed, &c.Keys); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sortCounts(out)
	return out, nil
}

func (s *SQLiteBackend) Close() error { return s.db.Close() }
