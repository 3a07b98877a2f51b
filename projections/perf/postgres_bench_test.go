package perf_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/eventstore/sqlite"
	"github.com/careflow/careflow/projections"
)

// rebuildCompareEvents is the log size of BenchmarkRebuildViewsBackends:
// large enough for steady rates, small enough to build in a minute.
const rebuildCompareEvents = 100_000

// BenchmarkRebuildViewsBackends rebuilds every projection of the service
// from zero over the same SQLite event log into read models in a SQLite
// file and in a PostgreSQL database, to compare the two: events/s counts
// log events applied by every projection.
func BenchmarkRebuildViewsBackends(b *testing.B) {
	skipUnlessNamed(b, "RebuildViewsBackends")
	reg, err := commands.NewRegistry()
	require.NoError(b, err)
	path, head := cachedLog(b, reg, clientsFor(rebuildCompareEvents))
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: path}, eventstore.Options{Types: reg})
	require.NoError(b, err)
	b.Cleanup(func() { _ = store.Close() })

	locations := map[string]func(b *testing.B, i int) string{
		"views=sqlite":   func(b *testing.B, i int) string { return filepath.Join(b.TempDir(), fmt.Sprintf("views-%d.db", i)) },
		"views=postgres": func(b *testing.B, _ int) string { return pgtest.NewDatabase(b) },
	}
	for _, name := range []string{"views=sqlite", "views=postgres"} {
		b.Run(name, func(b *testing.B) {
			var elapsed time.Duration
			for i := 0; b.Loop(); i++ {
				db, err := projections.OpenDB(ctx, locations[name](b, i))
				require.NoError(b, err)
				ps := allProjections(b, reg)
				runner, err := projections.NewRunner(store, db, nil, ps...)
				require.NoError(b, err)
				require.NoError(b, runner.Prepare(ctx))
				runCtx, stop := context.WithCancel(ctx)
				done := make(chan error, 1)
				began := time.Now()
				go func() { done <- runner.Run(runCtx) }()
				waitCaughtUp(b, runner, ps, head)
				elapsed += time.Since(began)
				stop()
				require.NoError(b, <-done)
				require.NoError(b, db.Close())
			}
			b.ReportMetric(float64(head)*float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/rebuild")
		})
	}
}
