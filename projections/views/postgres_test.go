package views_test

import (
	"strings"
	"testing"

	"github.com/careflow/careflow/eventstore/postgres/pgtest"
)

// viewsLocation is where a test's read-model database named file lives
// (see pgtest.Location).
func viewsLocation(t *testing.T, file string) string { return pgtest.Location(t, file) }

// TestViewsOnPostgres runs the care loop, the JSON shape and the
// incremental-equals-rebuilt property against read models in PostgreSQL.
// (The PHI tests read the SQLite file's bytes and stay SQLite-only.)
func TestViewsOnPostgres(t *testing.T) {
	names := []string{"TestCareLoop", "TestJSONShape", "TestIncrementalEqualsRebuilt"}
	pgtest.Rerun(t, "^("+strings.Join(names, "|")+")$", names, "-rapid.checks=10")
}
