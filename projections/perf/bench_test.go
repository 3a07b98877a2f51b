package perf_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/api"
	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/eventstore/sqlite"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/views"
	"github.com/careflow/careflow/projections/views/viewstest"
)

// millionEvents is the size of the log the rebuild target is set for.
const millionEvents = 1_000_000

// skipUnlessNamed skips a benchmark unless the -bench pattern names it:
// these take minutes and build a large file, too much for `-bench .`.
func skipUnlessNamed(b *testing.B, name string) {
	b.Helper()
	pattern := ""
	if f := flag.Lookup("test.bench"); f != nil {
		pattern = f.Value.String()
	}
	if !strings.Contains(pattern, name) {
		b.Skipf("takes minutes: run with -bench %s", name)
	}
}

// allProjections is every projection the service runs (cmd/careflow's
// allProjections), sealing PHI as the service does: one AES-GCM seal per
// PHI column value, keys in memory.
func allProjections(tb testing.TB, reg *codec.Registry) []projections.Projection {
	tb.Helper()
	all, err := views.All(reg, viewstest.NewSealer())
	require.NoError(tb, err)
	return append(all, audit.NewTrail(), api.NewAssignmentIndex())
}

// BenchmarkRebuildMillion rebuilds every projection of the service from
// zero over a one-million-event care history in SQLite, as a first start
// or `careflow projections rebuild all` does, once per catch-up batch
// size. events/s counts log events, cpu-us/event the CPU time (user and
// system) of the process per event; rss-MiB is the resident memory of the
// process once every projection has caught up (the store and the read
// models open), peak-rss-MiB its high-water mark.
func BenchmarkRebuildMillion(b *testing.B) {
	skipUnlessNamed(b, "RebuildMillion")
	collectLikeTheService(b)
	reg, err := commands.NewRegistry()
	require.NoError(b, err)
	path, head := cachedLog(b, reg, clientsFor(millionEvents))
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: path}, eventstore.Options{Types: reg})
	require.NoError(b, err)
	b.Cleanup(func() { _ = store.Close() })

	for _, batch := range []int{projections.DefaultCatchUpBatchSize, 20_000} {
		b.Run(fmt.Sprintf("catchup=%d", batch), func(b *testing.B) {
			var elapsed, cpu time.Duration
			for i := 0; b.Loop(); i++ {
				db, err := projections.OpenDB(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("views-%d.db", i)))
				require.NoError(b, err)
				ps := allProjections(b, reg)
				runner, err := projections.NewRunnerWithOptions(store, db, nil, projections.Options{CatchUpBatchSize: batch}, ps...)
				require.NoError(b, err)
				require.NoError(b, runner.Prepare(ctx))
				runCtx, stop := context.WithCancel(ctx)
				done := make(chan error, 1)
				began, cpuBegan := time.Now(), cpuTime(b)
				go func() { done <- runner.Run(runCtx) }()
				waitCaughtUp(b, runner, ps, head)
				elapsed += time.Since(began)
				cpu += cpuTime(b) - cpuBegan
				rss, peak := residentMiB(b)
				b.ReportMetric(rss, "rss-MiB")
				b.ReportMetric(peak, "peak-rss-MiB")
				stop()
				require.NoError(b, <-done)
				require.NoError(b, db.Close())
			}
			b.ReportMetric(float64(head)*float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/rebuild")
			b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cpu-cores")
			// CPU per event means something on a shared machine, where
			// events/s follows the neighbours' load.
			b.ReportMetric(float64(cpu.Microseconds())/(float64(head)*float64(b.N)), "cpu-us/event")
		})
	}
}

// BenchmarkLiveLag drives PostMessage commands through commands.Care on
// the SQLite store at a steady rate (the target's 1,000 commands/s, and a
// quarter of it for comparison) for liveSeconds while the
// runner follows live with every projection of the service, and reports
// the live lag (RecordedAt to the commit of the read model) over every
// event of every projection: lag-p50-ms, lag-p99-ms, lag-max-ms. log=empty
// starts from a small clinic; log=1M from a copy of the million-event log,
// its projections caught up before the load starts (not timed).
func BenchmarkLiveLag(b *testing.B) {
	skipUnlessNamed(b, "LiveLag")
	collectLikeTheService(b)
	reg, err := commands.NewRegistry()
	require.NoError(b, err)
	for _, rate := range []int{liveRate, liveRate / 4} {
		b.Run(fmt.Sprintf("log=empty/rate=%d", rate), func(b *testing.B) {
			for b.Loop() {
				liveLag(b, reg, filepath.Join(b.TempDir(), "events.db"), rate)
			}
		})
	}
	b.Run(fmt.Sprintf("log=1M/rate=%d", liveRate), func(b *testing.B) {
		cached, _ := cachedLog(b, reg, clientsFor(millionEvents))
		for b.Loop() {
			path := filepath.Join(b.TempDir(), "events.db")
			copyFile(b, cached, path)
			liveLag(b, reg, path, liveRate)
		}
	})
}

const (
	liveRate    = 1000 // commands per second
	liveSeconds = 10
	// liveSessions spreads the messages so that a session's stream, which
	// each command loads, stays short, as in production.
	liveClients        = 40
	liveSessionsEach   = 5
	liveCommandCallers = 64
)

func liveLag(b *testing.B, reg *codec.Registry, storePath string, rate int) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: storePath}, eventstore.Options{Types: reg})
	require.NoError(b, err)
	defer func() { require.NoError(b, store.Close()) }()
	// The commands run as in the service (cmd/careflow), with a stream cache.
	deps := commands.Deps{Store: store, Codec: reg, Clock: time.Now, NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) },
		Streams: commands.NewStreamCache(0)}
	org := commands.NewOrganization(deps)
	careCmds := commands.NewCare(deps, org)
	provider, sessions := liveClinic(b, org, careCmds)

	db, err := projections.OpenDB(ctx, filepath.Join(b.TempDir(), "views.db"))
	require.NoError(b, err)
	defer func() { require.NoError(b, db.Close()) }()
	lags := &lagRecorder{}
	ps := allProjections(b, reg)
	runner, err := projections.NewRunnerWithOptions(store, db, nil, projections.Options{LagObserver: lags}, ps...)
	require.NoError(b, err)
	require.NoError(b, runner.Prepare(ctx))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.Run(runCtx) }()
	defer func() {
		stop()
		require.NoError(b, <-done)
	}()
	head, err := store.HeadPosition(ctx)
	require.NoError(b, err)
	waitCaughtUp(b, runner, ps, head)
	lags.reset()

	sent, latencies := driveMessages(b, careCmds, provider, sessions, rate)
	head, err = store.HeadPosition(ctx)
	require.NoError(b, err)
	waitCaughtUp(b, runner, ps, head)

	all := lags.sorted()
	require.NotEmpty(b, all)
	b.ReportMetric(float64(sent)/liveSeconds, "commands/s")
	b.ReportMetric(ms(quantile(latencies, 0.99)), "cmd-p99-ms")
	b.ReportMetric(ms(quantile(all, 0.50)), "lag-p50-ms")
	b.ReportMetric(ms(quantile(all, 0.99)), "lag-p99-ms")
	b.ReportMetric(ms(all[len(all)-1]), "lag-max-ms")
	// The runner's own summary (the last 1,024 events of each projection),
	// as /metrics and `careflow projections status` show it.
	status, err := runner.Status(ctx)
	require.NoError(b, err)
	var worstP99 time.Duration
	for _, s := range status {
		require.Equal(b, projections.StateRunning, s.State, s.Name)
		worstP99 = max(worstP99, s.LiveLag.P99)
	}
	b.ReportMetric(ms(worstP99), "status-worst-p99-ms")
}

// liveClinic sets up, through the commands, a clinic with a provider and
// liveClients clients of liveSessionsEach sessions each.
func liveClinic(b *testing.B, org *commands.Organization, careCmds *commands.Care) (domain.Actor, []string) {
	ctx := context.Background()
	sys := domain.Actor{ID: "sys", Role: domain.RoleSystemAdmin}
	meta := func(a domain.Actor) commands.Meta { return commands.Meta{Actor: a, CommandID: newID()} }
	inst, err := org.CreateInstitute(ctx, meta(sys), commands.CreateInstitute{Name: "Load"})
	require.NoError(b, err)
	clinic, err := org.CreateClinic(ctx, meta(sys), commands.CreateClinic{InstituteID: inst.Stream.ID, Name: "Load"})
	require.NoError(b, err)
	reg, err := org.RegisterProvider(ctx, meta(sys), commands.RegisterProvider{ClinicID: clinic.Stream.ID, DisplayName: "Dr Load"})
	require.NoError(b, err)
	provider := domain.Actor{ID: reg.ProviderID, Role: domain.RoleProvider}
	var sessions []string
	for c := range liveClients {
		client, err := org.RegisterClient(ctx, meta(provider), commands.RegisterClient{
			ClinicID: clinic.Stream.ID, DisplayName: fmt.Sprintf("Client %d", c), CareTeam: []string{provider.ID},
		})
		require.NoError(b, err)
		sched, err := careCmds.ScheduleSession(ctx, meta(provider), commands.ScheduleSession{
			ClientID: client.Stream.ID, Title: "Weekly", Start: time.Now().Add(-time.Hour), Repeat: liveSessionsEach,
		})
		require.NoError(b, err)
		for _, s := range sched.Sessions {
			sessions = append(sessions, s.ID)
		}
	}
	return provider, sessions
}

// driveMessages posts messages at rate per second for liveSeconds from
// liveCommandCallers goroutines and returns how many were posted and their
// latencies, sorted.
func driveMessages(b *testing.B, careCmds *commands.Care, provider domain.Actor, sessions []string, rate int) (int, []time.Duration) {
	ctx := context.Background()
	tokens := make(chan int, rate)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  []error
		wg        sync.WaitGroup
	)
	for range liveCommandCallers {
		wg.Go(func() {
			for n := range tokens {
				began := time.Now()
				_, err := careCmds.PostMessage(ctx, commands.Meta{Actor: provider, CommandID: newID()},
					commands.PostMessage{SessionID: sessions[n%len(sessions)], Text: "How are the breathing exercises going?"})
				took := time.Since(began)
				mu.Lock()
				latencies = append(latencies, took)
				if err != nil {
					failures = append(failures, err)
				}
				mu.Unlock()
			}
		})
	}
	// Tokens are issued against the wall clock, so a slow moment is made
	// up for instead of lowering the rate.
	began := time.Now()
	total := rate * liveSeconds
	issued := 0
	ticker := time.NewTicker(5 * time.Millisecond)
	for issued < total {
		<-ticker.C
		due := min(int(time.Since(began).Seconds()*float64(rate)), total)
		for ; issued < due; issued++ {
			tokens <- issued
		}
	}
	ticker.Stop()
	close(tokens)
	wg.Wait()
	require.Empty(b, failures)
	slices.Sort(latencies)
	return len(latencies), latencies
}

// lagRecorder keeps every live lag observation.
type lagRecorder struct {
	mu      sync.Mutex
	samples []time.Duration
}

func (l *lagRecorder) ObserveLag(_ string, lag time.Duration) {
	l.mu.Lock()
	l.samples = append(l.samples, lag)
	l.mu.Unlock()
}

func (l *lagRecorder) reset() {
	l.mu.Lock()
	l.samples = nil
	l.mu.Unlock()
}

func (l *lagRecorder) sorted() []time.Duration {
	l.mu.Lock()
	out := slices.Clone(l.samples)
	l.mu.Unlock()
	slices.Sort(out)
	return out
}

// quantile is the nearest-rank quantile of sorted samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// waitCaughtUp waits until every projection has applied the log up to head.
func waitCaughtUp(b testing.TB, runner *projections.Runner, ps []projections.Projection, head int64) {
	b.Helper()
	ctx := context.Background()
	for _, p := range ps {
		for {
			reached, err := runner.WaitFor(ctx, p.Name(), head, 10*time.Minute)
			require.NoError(b, err)
			if reached {
				break
			}
			// WaitFor answers false at once while Run has not started or
			// when the projection failed: the benchmark would measure
			// nothing then.
			status, err := runner.Status(ctx)
			require.NoError(b, err)
			for _, s := range status {
				require.NotEqual(b, projections.StateFailed, s.State, "%s: %s", s.Name, s.LastError)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// collectLikeTheService gives the benchmark the garbage collector settings
// `careflow serve` runs the projections with (gc_percent 400 under a
// 128 MiB soft memory limit, ADR 0014) until it ends. As in serve, the
// GOGC and GOMEMLIMIT environment variables win.
func collectLikeTheService(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		previous := debug.SetGCPercent(400)
		b.Cleanup(func() { debug.SetGCPercent(previous) })
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		previous := debug.SetMemoryLimit(128 << 20)
		b.Cleanup(func() { debug.SetMemoryLimit(previous) })
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var u syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &u))
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// residentMiB reads the process's resident set size and its high-water
// mark from /proc/self/status.
func residentMiB(b *testing.B) (rss, peak float64) {
	f, err := os.Open("/proc/self/status")
	require.NoError(b, err)
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		name, value, ok := strings.Cut(lines.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kib, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 64)
		require.NoError(b, err)
		if name == "VmRSS" {
			rss = kib / 1024
		} else {
			peak = kib / 1024
		}
	}
	require.NoError(b, lines.Err())
	return rss, peak
}

func copyFile(b *testing.B, from, to string) {
	src, err := os.Open(from)
	require.NoError(b, err)
	defer src.Close()
	dst, err := os.Create(to)
	require.NoError(b, err)
	_, err = io.Copy(dst, src)
	require.NoError(b, err)
	require.NoError(b, dst.Close())
}
