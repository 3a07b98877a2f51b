package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

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

// benchRawInsert commits perTx INSERTs per transaction from writers
// goroutines, each on its own stream.
func benchRawInsert(b *testing.B, writers, conns, perTx int) {
	db := openRaw(b, conns)
	ctx := context.Background()
	insert, err := db.PrepareContext(ctx, rawInsert)
	if err != nil {
		b.Fatal(err)
	}
	defer insert.Close()
	var (
		next   atomic.Int64
		failed atomic.Pointer[error]
		wg     sync.WaitGroup
	)
	fail := func(err error) { failed.CompareAndSwap(nil, &err) }
	b.ReportAllocs()
	b.ResetTimer()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			streamID := uuid.NewString()
			var version int64
			for next.Add(1) <= int64(b.N) {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					fail(err)
					return
				}
				st := tx.StmtContext(ctx, insert)
				commandID := uuid.NewString()
				for i := range perTx {
					version++
					if _, err := st.ExecContext(ctx, rawArgs(streamID, version, commandID, i)...); err != nil {
						_ = tx.Rollback()
						fail(err)
						return
					}
				}
				if err := tx.Commit(); err != nil {
					fail(err)
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

// benchRawSelectAll scans the whole 100k-event table in one SELECT, into
// the same Go types the store scans into, without building events.
func benchRawSelectAll(b *testing.B) {
	ctx := context.Background()
	// Fill through the store's own writer so the table holds exactly what
	// ReadAll100k reads.
	store, err := Open(ctx, Config{Path: filepath.Join(b.TempDir(), "events.db")}, eventstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	storetest.FillBenchLog(b, store, storetest.BenchLogSize)
	if err := store.Close(); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite", store.cfg.dsn(true))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()

	read := 0
	b.ReportAllocs()
	for b.Loop() {
		rows, err := db.QueryContext(ctx, `SELECT `+eventColumns+` FROM events ORDER BY position`)
		if err != nil {
			b.Fatal(err)
		}
		var (
			position, version, recordedAt                            int64
			schemaVersion                                            int
			id                                                       sql.RawBytes
			streamType, streamID, typ, actorID, actorRole, commandID string
			correlationID, causationID, clinicID                     string
			data                                                     []byte
			occurredAt                                               sql.NullInt64
		)
		n := 0
		for rows.Next() {
			if err := rows.Scan(&position, &id, &streamType, &streamID, &version, &typ, &schemaVersion, &data,
				&actorID, &actorRole, &commandID, &correlationID, &causationID, &clinicID, &occurredAt, &recordedAt); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		_ = rows.Close()
		if n != storetest.BenchLogSize {
			b.Fatalf("read %d rows, want %d", n, storetest.BenchLogSize)
		}
		read += n
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(read)/s, "events/s")
	}
}
