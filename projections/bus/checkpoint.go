package bus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Checkpoints remember how far a named relay got in the log. Save is only
// ever called after the event at position was published.
type Checkpoints interface {
	// Load returns the saved position of name, 0 if it never saved one.
	Load(ctx context.Context, name string) (int64, error)
	// Save durably records that name has published everything up to and
	// including position.
	Save(ctx context.Context, name string, position int64) error
}

// SQLCheckpoints keeps checkpoints in a table of a SQLite or PostgreSQL
// database.
type SQLCheckpoints struct {
	db      *sql.DB
	dialect Dialect
	now     func() time.Time
	load    string
	save    string
}

var _ Checkpoints = (*SQLCheckpoints)(nil)

// NewSQLCheckpoints creates the checkpoint table in db if missing. now
// stamps updated_at; nil means time.Now.
func NewSQLCheckpoints(ctx context.Context, db *sql.DB, dialect Dialect, now func() time.Time) (*SQLCheckpoints, error) {
	if err := dialect.validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	ddl := `CREATE TABLE IF NOT EXISTS bus_relay_checkpoints (
		name       TEXT    NOT NULL PRIMARY KEY,
		position   INTEGER NOT NULL CHECK (position >= 0),
		updated_at INTEGER NOT NULL
	)`
	if dialect == SQLite {
		ddl += ` STRICT`
	} else {
		ddl = `CREATE TABLE IF NOT EXISTS bus_relay_checkpoints (
		name       TEXT   NOT NULL PRIMARY KEY,
		position   BIGINT NOT NULL CHECK (position >= 0),
		updated_at BIGINT NOT NULL
	)`
	}
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		return nil, fmt.Errorf("bus: create checkpoint table: %w", err)
	}
	return &SQLCheckpoints{
		db:      db,
		dialect: dialect,
		now:     now,
		load:    dialect.bind(`SELECT position FROM bus_relay_checkpoints WHERE name = ?`),
		// A checkpoint never moves back: a stale writer cannot undo progress.
		save: dialect.bind(`INSERT INTO bus_relay_checkpoints (name, position, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
			WHERE excluded.position >= bus_relay_checkpoints.position`),
	}, nil
}

// Load implements Checkpoints.
func (c *SQLCheckpoints) Load(ctx context.Context, name string) (int64, error) {
	var position int64
	err := c.db.QueryRowContext(ctx, c.load, name).Scan(&position)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("bus: load checkpoint %q: %w", name, err)
	}
	return position, nil
}

// Save implements Checkpoints.
func (c *SQLCheckpoints) Save(ctx context.Context, name string, position int64) error {
	if position < 0 {
		return fmt.Errorf("bus: checkpoint %q: position %d is negative", name, position)
	}
	if _, err := c.db.ExecContext(ctx, c.save, name, position, c.now().UnixNano()); err != nil {
		return fmt.Errorf("bus: save checkpoint %q at %d: %w", name, position, err)
	}
	return nil
}
