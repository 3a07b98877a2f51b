package reactions

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/postgres/pgtest"
)

// sideStoreEnv selects where this package's tests keep their database:
// SQLite files when unset, PostgreSQL databases when "postgres".
// TestReactionsOnPostgres sets it for a second run of the whole package.
const sideStoreEnv = "CAREFLOW_TEST_SIDE_STORE_BACKEND"

// testDBLocation is where a test's database named file lives: a SQLite
// file, or a fresh PostgreSQL database in the PostgreSQL run.
func testDBLocation(t testing.TB, file string) string {
	t.Helper()
	if os.Getenv(sideStoreEnv) == "postgres" {
		return pgtest.NewDatabase(t)
	}
	return filepath.Join(t.TempDir(), file)
}

// TestReactionsOnPostgres runs every test of the package again with its database in
// PostgreSQL, in a child run of this test binary: the tests are the same,
// only where the data lives changes.
func TestReactionsOnPostgres(t *testing.T) {
	if os.Getenv(sideStoreEnv) != "" {
		t.Skip("this is the PostgreSQL run")
	}
	pgtest.ServerURL(t) // skips, or fails under CI, without a server
	cmd := exec.Command(os.Args[0], "-test.v", "-test.count=1", "-test.run", "^Test", "-test.skip", "^TestReactionsOnPostgres$")
	cmd.Env = append(os.Environ(), sideStoreEnv+"=postgres")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, name := range []string{"TestRemindersAndOverdueFireOnceAlsoAcrossARestart", "TestAReceiverThatWasDownGetsEveryEventOnceInOrder", "TestOrderPerStreamIsKeptWhileAnEarlierVersionFails", "TestARedeliveredCompletionNotifiesOnce"} {
		assert.Contains(t, string(out), "--- PASS: "+name+" ", "%s must run and pass on PostgreSQL", name)
	}
	assert.NotContains(t, string(out), "--- FAIL")
}
