package chain

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/careflow/careflow/eventstore/sqlite"
)

// sqliteSchema creates the chain's tables in the events' database file.
// Like the events, they refuse UPDATE and DELETE: the chain only grows.
var sqliteSchema = []string{
	`CREATE TABLE IF NOT EXISTS event_chain (
		position INTEGER PRIMARY KEY,
		event_id TEXT    NOT NULL,
		digest   BLOB    NOT NULL CHECK (length(digest) = 32),
		hash     BLOB    NOT NULL CHECK (length(hash) = 32)
	) STRICT`,
	`CREATE TRIGGER IF NOT EXISTS event_chain_no_update BEFORE UPDATE ON event_chain
		BEGIN SELECT RAISE(ABORT, 'the event chain is append-only'); END`,
	`CREATE TRIGGER IF NOT EXISTS event_chain_no_delete BEFORE DELETE ON event_chain
		BEGIN SELECT RAISE(ABORT, 'the event chain is append-only'); END`,
	// signed_at is unix microseconds UTC.
	`CREATE TABLE IF NOT EXISTS event_chain_checkpoints (
		id        INTEGER PRIMARY KEY AUTOINCREMENT,
		position  INTEGER NOT NULL,
		hash      BLOB    NOT NULL CHECK (length(hash) = 32),
		signed_at INTEGER NOT NULL,
		key_id    TEXT    NOT NULL,
		signature BLOB    NOT NULL
	) STRICT`,
	`CREATE TRIGGER IF NOT EXISTS event_chain_checkpoints_no_update BEFORE UPDATE ON event_chain_checkpoints
		BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END`,
	`CREATE TRIGGER IF NOT EXISTS event_chain_checkpoints_no_delete BEFORE DELETE ON event_chain_checkpoints
		BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END`,
}

// SQLiteTable keeps the chain in the SQLite database file of the events.
type SQLiteTable struct {
	db *sql.DB
}

var _ Table = (*SQLiteTable)(nil)

// OpenSQLite opens the chain tables in the SQLite event database at path
// (the sqlite store's Config.Path), creating them if needed. It uses
// connections of its own; SQLite's lock (busy_timeout) arbitrates between
// its short write transactions and the store's writer.
func OpenSQLite(ctx context.Context, path string) (*SQLiteTable, error) {
	db, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{BusyTimeout: 10 * time.Second, MaxConns: 2})
	if err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	t := &SQLiteTable{db: db}
	if err := t.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return t, nil
}

func (t *SQLiteTable) migrate(ctx context.Context) error {
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("chain: create tables: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range sqliteSchema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("chain: create tables: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("chain: create tables: %w", err)
	}
	return nil
}

const sqliteHeadSQL = `SELECT position, event_id, digest, hash FROM event_chain ORDER BY position DESC LIMIT 1`

type rowScanner interface{ Scan(dest ...any) error }

func scanSQLiteLink(row rowScanner) (Link, error) {
	var (
		l            Link
		id           string
		digest, hash []byte
	)
	if err := row.Scan(&l.Position, &id, &digest, &hash); err != nil {
		return Link{}, err
	}
	var err error
	if l.EventID, err = uuid.Parse(id); err != nil {
		return Link{}, fmt.Errorf("chain: link at %d: event id %q: %w", l.Position, id, err)
	}
	if len(digest) != len(l.Digest) || len(hash) != len(l.Hash) {
		return Link{}, fmt.Errorf("chain: link at %d: digest or hash is not 32 bytes", l.Position)
	}
	copy(l.Digest[:], digest)
	copy(l.Hash[:], hash)
	return l, nil
}

func (t *SQLiteTable) Head(ctx context.Context) (Link, error) {
	l, err := scanSQLiteLink(t.db.QueryRowContext(ctx, sqliteHeadSQL))
	if errors.Is(err, sql.ErrNoRows) {
		return GenesisLink, nil
	}
	if err != nil {
		return Link{}, fmt.Errorf("chain: read the head: %w", err)
	}
	return l, nil
}

func (t *SQLiteTable) Append(ctx context.Context, head Link, links []Link) error {
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("chain: append links: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	current, err := scanSQLiteLink(tx.QueryRowContext(ctx, sqliteHeadSQL))
	if errors.Is(err, sql.ErrNoRows) {
		current, err = GenesisLink, nil
	}
	if err != nil {
		return fmt.Errorf("chain: append links: read the head: %w", err)
	}
	if current != head {
		return ErrHeadMoved
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO event_chain (position, event_id, digest, hash) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("chain: append links: %w", err)
	}
	defer stmt.Close()
	for _, l := range links {
		if _, err := stmt.ExecContext(ctx, l.Position, l.EventID.String(), l.Digest[:], l.Hash[:]); err != nil {
			return fmt.Errorf("chain: append link at %d: %w", l.Position, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("chain: append links: %w", err)
	}
	return nil
}

func (t *SQLiteTable) Links(ctx context.Context, after int64, limit int) ([]Link, error) {
	rows, err := t.db.QueryContext(ctx,
		`SELECT position, event_id, digest, hash FROM event_chain WHERE position > ? ORDER BY position LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("chain: read links: %w", err)
	}
	defer rows.Close()
	var out []Link
	for rows.Next() {
		l, err := scanSQLiteLink(rows)
		if err != nil {
			return nil, fmt.Errorf("chain: read links: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chain: read links: %w", err)
	}
	return out, nil
}

func (t *SQLiteTable) SaveCheckpoint(ctx context.Context, c Checkpoint) error {
	_, err := t.db.ExecContext(ctx, `INSERT INTO event_chain_checkpoints (position, hash, signed_at, key_id, signature)
		VALUES (?, ?, ?, ?, ?)`, c.Position, c.Hash[:], c.SignedAt.UnixMicro(), c.KeyID, c.Signature)
	if err != nil {
		return fmt.Errorf("chain: save checkpoint: %w", err)
	}
	return nil
}

func (t *SQLiteTable) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	rows, err := t.db.QueryContext(ctx,
		`SELECT position, hash, signed_at, key_id, signature FROM event_chain_checkpoints ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("chain: read checkpoints: %w", err)
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var (
			c        Checkpoint
			hash     []byte
			signedAt int64
		)
		if err := rows.Scan(&c.Position, &hash, &signedAt, &c.KeyID, &c.Signature); err != nil {
			return nil, fmt.Errorf("chain: read checkpoints: %w", err)
		}
		if len(hash) != len(c.Hash) {
			return nil, fmt.Errorf("chain: checkpoint at %d: hash is not 32 bytes", c.Position)
		}
		copy(c.Hash[:], hash)
		c.SignedAt = time.UnixMicro(signedAt).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chain: read checkpoints: %w", err)
	}
	return out, nil
}

func (t *SQLiteTable) Close() error { return t.db.Close() }
