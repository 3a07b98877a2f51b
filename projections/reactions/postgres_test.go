package reactions

import (
	"testing"

	"github.com/careflow/careflow/eventstore/postgres/pgtest"
)

// testDBLocation is where a test's database named file lives (see
// pgtest.Location).
func testDBLocation(t testing.TB, file string) string { return pgtest.Location(t, file) }

// TestReactionsOnPostgres runs every test of the package again with its
// database in PostgreSQL.
func TestReactionsOnPostgres(t *testing.T) {
	pgtest.Rerun(t, "^Test", []string{"TestRemindersAndOverdueFireOnceAlsoAcrossARestart",
		"TestAReceiverThatWasDownGetsEveryEventOnceInOrder", "TestOrderPerStreamIsKeptWhileAnEarlierVersionFails",
		"TestARedeliveredCompletionNotifiesOnce"})
}
