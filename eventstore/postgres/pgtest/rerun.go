package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Some packages run their tests twice: on SQLite files, then again with
// their databases in PostgreSQL, in a child run of the same test binary
// with BackendEnv set — the tests are the same, only where the data lives
// changes.

// BackendEnv says which database a package's tests use: unset for SQLite
// files, "postgres" in the PostgreSQL run.
const BackendEnv = "CAREFLOW_TEST_BACKEND"

// InPostgresRun reports whether this is the PostgreSQL run.
func InPostgresRun() bool { return os.Getenv(BackendEnv) == "postgres" }

// Location is where a test's database named file lives: a SQLite file in
// a temporary directory, or a fresh PostgreSQL database in the PostgreSQL
// run.
func Location(t testing.TB, file string) string {
	t.Helper()
	if InPostgresRun() {
		return NewDatabase(t)
	}
	return filepath.Join(t.TempDir(), file)
}

// Rerun runs the tests matching run (a -test.run pattern) again in a child
// of this test binary with BackendEnv=postgres, and fails t unless the
// child passed and every test in mustPass ran and passed there. It skips
// (or fails under CI) without a server, and skips inside the child run.
// extra are more flags for the child (such as -rapid.checks=10). It
// returns the child's output.
func Rerun(t *testing.T, run string, mustPass []string, extra ...string) string {
	t.Helper()
	if os.Getenv(BackendEnv) != "" {
		t.Skip("this is the PostgreSQL run")
	}
	ServerURL(t)
	args := append([]string{"-test.v", "-test.count=1", "-test.run", run, "-test.skip", "^" + t.Name() + "$"}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), BackendEnv+"=postgres")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the PostgreSQL run failed: %v\n%s", err, out)
	}
	for _, name := range mustPass {
		if !strings.Contains(string(out), "--- PASS: "+name+" ") {
			t.Errorf("%s must run and pass on PostgreSQL:\n%s", name, out)
		}
	}
	if strings.Contains(string(out), "--- FAIL") {
		t.Errorf("a test failed on PostgreSQL:\n%s", out)
	}
	return string(out)
}
