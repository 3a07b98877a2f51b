package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] moves the schema from user_version i to i+1. Entries are
// only ever appended: a released migration is never edited.
var migrations = [][]string{
	// 1: the event log. Metadata are columns, not a JSON blob, so reading
	// the log needs no decoding. Times are unix nanoseconds UTC;
	// occurred_at is NULL when the writer gave none.
	{
		`CREATE TABLE events (
			position       INTEGER PRIMARY KEY AUTOINCREMENT,
			event_id       TEXT    NOT NULL UNIQUE,
			stream_type    TEXT    NOT NULL,
			stream_id      TEXT    NOT NULL,
			version        INTEGER NOT NULL CHECK (version >= 1),
			type           TEXT    NOT NULL,
			schema_version INTEGER NOT NULL CHECK (schema_version >= 1),
			data           BLOB    NOT NULL,
			actor_id       TEXT    NOT NULL,
			actor_role     TEXT    NOT NULL,
			command_id     TEXT    NOT NULL,
			correlation_id TEXT    NOT NULL,
			causation_id   TEXT    NOT NULL,
			clinic_id      TEXT    NOT NULL,
			occurred_at    INTEGER,
			recorded_at    INTEGER NOT NULL,
			UNIQUE (stream_type, stream_id, version)
		) STRICT`,
		// Idempotency lookup (reshaped by migration 2). It ends in version
		// so reading a command's events back needs no sort. Partial: events
		// without a command id never need it; queries repeat
		// "command_id <> ''".
		`CREATE INDEX events_by_command ON events (stream_type, stream_id, command_id, version) WHERE command_id <> ''`,
		// The log is append-only; the database refuses anything else, so a
		// stray UPDATE from a console cannot rewrite clinical history.
		`CREATE TRIGGER events_no_update BEFORE UPDATE ON events
			BEGIN SELECT RAISE(ABORT, 'events are append-only'); END`,
		`CREATE TRIGGER events_no_delete BEFORE DELETE ON events
			BEGIN SELECT RAISE(ABORT, 'events are append-only'); END`,
	},
	// 2: command_id leads the idempotency index. careflow's command ids are
	// UUIDv7, so the inserts of a group land on the index's last page
	// instead of dirtying one page per stream: fewer pages per commit.
	{
		`DROP INDEX events_by_command`,
		`CREATE INDEX events_by_command ON events (command_id, stream_type, stream_id, version) WHERE command_id <> ''`,
	},
}

// schemaVersion is the user_version a fully migrated database has.
var schemaVersion = len(migrations)

// migrate brings the database to schemaVersion in one transaction, so a
// crash mid-migration leaves the previous version intact.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin migration: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	var current int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return fmt.Errorf("sqlite: read schema version: %w", err)
	}
	if current > schemaVersion {
		return fmt.Errorf("sqlite: database schema version %d is newer than this build knows (%d)", current, schemaVersion)
	}
	if current == schemaVersion {
		return nil
	}
	for v := current; v < schemaVersion; v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("sqlite: migration to version %d: %w", v+1, err)
			}
		}
	}
	// PRAGMA takes no bound parameters; the value is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return fmt.Errorf("sqlite: set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit migration: %w", err)
	}
	return nil
}
