package notify

import (
	"context"
	"database/sql"
	"testing"

	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/projections/bus"
	"github.com/careflow/careflow/projections/pgsql"
)

// openTestDB opens the store's database at location, as
// reactions.OpenDB does (which this package cannot import).
func openTestDB(ctx context.Context, location string) (*sql.DB, error) {
	if pgsql.IsURL(location) {
		return pgsql.Open(location)
	}
	return bus.OpenSQLite(ctx, location)
}

// testDBLocation is where a test's database named file lives (see
// pgtest.Location).
func testDBLocation(t testing.TB, file string) string { return pgtest.Location(t, file) }

// TestNotificationStoreOnPostgres runs every test of the package again with
// its database in PostgreSQL.
func TestNotificationStoreOnPostgres(t *testing.T) {
	pgtest.Rerun(t, "^Test", []string{"TestAddIsIdempotentByID", "TestListPagesNewestFirstAndFiltersUnread",
		"TestPumpDeliversUrgentFirstAndRetriesFailures"})
}
