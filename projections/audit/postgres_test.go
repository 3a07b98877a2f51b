package audit_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/postgres/pgtest"
)

// readModelsEnv selects where this package's tests keep the audit trail:
// SQLite files when unset, PostgreSQL databases when "postgres".
// TestAuditTrailOnPostgres sets it for a second run of the whole package.
const readModelsEnv = "CAREFLOW_TEST_VIEWS_BACKEND"

// readModelsAt is where a test's read-model database named file lives: a
// SQLite file, or a fresh PostgreSQL database in the PostgreSQL run.
func readModelsAt(t *testing.T, file string) string {
	t.Helper()
	if os.Getenv(readModelsEnv) == "postgres" {
		return pgtest.NewDatabase(t)
	}
	return filepath.Join(t.TempDir(), file)
}

// TestAuditTrailOnPostgres runs every test of the package again with the
// trail (and the session view beside it) in PostgreSQL, in a child run of
// this test binary: the tests are the same, only where the trail lives
// changes.
func TestAuditTrailOnPostgres(t *testing.T) {
	if os.Getenv(readModelsEnv) != "" {
		t.Skip("this is the PostgreSQL run")
	}
	pgtest.ServerURL(t) // skips, or fails under CI, without a server
	cmd := exec.Command(os.Args[0], "-test.v", "-test.count=1", "-test.run", "^Test", "-test.skip", "^TestAuditTrailOnPostgres$")
	cmd.Env = append(os.Environ(), readModelsEnv+"=postgres")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, name := range []string{"TestIncrementalTrailEqualsRebuild", "TestClientTimelinePagesAndTimeRange", "TestAuditTablesHoldNoPHI"} {
		assert.Contains(t, string(out), "--- PASS: "+name+" ", "%s must run and pass on PostgreSQL", name)
	}
	assert.NotContains(t, string(out), "--- SKIP", "nothing is skipped in the PostgreSQL run")
	assert.False(t, strings.Contains(string(out), "--- FAIL"), "%s", out)
}
