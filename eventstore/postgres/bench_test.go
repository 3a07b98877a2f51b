package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/eventstore/storetest"
)

// CatchUpLogSize is the log BenchmarkCatchUp1M and the raw SelectAll1M read.
const catchUpLogSize = 1_000_000

func openBenchStore(b *testing.B) *Store {
	s, err := Open(context.Background(), Config{URL: pgtest.NewDatabase(b), Migrate: true}, eventstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func BenchmarkPostgres(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) eventstore.Store { return openBenchStore(b) })
}

// BenchmarkAppendWorkers is Append1/writers=16 with different numbers of
// append workers, with the NOTIFY in the append transaction (which makes
// commits take turns, so fewer workers mean bigger groups) and after it.
func BenchmarkAppendWorkers(b *testing.B) {
	for _, after := range []bool{false, true} {
		for _, workers := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("notifyAfterCommit=%t/workers=%d", after, workers), func(b *testing.B) {
				cfg := Config{URL: pgtest.NewDatabase(b), Migrate: true, AppendWorkers: workers, NotifyAfterCommit: after}
				s, err := Open(context.Background(), cfg, eventstore.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = s.Close() })
				benchAppendWriters(b, s, 16)
			})
		}
	}
}

// BenchmarkNotifyAfterCommit runs the shared benchmarks with the
// notification sent after the commit and 4 append workers.
func BenchmarkNotifyAfterCommit(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) eventstore.Store {
		cfg := Config{URL: pgtest.NewDatabase(b), Migrate: true, AppendWorkers: 4, NotifyAfterCommit: true}
		s, err := Open(context.Background(), cfg, eventstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// benchAppendWriters is storetest's Append1: writers goroutines, one event
// per Append, each on its own stream.
func benchAppendWriters(b *testing.B, s eventstore.Store, writers int) {
	ctx := context.Background()
	var (
		next   atomic.Int64
		failed atomic.Pointer[error]
		wg     sync.WaitGroup
	)
	b.ResetTimer()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := eventstore.NewStreamID("session", uuid.NewString())
			var version int64
			for next.Add(1) <= int64(b.N) {
				res, err := s.Append(ctx, stream, eventstore.Exactly(version),
					[]eventstore.NewEvent{storetest.BenchEvent(uuid.NewString(), int(version))})
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				version = res.Version
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCatchUp1M is a subscription catching up over a million events,
// decoded into RecordedEvents.
func BenchmarkCatchUp1M(b *testing.B) {
	s := openBenchStore(b)
	storetest.FillBenchLog(b, s, catchUpLogSize)
	ctx := context.Background()
	head, err := s.HeadPosition(ctx)
	if err != nil {
		b.Fatal(err)
	}
	errCaughtUp := errors.New("caught up")
	handled := 0
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := s.Subscribe(ctx, 0, func(e eventstore.RecordedEvent) error {
			n++
			if e.Position == head {
				return errCaughtUp
			}
			return nil
		})
		if !errors.Is(err, errCaughtUp) || n != catchUpLogSize {
			b.Fatalf("read %d events: %v", n, err)
		}
		handled += n
	}
	b.ReportMetric(float64(handled)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRaw is the baseline the store is measured against: plain pgx on
// a table with the same columns and indexes but a bigserial position, with
// the same events, and none of the store's work (version and command
// checks, transaction-id positions, NOTIFY, reading below the horizon).
func BenchmarkRaw(b *testing.B) {
	b.Run("Insert1", func(b *testing.B) {
		b.Run("writers=1", func(b *testing.B) { benchRawInsert(b, 1, 1) })
		b.Run("writers=16", func(b *testing.B) { benchRawInsert(b, 16, 1) })
	})
	// The same with a NOTIFY in each transaction: the ceiling NOTIFY's
	// commit lock puts on one-append-per-transaction designs.
	b.Run("Insert1Notify", func(b *testing.B) {
		b.Run("writers=16", func(b *testing.B) { benchRawInsert(b, 16, -1) })
	})
	b.Run("Insert100", func(b *testing.B) { benchRawInsert(b, 1, 100) })
	b.Run("SelectAll100k", func(b *testing.B) { benchRawSelectAll(b, storetest.BenchLogSize) })
	b.Run("SelectAll1M", func(b *testing.B) { benchRawSelectAll(b, catchUpLogSize) })
}

const rawSchema = `CREATE TABLE raw_events (
	position       bigserial   PRIMARY KEY,
	event_id       uuid        NOT NULL UNIQUE,
	stream_type    text        NOT NULL,
	stream_id      text        NOT NULL,
	version        bigint      NOT NULL,
	type           text        NOT NULL,
	schema_version integer     NOT NULL,
	data           jsonb       NOT NULL,
	actor_id       text        NOT NULL,
	actor_role     text        NOT NULL,
	command_id     text        NOT NULL,
	correlation_id text        NOT NULL,
	causation_id   text        NOT NULL,
	clinic_id      text        NOT NULL,
	occurred_at    timestamptz,
	recorded_at    timestamptz NOT NULL,
	first_of_command boolean   NOT NULL,
	UNIQUE (stream_type, stream_id, version)
);
CREATE UNIQUE INDEX raw_events_command_once ON raw_events (stream_type, stream_id, command_id)
	WHERE command_id <> '' AND first_of_command`

func openRaw(b *testing.B) *pgxpool.Pool {
	ctx := context.Background()
	pc, err := pgxpool.ParseConfig(pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	pc.MaxConns = defaultMaxConns
	pc.ConnConfig.RuntimeParams["application_name"] = rawApplication
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, rawSchema); err != nil {
		b.Fatal(err)
	}
	return pool
}

// rawInsertSQL inserts the rows of unnested arrays, in one statement (so in
// one transaction).
const rawInsertSQL = `INSERT INTO raw_events (event_id, stream_type, stream_id, version, type, schema_version, data,
	actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, occurred_at, recorded_at,
	first_of_command)
	SELECT e.id, $1, $2, $3 + e.ord, e.type, 1, e.data::jsonb, e.actor_id, e.actor_role, $4, e.correlation_id,
		e.causation_id, e.clinic_id, e.occurred_at, e.occurred_at, e.ord = 1
	FROM unnest($5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
		$13::timestamptz[]) WITH ORDINALITY AS e(id, type, data, actor_id, actor_role, correlation_id, causation_id,
		clinic_id, occurred_at, ord)`

// rawInsert1SQL is the plain one-row INSERT.
const rawInsert1SQL = `INSERT INTO raw_events (event_id, stream_type, stream_id, version, type, schema_version, data,
	actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, occurred_at, recorded_at,
	first_of_command)
	VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10, $11, $12, $13, $13, true)`

// rawInsert1NotifySQL is rawInsert1SQL with a NOTIFY in the same statement.
const rawInsert1NotifySQL = `WITH ins AS (` + rawInsert1SQL + ` RETURNING position)
	SELECT pg_notify('raw_events', '') FROM ins`

// benchRawInsert commits perTx rows per transaction from writers
// goroutines, each on its own stream; perTx -1 is one row and a NOTIFY.
func benchRawInsert(b *testing.B, writers, perTx int) {
	pool := openRaw(b)
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
			streamID := uuid.NewString()
			var version int64
			for next.Add(1) <= int64(b.N) {
				commandID := uuid.NewString()
				var err error
				if perTx <= 1 {
					e := storetest.BenchEvent(commandID, int(version))
					md := e.Metadata
					query := rawInsert1SQL
					if perTx < 0 {
						query = rawInsert1NotifySQL
					}
					_, err = pool.Exec(ctx, query, uuid.Must(uuid.NewV7()), "session", streamID, version+1, e.Type,
						string(e.Data), md.ActorID, md.ActorRole, md.CommandID, md.CorrelationID, md.CausationID, md.ClinicID,
						md.OccurredAt)
				} else {
					_, err = pool.Exec(ctx, rawInsertSQL, rawArrays(streamID, version, commandID, perTx)...)
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				version += int64(max(perTx, 1))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N*max(perTx, 1))/b.Elapsed().Seconds(), "events/s")
}

// rawArrays are rawInsertSQL's arguments for n benchmark events.
func rawArrays(streamID string, version int64, commandID string, n int) []any {
	var (
		ids                                                       = make([]pgtype.UUID, n)
		types, data, actors, roles, correlations, causes, clinics = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		occurred                                                  = make([]pgtype.Timestamptz, n)
	)
	for i := range n {
		e := storetest.BenchEvent(commandID, i)
		md := e.Metadata
		ids[i] = pgtype.UUID{Bytes: uuid.Must(uuid.NewV7()), Valid: true}
		types[i], data[i], actors[i], roles[i] = e.Type, string(e.Data), md.ActorID, md.ActorRole
		correlations[i], causes[i], clinics[i] = md.CorrelationID, md.CausationID, md.ClinicID
		occurred[i] = pgtype.Timestamptz{Time: md.OccurredAt, Valid: true}
	}
	return []any{"session", streamID, version, commandID, ids, types, data, actors, roles, correlations, causes, clinics, occurred}
}

// benchRawSelectAll pages through a log of size rows, decoding each row
// into a RecordedEvent the way the store does.
func benchRawSelectAll(b *testing.B, size int) {
	pool := openRaw(b)
	ctx := context.Background()
	for done := 0; done < size; done += 100 {
		if _, err := pool.Exec(ctx, rawInsertSQL, rawArrays(uuid.NewString(), 0, uuid.NewString(), 100)...); err != nil {
			b.Fatal(err)
		}
	}
	read := 0
	b.ReportAllocs()
	for b.Loop() {
		var after int64
		got := 0
		for {
			rows, err := pool.Query(ctx, `SELECT `+eventColumns+` FROM raw_events WHERE position > $1 ORDER BY position LIMIT $2`,
				after, eventstore.CatchUpBatch)
			if err != nil {
				b.Fatal(err)
			}
			page, err := scanEvents(rows, eventstore.CatchUpBatch)
			if err != nil {
				b.Fatal(err)
			}
			got += len(page)
			if len(page) < eventstore.CatchUpBatch {
				break
			}
			after = page[len(page)-1].Position
		}
		if got != size {
			b.Fatalf("read %d rows, want %d", got, size)
		}
		read += got
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
}
