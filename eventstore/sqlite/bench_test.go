package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/storetest"
)

func BenchmarkSQLite(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) eventstore.Store {
		s, err := Open(context.Background(), Config{Path: filepath.Join(b.TempDir(), "events.db")}, eventstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// BenchmarkReadStream reads a stream's new events (none: what a command
// handler with the stream cached asks) and a whole ten-event stream, with
// the request-scoped (cancellable) context callers pass.
func BenchmarkReadStream(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: filepath.Join(b.TempDir(), "events.db")}, eventstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	stream := storetest.Stream("session")
	for i := range 10 {
		if _, err := s.Append(ctx, stream, eventstore.AnyVersion,
			[]eventstore.NewEvent{storetest.BenchEvent("", i)}); err != nil {
			b.Fatal(err)
		}
	}
	request, cancel := context.WithCancel(ctx)
	b.Cleanup(cancel)
	for name, from := range map[string]int64{"tail": 11, "all10": 1} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.ReadStream(request, stream, from); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRaw is the baseline the store is measured against: plain
// database/sql on the same table (same schema and indexes, same pragmas:
// WAL, synchronous=FULL), with the same events, but none of the store's
// work (version checks, idempotency look-ups, savepoints, group commit).
func BenchmarkRaw(b *testing.B) {
	b.Run("Insert1", func(b *testing.B) {
		b.Run("writers=1", func(b *testing.B) { benchRawInsert(b, 1, 1, 1) })
		// database/sql serialises the 16 writers on one connection, the way
		// SQLite is used with one writer; see also conns=16.
		b.Run("writers=16", func(b *testing.B) { benchRawInsert(b, 16, 1, 1) })
		// One connection per writer: SQLite's own lock (busy_timeout) arbitrates.
		b.Run("writers=16/conns=16", func(b *testing.B) { benchRawInsert(b, 16, 16, 1) })
	})
	b.Run("Insert100", func(b *testing.B) { benchRawInsert(b, 1, 1, 100) })
	b.Run("SelectAll100k", benchRawSelectAll)
}

func openRaw(b *testing.B, conns int) *sql.DB {
	cfg := Config{Path: filepath.Join(b.TempDir(), "raw.db")}
	cfg.setDefaults()
	db, err := sql.Open("sqlite", cfg.dsn(false))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if err := checkPragmas(context.Background(), db); err != nil {
		b.Fatal(err)
	}
	if err := migrate(context.Background(), db); err != nil {
		b.Fatal(err)
	}
	return db
}

const rawInsert = `INSERT INTO events (event_id, stream_type, stream_id, version, type, schema_version, data,
	actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, occurred_at, recorded_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// rawArgs are the INSERT arguments for the benchmark event the store gets.
func rawArgs(streamID string, version int64, commandID string, n int) []any {
	e := storetest.BenchEvent(commandID, n)
	md := e.Metadata
	return []any{uuid.Must(uuid.NewV7()).String(), "session", streamID, version, e.Type, 1, []byte(e.Data),
		md.ActorID, md.ActorRole, md.CommandID, md.CorrelationID, md.CausationID, md.ClinicID,
		md.OccurredAt.UnixNano(), md.OccurredAt.UnixNano()}
}

// rawWriter appends to one stream of the raw table, perTx rows per
// transaction.
type rawWriter struct {
	db       *sql.DB
	insert   *sql.Stmt
	streamID string
	version  int64
}

func newRawWriter(db *sql.DB, insert *sql.Stmt) *rawWriter {
	return &rawWriter{db: db, insert: insert, streamID: storetest.BenchID()}
}

func (w *rawWriter) commit(ctx context.Context, perTx int) error {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	st := tx.StmtContext(ctx, w.insert)
	commandID := storetest.BenchID()
	for i := range perTx {
		w.version++
		if _, err := st.ExecContext(ctx, rawArgs(w.streamID, w.version, commandID, i)...); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

func prepareRawInsert(b *testing.B, db *sql.DB) *sql.Stmt {
	insert, err := db.PrepareContext(context.Background(), rawInsert)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = insert.Close() })
	return insert
}

// benchRawInsert commits perTx INSERTs per transaction from writers
// goroutines, each on its own stream.
func benchRawInsert(b *testing.B, writers, conns, perTx int) {
	db := openRaw(b, conns)
	insert := prepareRawInsert(b, db)
	ctx := context.Background()
	var (
		next   atomic.Int64
		failed atomic.Pointer[error]
		wg     sync.WaitGroup
	)
	b.ReportAllocs()
	b.ResetTimer()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newRawWriter(db, insert)
			for next.Add(1) <= int64(b.N) {
				if err := w.commit(ctx, perTx); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N*perTx)/s, "events/s")
	}
}

// filledStore opens a store holding the benchmark log of
// storetest.BenchLogSize events.
func filledStore(b *testing.B) *Store {
	s, err := Open(context.Background(), Config{Path: filepath.Join(b.TempDir(), "events.db")}, eventstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	storetest.FillBenchLog(b, s, storetest.BenchLogSize)
	return s
}

// openRawReader opens the store's file for plain database/sql reads.
func openRawReader(b *testing.B, s *Store) *sql.DB {
	db, err := sql.Open("sqlite", s.cfg.dsn(true))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// rawScan scans up to n rows (all when n < 0) into the same Go types the
// store scans into, without building events.
func rawScan(rows *sql.Rows, n int) (int, error) {
	var (
		position, version, recordedAt                            int64
		schemaVersion                                            int
		id                                                       sql.RawBytes
		streamType, streamID, typ, actorID, actorRole, commandID string
		correlationID, causationID, clinicID                     string
		data                                                     []byte
		occurredAt                                               sql.NullInt64
	)
	read := 0
	for (n < 0 || read < n) && rows.Next() {
		if err := rows.Scan(&position, &id, &streamType, &streamID, &version, &typ, &schemaVersion, &data,
			&actorID, &actorRole, &commandID, &correlationID, &causationID, &clinicID, &occurredAt, &recordedAt); err != nil {
			return read, err
		}
		read++
	}
	return read, rows.Err()
}

const rawSelectAllSQL = `SELECT ` + eventColumns + ` FROM events ORDER BY position`

// rawSelectAll scans the whole table in one SELECT.
func rawSelectAll(ctx context.Context, db *sql.DB) (int, error) {
	rows, err := db.QueryContext(ctx, rawSelectAllSQL)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	return rawScan(rows, -1)
}

func benchRawSelectAll(b *testing.B) {
	db := openRawReader(b, filledStore(b))
	ctx := context.Background()
	read := 0
	b.ReportAllocs()
	for b.Loop() {
		n, err := rawSelectAll(ctx, db)
		if err != nil {
			b.Fatal(err)
		}
		if n != storetest.BenchLogSize {
			b.Fatalf("read %d rows, want %d", n, storetest.BenchLogSize)
		}
		read += n
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(read)/s, "events/s")
	}
}

// BenchmarkRatio measures the targets as ratios on a shared, noisy machine:
// each iteration runs the store's workload and then the raw baseline's, so
// both see the same load, and reports both rates and store/raw.
//
//   - Append16VsInsert1: 16 goroutines appending one event per call against
//     one goroutine committing one INSERT per transaction (target >= 5).
//   - Batch100VsInsert100: 100 events per Append against 100 INSERTs per
//     transaction (target >= 0.8).
//   - ReadAllVsSelect: paging through 100k events with ReadAll against one
//     raw SELECT of the same file, taking turns every 10,000 events
//     (target >= 0.5).
func BenchmarkRatio(b *testing.B) {
	b.Run("Append16VsInsert1", func(b *testing.B) {
		s := openBenchStore(b)
		db := openRaw(b, 1)
		raw := newRawWriter(db, prepareRawInsert(b, db))
		streams := make([]eventstore.StreamID, 16)
		versions := make([]int64, len(streams))
		for i := range streams {
			streams[i] = eventstore.NewStreamID("session", storetest.BenchID())
		}
		const perWriter = 16
		comparePaired(b, func(ctx context.Context) (int, error) {
			var wg sync.WaitGroup
			errs := make([]error, len(streams))
			for w := range streams {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range perWriter {
						res, err := s.Append(ctx, streams[w], eventstore.Exactly(versions[w]),
							[]eventstore.NewEvent{storetest.BenchEvent(storetest.BenchID(), int(versions[w]))})
						if err != nil {
							errs[w] = err
							return
						}
						versions[w] = res.Version
					}
				}()
			}
			wg.Wait()
			return len(streams) * perWriter, errors.Join(errs...)
		}, func(ctx context.Context) (int, error) {
			for range perWriter {
				if err := raw.commit(ctx, 1); err != nil {
					return 0, err
				}
			}
			return perWriter, nil
		})
	})
	b.Run("Batch100VsInsert100", func(b *testing.B) {
		s := openBenchStore(b)
		db := openRaw(b, 1)
		raw := newRawWriter(db, prepareRawInsert(b, db))
		batch := make([]eventstore.NewEvent, 100)
		comparePaired(b, func(ctx context.Context) (int, error) {
			commandID := storetest.BenchID()
			for i := range batch {
				batch[i] = storetest.BenchEvent(commandID, i)
			}
			_, err := s.Append(ctx, eventstore.NewStreamID("session", storetest.BenchID()), eventstore.NoStream, batch)
			return len(batch), err
		}, func(ctx context.Context) (int, error) {
			return 100, raw.commit(ctx, 100)
		})
	})
	b.Run("ReadAllVsSelect", func(b *testing.B) {
		s := filledStore(b)
		db := openRawReader(b, s)
		ctx := context.Background()
		var (
			storeTime, rawTime     time.Duration
			storeEvents, rawEvents int
		)
		// Reading 100k events takes long enough for the machine's load to
		// change in between, so the two scans take turns every 10,000
		// events: the raw one is still a single SELECT, paused between
		// turns.
		const turn = 10_000
		for b.Loop() {
			start := time.Now()
			rows, err := db.QueryContext(ctx, rawSelectAllSQL)
			if err != nil {
				b.Fatal(err)
			}
			rawTime += time.Since(start)
			var after int64
			for {
				start = time.Now()
				n, err := rawScan(rows, turn)
				rawTime += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				rawEvents += n

				start = time.Now()
				m := 0
				for m < turn {
					page, err := s.ReadAll(ctx, after, eventstore.CatchUpBatch)
					if err != nil {
						b.Fatal(err)
					}
					m += len(page)
					if len(page) < eventstore.CatchUpBatch {
						break
					}
					after = page[len(page)-1].Position
				}
				storeTime += time.Since(start)
				storeEvents += m
				if n < turn && m < turn {
					break
				}
			}
			_ = rows.Close()
		}
		if storeEvents != rawEvents || storeEvents%storetest.BenchLogSize != 0 {
			b.Fatalf("store read %d events, raw %d rows", storeEvents, rawEvents)
		}
		reportRatio(b, storeEvents, storeTime, rawEvents, rawTime)
	})
}

func openBenchStore(b *testing.B) *Store {
	s, err := Open(context.Background(), Config{Path: filepath.Join(b.TempDir(), "events.db")}, eventstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// comparePaired runs store and raw alternately, once each per iteration,
// and reports their rates and the ratio store/raw.
func comparePaired(b *testing.B, store, raw func(ctx context.Context) (int, error)) {
	ctx := context.Background()
	var (
		storeTime, rawTime     time.Duration
		storeEvents, rawEvents int
	)
	run := func(f func(context.Context) (int, error), spent *time.Duration, events *int) {
		start := time.Now()
		n, err := f(ctx)
		*spent += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		*events += n
	}
	for b.Loop() {
		run(store, &storeTime, &storeEvents)
		run(raw, &rawTime, &rawEvents)
	}
	reportRatio(b, storeEvents, storeTime, rawEvents, rawTime)
}

func reportRatio(b *testing.B, storeEvents int, storeTime time.Duration, rawEvents int, rawTime time.Duration) {
	storeRate := float64(storeEvents) / storeTime.Seconds()
	rawRate := float64(rawEvents) / rawTime.Seconds()
	b.ReportMetric(storeRate, "store-events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(storeRate/rawRate, "store/raw")
}
