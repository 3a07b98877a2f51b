package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/storetest"
)

// BenchmarkRatio measures each target as a ratio: every iteration runs the
// store's workload and then the raw baseline's, on the same server at the
// same moment, so both see the same load. On a shared machine, two
// benchmarks run minutes apart compare the neighbours, not the code.
func BenchmarkRatio(b *testing.B) {
	b.Run("Append1VsInsert1/writers=1", func(b *testing.B) {
		s, pool := openPaired(b, Config{})
		stream := eventstore.NewStreamID("session", uuid.NewString())
		rawStream := uuid.NewString()
		var version, rawVersion int64
		comparePaired(b, pool, func(ctx context.Context) (int, error) {
			res, err := s.Append(ctx, stream, eventstore.Exactly(version),
				[]eventstore.NewEvent{storetest.BenchEvent(uuid.NewString(), int(version))})
			version = res.Version
			return 1, err
		}, func(ctx context.Context) (int, error) {
			err := rawInsert1(ctx, pool, rawStream, rawVersion)
			rawVersion++
			return 1, err
		})
	})
	for _, after := range []bool{false, true} {
		name := "Append1VsInsert1/writers=16"
		cfg := Config{}
		if after {
			name, cfg = name+"/notifyAfterCommit", Config{NotifyAfterCommit: true, AppendWorkers: 4}
		}
		b.Run(name, func(b *testing.B) {
			s, pool := openPaired(b, cfg)
			const writers, perWriter = 16, 4
			streams, versions := make([]eventstore.StreamID, writers), make([]int64, writers)
			rawStreams, rawVersions := make([]string, writers), make([]int64, writers)
			for i := range streams {
				streams[i], rawStreams[i] = eventstore.NewStreamID("session", uuid.NewString()), uuid.NewString()
			}
			comparePaired(b, pool, func(ctx context.Context) (int, error) {
				return writers * perWriter, inParallel(writers, func(w int) error {
					for range perWriter {
						res, err := s.Append(ctx, streams[w], eventstore.Exactly(versions[w]),
							[]eventstore.NewEvent{storetest.BenchEvent(uuid.NewString(), int(versions[w]))})
						if err != nil {
							return err
						}
						versions[w] = res.Version
					}
					return nil
				})
			}, func(ctx context.Context) (int, error) {
				return writers * perWriter, inParallel(writers, func(w int) error {
					for range perWriter {
						if err := rawInsert1(ctx, pool, rawStreams[w], rawVersions[w]); err != nil {
							return err
						}
						rawVersions[w]++
					}
					return nil
				})
			})
		})
	}
	b.Run("Batch100VsInsert100", func(b *testing.B) {
		s, pool := openPaired(b, Config{})
		batch := make([]eventstore.NewEvent, 100)
		comparePaired(b, pool, func(ctx context.Context) (int, error) {
			commandID := uuid.NewString()
			for i := range batch {
				batch[i] = storetest.BenchEvent(commandID, i)
			}
			_, err := s.Append(ctx, eventstore.NewStreamID("session", uuid.NewString()), eventstore.NoStream, batch)
			return len(batch), err
		}, func(ctx context.Context) (int, error) {
			_, err := pool.Exec(ctx, rawInsertSQL, rawArrays(uuid.NewString(), 0, uuid.NewString(), 100)...)
			return 100, err
		})
	})
	b.Run("ReadAllVsSelect", func(b *testing.B) {
		s, pool := openPaired(b, Config{})
		ctx := context.Background()
		storetest.FillBenchLog(b, s, storetest.BenchLogSize)
		for done := 0; done < storetest.BenchLogSize; done += 100 {
			if _, err := pool.Exec(ctx, rawInsertSQL, rawArrays(uuid.NewString(), 0, uuid.NewString(), 100)...); err != nil {
				b.Fatal(err)
			}
		}
		// Each turn reads 10 pages of 1,000, going round the log.
		var after, rawAfter int64
		const pages = 10
		comparePaired(b, pool, func(ctx context.Context) (int, error) {
			n := 0
			for range pages {
				page, err := s.ReadAll(ctx, after, eventstore.CatchUpBatch)
				if err != nil {
					return n, err
				}
				n += len(page)
				after = 0
				if len(page) == eventstore.CatchUpBatch {
					after = page[len(page)-1].Position
				}
			}
			return n, nil
		}, func(ctx context.Context) (int, error) {
			n := 0
			for range pages {
				rows, err := pool.Query(ctx, `SELECT `+eventColumns+` FROM raw_events WHERE position > $1 ORDER BY position LIMIT $2`,
					rawAfter, eventstore.CatchUpBatch)
				if err != nil {
					return n, err
				}
				page, err := scanEvents(rows, eventstore.CatchUpBatch)
				if err != nil {
					return n, err
				}
				n += len(page)
				rawAfter = 0
				if len(page) == eventstore.CatchUpBatch {
					rawAfter = page[len(page)-1].Position
				}
			}
			return n, nil
		})
	})
}

// Application names tell the store's server sessions from the raw pool's,
// so comparePaired can read what each costs the server.
const (
	rawApplication   = "careflow_bench_raw"
	storeApplication = "careflow_bench_store"
)

// openPaired opens a store and, in the same database, a pool of the same
// size on the raw table.
func openPaired(b *testing.B, cfg Config) (*Store, *pgxpool.Pool) {
	pool := openRaw(b)
	u, err := url.Parse(pool.Config().ConnString())
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", storeApplication)
	u.RawQuery = q.Encode()
	cfg.URL, cfg.Migrate = u.String(), true
	s, err := Open(context.Background(), cfg, eventstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s, pool
}

func rawInsert1(ctx context.Context, pool *pgxpool.Pool, streamID string, version int64) error {
	e := storetest.BenchEvent(uuid.NewString(), int(version))
	md := e.Metadata
	_, err := pool.Exec(ctx, rawInsert1SQL, uuid.Must(uuid.NewV7()), "session", streamID, version+1, e.Type,
		string(e.Data), md.ActorID, md.ActorRole, md.CommandID, md.CorrelationID, md.CausationID, md.ClinicID,
		md.OccurredAt)
	return err
}

func inParallel(n int, f func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// comparePaired runs store and raw in turns and reports both rates and
// their ratio. It also reports the CPU time each spends per event, in this
// process (user+sys, measured around each turn, so background work such as
// GC lands in whichever turn it happens in) and in the server sessions of
// each side (read from /proc, so only with the server on this machine),
// and their ratio as raw CPU / store CPU: unlike the rates, that barely
// moves when other work shares the machine.
func comparePaired(b *testing.B, pool *pgxpool.Pool, store, raw func(ctx context.Context) (int, error)) {
	ctx := context.Background()
	var (
		storeTime, rawTime     time.Duration
		storeCPU, rawCPU       time.Duration
		storeEvents, rawEvents int
	)
	run := func(f func(context.Context) (int, error), spent, cpu *time.Duration, events *int) {
		start, startCPU := time.Now(), processCPU()
		n, err := f(ctx)
		*spent += time.Since(start)
		*cpu += processCPU() - startCPU
		if err != nil {
			b.Fatal(err)
		}
		*events += n
	}
	storeServer, rawServer := serverCPU(b, pool, storeApplication), serverCPU(b, pool, rawApplication)
	for b.Loop() {
		run(store, &storeTime, &storeCPU, &storeEvents)
		run(raw, &rawTime, &rawCPU, &rawEvents)
	}
	storeServer = serverCPU(b, pool, storeApplication) - storeServer
	rawServer = serverCPU(b, pool, rawApplication) - rawServer
	storeRate := float64(storeEvents) / storeTime.Seconds()
	rawRate := float64(rawEvents) / rawTime.Seconds()
	b.ReportMetric(storeRate, "store-events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(storeRate/rawRate, "store/raw")
	perEvent := func(d time.Duration, events int) float64 { return float64(d.Microseconds()) / float64(events) }
	b.ReportMetric(perEvent(storeCPU, storeEvents), "store-go-us/event")
	b.ReportMetric(perEvent(rawCPU, rawEvents), "raw-go-us/event")
	if storeServer > 0 && rawServer > 0 {
		b.ReportMetric(perEvent(storeServer, storeEvents), "store-pg-us/event")
		b.ReportMetric(perEvent(rawServer, rawEvents), "raw-pg-us/event")
		b.ReportMetric(perEvent(rawCPU+rawServer, rawEvents)/perEvent(storeCPU+storeServer, storeEvents), "store/raw-cpu")
	}
}

// processCPU is the user+sys time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is the user+sys time used so far by the server processes of
// this database's sessions named application, or 0 when /proc does not
// show them (a server on another machine).
func serverCPU(b *testing.B, pool *pgxpool.Pool, application string) time.Duration {
	rows, err := pool.Query(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`, application)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0
		}
		// After "pid (comm) ", utime and stime are fields 12 and 13, in
		// clock ticks (100 a second on Linux).
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 13 {
			return 0
		}
		utime, _ := strconv.ParseInt(fields[11], 10, 64)
		stime, _ := strconv.ParseInt(fields[12], 10, 64)
		total += time.Duration(utime+stime) * 10 * time.Millisecond
	}
	return total
}
