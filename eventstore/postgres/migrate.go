package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema ships in the binary. migrations/NNNN_name.sql moves the schema
// from version NNNN-1 to NNNN. Files are only ever added: a released
// migration is never edited.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrationLockKey is the advisory lock every Migrate takes, so two
// processes starting at once apply each migration once. The value is
// arbitrary but fixed: "careflow" in ASCII.
const migrationLockKey int64 = 0x63617265666c6f77

// loadMigrations reads the embedded files in version order and checks that
// the versions run 1, 2, 3... without gaps.
func loadMigrations() ([]migration, error) {
	entries, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, p := range entries {
		name := path.Base(p)
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return nil, fmt.Errorf("postgres: migration %s is not named NNNN_name.sql", name)
		}
		body, err := migrationFiles.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	for i, m := range out { // fs.Glob returns names sorted
		if m.version != i+1 {
			return nil, fmt.Errorf("postgres: migration %s should have version %d", m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version this build expects.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// Migrate brings the database's schema to the version this build ships, in
// one transaction under an advisory lock: a crash mid-migration leaves the
// previous version, and concurrent callers wait for each other instead of
// racing. A database newer than this build is refused.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return migrateTo(ctx, pool, SchemaVersion())
}

// migrateTo is Migrate up to schema version target (tests start from an
// older schema with it).
func migrateTo(ctx context.Context, pool *pgxpool.Pool, target int) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if target > len(ms) {
		return fmt.Errorf("postgres: no schema version %d in this build (%d)", target, len(ms))
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin migration: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("postgres: take migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS eventstore_schema (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres: create schema version table: %w", err)
	}
	current, err := readSchemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if current > len(ms) {
		return fmt.Errorf("postgres: database schema version %d is newer than this build knows (%d)", current, len(ms))
	}
	for _, m := range ms[min(current, target):target] {
		// No arguments: pgx sends the file with the simple protocol, which
		// runs several statements.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("postgres: migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO eventstore_schema (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return fmt.Errorf("postgres: record migration %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit migration: %w", err)
	}
	return nil
}

func readSchemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var v int
	if err := q.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM eventstore_schema`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: read schema version: %w", err)
	}
	return v, nil
}

// checkSchema refuses a database that is not at this build's version.
func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('eventstore_schema') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look for the schema: %w", err)
	}
	current := 0
	if exists {
		var err error
		if current, err = readSchemaVersion(ctx, pool); err != nil {
			return err
		}
	}
	if want := SchemaVersion(); current != want {
		return errors.New("postgres: database schema version is " + strconv.Itoa(current) +
			", this build needs " + strconv.Itoa(want) + " (open with Config.Migrate, or run postgres.Migrate)")
	}
	return nil
}
