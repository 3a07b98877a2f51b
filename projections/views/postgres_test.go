package views_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/postgres/pgtest"
)

// viewsBackendEnv selects where this package's tests keep their read
// models: SQLite files when unset, PostgreSQL databases when "postgres".
// TestViewsOnPostgres sets it for a second run of the view tests.
const viewsBackendEnv = "CAREFLOW_TEST_VIEWS_BACKEND"

// viewsLocation is where a test's read-model database named file lives:
// a SQLite file, or a fresh PostgreSQL database in the PostgreSQL run.
func viewsLocation(t *testing.T, file string) string {
	t.Helper()
	if os.Getenv(viewsBackendEnv) == "postgres" {
		return pgtest.NewDatabase(t)
	}
	return filepath.Join(t.TempDir(), file)
}

// TestViewsOnPostgres runs the care loop, the JSON shape and the
// incremental-equals-rebuilt property against read models in PostgreSQL,
// in a child run of this test binary: the tests are the same, only where
// the views live changes. (The PHI tests read the SQLite file's bytes and
// stay SQLite-only.)
func TestViewsOnPostgres(t *testing.T) {
	if os.Getenv(viewsBackendEnv) != "" {
		t.Skip("this is the PostgreSQL run")
	}
	pgtest.ServerURL(t) // skips, or fails under CI, without a server
	cmd := exec.Command(os.Args[0], "-test.v", "-test.count=1", "-rapid.checks=10",
		"-test.run", "^(TestCareLoop|TestJSONShape|TestIncrementalEqualsRebuilt)$")
	cmd.Env = append(os.Environ(), viewsBackendEnv+"=postgres")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, name := range []string{"TestCareLoop", "TestJSONShape", "TestIncrementalEqualsRebuilt"} {
		assert.Contains(t, string(out), "--- PASS: "+name+" ", "%s must run and pass on PostgreSQL", name)
	}
}
