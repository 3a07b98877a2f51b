//go:build unix

package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/sqlite"
)

const benchEvents = 100_000

// BenchmarkCatchUp measures a full build (what a rebuild does) of the
// counting projection from the SQLite event store: every projection starts
// from zero and the clock stops when all have reached the head.
// events/s counts log events; applied/s counts events times projections;
// applied/cpu-s divides by the CPU time the process used, which stays
// meaningful on a machine busy with other work.
func BenchmarkCatchUp(b *testing.B) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "events.db")}, eventstore.Options{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = store.Close() })
	head := fillStore(b, store, benchEvents)

	for _, count := range []int{1, 3} {
		b.Run(fmt.Sprintf("projections=%d", count), func(b *testing.B) {
			var elapsed, cpu time.Duration
			for i := 0; b.Loop(); i++ {
				db := openBenchDB(b, filepath.Join(b.TempDir(), fmt.Sprintf("read%d.db", i)))
				var ps []Projection
				for j := range count {
					ps = append(ps, newCounting(fmt.Sprintf("p%d", j)))
				}
				r, err := NewRunner(store, db, nil, ps...)
				require.NoError(b, err)
				runCtx, stop := context.WithCancel(ctx)
				done := make(chan error, 1)
				start, cpuStart := time.Now(), cpuTime(b)
				go func() { done <- r.Run(runCtx) }()
				for _, p := range ps {
					waitUntilRunning(b, r)
					reached, err := r.WaitFor(ctx, p.Name(), head, 10*time.Minute)
					require.NoError(b, err)
					require.True(b, reached)
				}
				elapsed += time.Since(start)
				cpu += cpuTime(b) - cpuStart
				stop()
				require.NoError(b, <-done)
				require.NoError(b, db.Close())
			}
			perRun := elapsed.Seconds() / float64(b.N)
			b.ReportMetric(float64(head)/perRun, "events/s")
			b.ReportMetric(float64(head)*float64(count)/perRun, "applied/s")
			b.ReportMetric(float64(head)*float64(count)*float64(b.N)/cpu.Seconds(), "applied/cpu-s")
		})
	}
}

func fillStore(b *testing.B, store eventstore.Store, n int) int64 {
	const perAppend = 100
	var head int64
	events := make([]eventstore.NewEvent, perAppend)
	for i := 0; i < n; i += perAppend {
		for j := range events {
			data, err := json.Marshal(map[string]any{"clinicId": "c1", "n": i + j, "note": "a short body"})
			require.NoError(b, err)
			events[j] = eventstore.NewEvent{Type: "test.happened", Data: data}
		}
		res, err := store.Append(context.Background(), eventstore.NewStreamID("client", fmt.Sprintf("c%d", i/perAppend)),
			eventstore.AnyVersion, events)
		require.NoError(b, err)
		head = res.LastPosition()
	}
	return head
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var u syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &u))
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

func openBenchDB(b *testing.B, path string) *DB {
	db, err := OpenDB(context.Background(), path)
	require.NoError(b, err)
	return db
}

func waitUntilRunning(b *testing.B, r *Runner) {
	for {
		if ok, _ := r.runState(); ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
