package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/careflow/careflow/projections/pgsql"
)

// OpenPostgresAccessLog keeps the access log in the PostgreSQL database at
// url (tables of their own, beside the event store's), with the same code
// and schema as the SQLite log: pgsql adapts the table definitions (seq
// becomes an identity column) and the placeholders. Records are grouped
// into transactions by the same single writer; reads use the pool.
func OpenPostgresAccessLog(ctx context.Context, url string) (*SQLiteAccessLog, error) {
	db, err := pgsql.Open(url)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	for _, stmt := range []string{accessRecordsSchema, postgresClientIndexSchema} {
		if _, err := db.ExecContext(ctx, pgsql.DDL(db, stmt)); err != nil {
			return nil, errors.Join(fmt.Errorf("access log: schema: %w", err), db.Close())
		}
	}
	if err := upgradeAccessLog(ctx, db); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return startAccessLog(ctx, db, false, accessLogOptions{})
}
