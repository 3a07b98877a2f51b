package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/careflow/careflow/eventstore"
)

// BenchLogSize is the number of events ReadAll100k and CatchUp read.
const BenchLogSize = 100_000

// RunBenchmarks measures a backend with the same workloads as every other
// backend, so their figures compare. newStore makes a fresh, empty store for
// one benchmark and registers its Close with b.Cleanup. Throughputs are
// reported as events/s.
//
//   - Append1/writers=N: N goroutines, one event per Append, each on its own
//     stream at the version it expects.
//   - Batch100: one goroutine appending 100 events per call.
//   - ReadAll100k: paging through a 100,000-event log with ReadAll.
//   - CatchUp: a subscription catching up over a 100,000-event log.
func RunBenchmarks(b *testing.B, newStore func(b *testing.B) eventstore.Store) {
	b.Run("Append1", func(b *testing.B) {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) { benchAppend1(b, newStore, writers) })
		}
	})
	b.Run("Batch100", func(b *testing.B) { benchBatch(b, newStore, 100) })
	b.Run("ReadAll100k", func(b *testing.B) { benchReadAll(b, newStore) })
	b.Run("CatchUp", func(b *testing.B) { benchCatchUp(b, newStore) })
}

// BenchEvent is the event the benchmarks write: a typical command's event,
// a few hundred bytes of JSON with every metadata field set.
func BenchEvent(commandID string, n int) eventstore.NewEvent {
	return eventstore.NewEvent{
		Type: "test.happened",
		Data: fmt.Appendf(nil, `{"clientId":"0190c3d2-7f4a-7b8e-9c1d-2e3f4a5b6c7d","sessionId":"0190c3d2-7f4a-7b8e-9c1d-%012d",`+
			`"title":"Weekly check-in","note":"Client reports sleeping better; PHQ-9 to be repeated next week.","n":%d}`, n, n),
		Metadata: eventstore.Metadata{
			ActorID:       "0190c3d2-0000-7000-8000-000000000001",
			ActorRole:     "provider",
			CommandID:     commandID,
			CorrelationID: commandID,
			CausationID:   commandID,
			ClinicID:      "0190c3d2-0000-7000-8000-0000000000c1",
			OccurredAt:    time.Date(2026, 11, 22, 10, 0, 0, n, time.UTC),
		},
	}
}

// BenchID is a fresh UUIDv7 string, the kind of id careflow generates for
// commands and aggregates (time-ordered, so index inserts land together).
func BenchID() string { return uuid.Must(uuid.NewV7()).String() }

func reportEventsPerSecond(b *testing.B, events int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(events)/s, "events/s")
	}
}

func benchAppend1(b *testing.B, newStore func(b *testing.B) eventstore.Store, writers int) {
	s := newStore(b)
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
			stream := eventstore.NewStreamID("session", BenchID())
			var version int64
			for next.Add(1) <= int64(b.N) {
				res, err := s.Append(ctx, stream, eventstore.Exactly(version),
					[]eventstore.NewEvent{BenchEvent(BenchID(), int(version))})
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
	reportEventsPerSecond(b, b.N)
}

func benchBatch(b *testing.B, newStore func(b *testing.B) eventstore.Store, size int) {
	s := newStore(b)
	ctx := context.Background()
	batch := make([]eventstore.NewEvent, size)
	appended := 0
	b.ReportAllocs()
	for b.Loop() {
		commandID := BenchID()
		for i := range batch {
			batch[i] = BenchEvent(commandID, i)
		}
		if _, err := s.Append(ctx, eventstore.NewStreamID("session", BenchID()), eventstore.NoStream, batch); err != nil {
			b.Fatal(err)
		}
		appended += size
	}
	reportEventsPerSecond(b, appended)
}

// FillBenchLog appends n events in streams of 100 events each.
func FillBenchLog(tb testing.TB, s eventstore.Store, n int) {
	tb.Helper()
	ctx := context.Background()
	const perStream = 100
	batch := make([]eventstore.NewEvent, 0, perStream)
	for done := 0; done < n; done += len(batch) {
		batch = batch[:0]
		commandID := BenchID()
		for i := 0; i < perStream && done+i < n; i++ {
			batch = append(batch, BenchEvent(commandID, done+i))
		}
		if _, err := s.Append(ctx, eventstore.NewStreamID("session", BenchID()), eventstore.NoStream, batch); err != nil {
			tb.Fatal(err)
		}
	}
}

func benchReadAll(b *testing.B, newStore func(b *testing.B) eventstore.Store) {
	s := newStore(b)
	FillBenchLog(b, s, BenchLogSize)
	ctx := context.Background()
	read := 0
	b.ReportAllocs()
	for b.Loop() {
		var after int64
		got := 0
		for {
			page, err := s.ReadAll(ctx, after, eventstore.CatchUpBatch)
			if err != nil {
				b.Fatal(err)
			}
			got += len(page)
			if len(page) < eventstore.CatchUpBatch {
				break
			}
			after = page[len(page)-1].Position
		}
		if got != BenchLogSize {
			b.Fatalf("read %d events, want %d", got, BenchLogSize)
		}
		read += got
	}
	reportEventsPerSecond(b, read)
}

var errBenchCaughtUp = errors.New("storetest: caught up")

func benchCatchUp(b *testing.B, newStore func(b *testing.B) eventstore.Store) {
	s := newStore(b)
	FillBenchLog(b, s, BenchLogSize)
	ctx := context.Background()
	head, err := s.HeadPosition(ctx)
	if err != nil {
		b.Fatal(err)
	}
	handled := 0
	b.ReportAllocs()
	for b.Loop() {
		err := s.Subscribe(ctx, 0, func(e eventstore.RecordedEvent) error {
			handled++
			if e.Position == head {
				return errBenchCaughtUp
			}
			return nil
		})
		if !errors.Is(err, errBenchCaughtUp) {
			b.Fatal(err)
		}
	}
	reportEventsPerSecond(b, handled)
}
