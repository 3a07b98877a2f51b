package audit_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/careflow/careflow/eventstore/postgres/pgtest"
)

// readModelsAt is where a test's read-model database named file lives
// (see pgtest.Location).
func readModelsAt(t *testing.T, file string) string { return pgtest.Location(t, file) }

// TestAuditTrailOnPostgres runs every test of the package again with the
// trail (and the session view beside it) in PostgreSQL.
func TestAuditTrailOnPostgres(t *testing.T) {
	out := pgtest.Rerun(t, "^Test", []string{"TestIncrementalTrailEqualsRebuild", "TestClientTimelinePagesAndTimeRange",
		"TestAuditTablesHoldNoPHI",
		"TestTimelineOverATrailOfVersion2", "TestTimelineOverATrailOfVersion3"})
	assert.NotContains(t, out, "--- SKIP", "nothing is skipped in the PostgreSQL run")
}
