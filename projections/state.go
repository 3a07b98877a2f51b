package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// stateTable records, per projection, the active generation and its
// checkpoint, the generation being rebuilt (if any) and its checkpoint, and
// the last failure. Checkpoints are written in the same transaction as the
// read-model rows they account for.
const stateTable = "projection_state"

const stateSchema = `CREATE TABLE IF NOT EXISTS projection_state (
	name               TEXT PRIMARY KEY,
	generation         BIGINT NOT NULL,
	version            BIGINT NOT NULL,
	position           BIGINT NOT NULL,
	tables             TEXT NOT NULL,
	pending_generation BIGINT NOT NULL DEFAULT 0,
	pending_version    BIGINT NOT NULL DEFAULT 0,
	pending_position   BIGINT NOT NULL DEFAULT 0,
	pending_tables     TEXT NOT NULL DEFAULT '',
	status             TEXT NOT NULL DEFAULT 'ok',
	failed_position    BIGINT NOT NULL DEFAULT 0,
	last_error         TEXT NOT NULL DEFAULT '',
	last_error_at      BIGINT NOT NULL DEFAULT 0
)`

const (
	statusOK     = "ok"
	statusFailed = "failed"
)

// state is one row of projection_state.
type state struct {
	generation        int64
	version           int
	position          int64
	tables            []string
	pendingGeneration int64 // 0: no rebuild in progress
	pendingVersion    int
	pendingPosition   int64
	pendingTables     []string
	status            string
	failedPosition    int64
	lastError         string
	lastErrorAt       time.Time
}

// Table lists are stored with the generation so a swap drops the old
// generation's tables even when the new code declares other ones.
func joinTables(tables []string) string { return strings.Join(tables, ",") }

func splitTables(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func loadState(ctx context.Context, q Queryer, d Dialect, name string) (state, bool, error) {
	var (
		st                    state
		tables, pendingTables string
		lastErrorAt           int64
	)
	err := q.QueryRowContext(ctx, d.Rebind(`SELECT generation, version, position, tables,
		pending_generation, pending_version, pending_position, pending_tables,
		status, failed_position, last_error, last_error_at
		FROM projection_state WHERE name = ?`), name).Scan(
		&st.generation, &st.version, &st.position, &tables,
		&st.pendingGeneration, &st.pendingVersion, &st.pendingPosition, &pendingTables,
		&st.status, &st.failedPosition, &st.lastError, &lastErrorAt)
	if errors.Is(err, sql.ErrNoRows) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, fmt.Errorf("projections: read state of %s: %w", name, err)
	}
	st.tables = splitTables(tables)
	st.pendingTables = splitTables(pendingTables)
	if lastErrorAt != 0 {
		st.lastErrorAt = time.Unix(0, lastErrorAt).UTC()
	}
	return st, true, nil
}

// execer is a *sql.Tx or *sql.DB.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// execOne runs an UPDATE that must touch exactly one row: anything else
// means another writer changed the projection's state behind our back.
func execOne(ctx context.Context, x execer, d Dialect, what, query string, args ...any) error {
	res, err := x.ExecContext(ctx, d.Rebind(query), args...)
	if err != nil {
		return fmt.Errorf("projections: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("projections: %s: %w", what, err)
	}
	if n != 1 {
		return fmt.Errorf("projections: %s: state changed by another writer", what)
	}
	return nil
}

// createGeneration drops leftovers of the generation's tables, if any, and
// runs the projection's schema for it without its indexes: a new
// generation starts empty and is filled from the start of the log, so its
// secondary indexes are built once over the filled tables (a sort; about
// 5% less CPU in a rebuild, see docs/performance.md) instead of being
// updated row by row. createIndexes adds them when the generation catches
// up (worker.commit, worker.index). Primary keys and the constraints
// declared in CREATE TABLE, which appliers rely on (ON CONFLICT, UPDATE
// ... WHERE key), are created with the table.
func createGeneration(ctx context.Context, tx *sql.Tx, d Dialect, p Projection, t TableNames) error {
	if err := dropGeneration(ctx, tx, t); err != nil {
		return err
	}
	for _, stmt := range p.Schema(t) {
		if isIndex(stmt) {
			continue
		}
		if _, err := tx.ExecContext(ctx, d.CreateTable(stmt)); err != nil {
			return fmt.Errorf("projections: %s: create generation %d: %w", p.Name(), t.Generation(), err)
		}
	}
	return nil
}

// createIndexes creates the indexes of the projection's schema that the
// generation does not have yet.
func createIndexes(ctx context.Context, tx *sql.Tx, p Projection, t TableNames) error {
	for _, stmt := range p.Schema(t) {
		if !isIndex(stmt) {
			continue
		}
		if _, err := tx.ExecContext(ctx, ifNotExists(stmt)); err != nil {
			return fmt.Errorf("projections: %s: index generation %d: %w", p.Name(), t.Generation(), err)
		}
	}
	return nil
}

// isIndex says whether a schema statement is a CREATE [UNIQUE] INDEX.
func isIndex(stmt string) bool {
	f := strings.Fields(strings.ToUpper(stmt))
	if len(f) < 2 || f[0] != "CREATE" {
		return false
	}
	if f[1] == "UNIQUE" {
		f = f[1:]
	}
	return len(f) > 1 && f[1] == "INDEX"
}

// ifNotExists makes a CREATE [UNIQUE] INDEX statement a no-op when the
// index exists (SQLite and PostgreSQL both accept IF NOT EXISTS there): a
// generation whose indexes were built before a restart is indexed again.
func ifNotExists(stmt string) string {
	upper := strings.ToUpper(stmt)
	if strings.Contains(upper, "IF NOT EXISTS") {
		return stmt
	}
	at := strings.Index(upper, "INDEX") + len("INDEX")
	return stmt[:at] + " IF NOT EXISTS" + stmt[at:]
}

func dropGeneration(ctx context.Context, tx *sql.Tx, t TableNames) error {
	for _, table := range t.Physical() {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+table); err != nil {
			return fmt.Errorf("projections: %s: drop %s: %w", t.Projection(), table, err)
		}
	}
	return nil
}
