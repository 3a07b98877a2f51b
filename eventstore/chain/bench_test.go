package chain

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/sqlite"
)

const benchEvents = 100_000

// benchLog builds, once per benchmark, a SQLite event database of
// benchEvents events of a realistic size (about 300 bytes of data each).
func benchLog(b *testing.B) string {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "template.db")
	store, err := sqlite.Open(ctx, sqlite.Config{Path: path}, eventstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	const perAppend = 100
	meta := eventstore.Metadata{ActorID: "0190c3d2-0000-7000-8000-000000000001", ActorRole: "provider",
		ClinicID: "0190c3d2-0000-7000-8000-0000000000c1", CorrelationID: "req-1", OccurredAt: time.Now()}
	for a := range benchEvents / perAppend {
		events := make([]eventstore.NewEvent, perAppend)
		for i := range events {
			events[i] = eventstore.NewEvent{Type: "message.sent", Metadata: meta, Data: fmt.Appendf(nil,
				`{"threadId":"t-%d","from":"0190c3d2-0000-7000-8000-000000000001","body":"Thank you for the update, `+
					`I will fill in the PHQ-9 before our session on Thursday. Sleep is better, mood about 6/10.",`+
					`"attachments":[],"n":%d,"score":%d.5}`, a, i, i%27)}
		}
		if _, err := store.Append(ctx, eventstore.NewStreamID("thread", fmt.Sprint(a)), eventstore.NoStream, events); err != nil {
			b.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// copyDB copies the database (and its WAL, if one is left) to a new file.
func copyDB(b *testing.B, from string) string {
	b.Helper()
	to := filepath.Join(b.TempDir(), "events.db")
	for _, suffix := range []string{"", "-wal"} {
		src, err := os.Open(from + suffix)
		if os.IsNotExist(err) && suffix != "" {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		dst, err := os.OpenFile(to+suffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			b.Fatal(err)
		}
		_ = src.Close()
		if err := dst.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return to
}

func openBench(b *testing.B, path string) (eventstore.Store, *SQLiteTable) {
	b.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: path}, eventstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	table, err := OpenSQLite(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	return store, table
}

// BenchmarkChainSQLite chains a log of 100k events from scratch, in
// batches of DefaultBatchSize (one transaction, one fsync each), and
// reports events chained per second.
func BenchmarkChainSQLite(b *testing.B) {
	template := benchLog(b)
	ctx := context.Background()
	var chained time.Duration
	for b.Loop() {
		b.StopTimer()
		store, table := openBench(b, copyDB(b, template))
		c, err := NewChainer(store, table, ChainerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		b.StartTimer()
		head, err := c.CatchUp(ctx)
		b.StopTimer()
		chained += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if head.Position != benchEvents {
			b.Fatalf("chained up to %d, want %d", head.Position, benchEvents)
		}
		_ = table.Close()
		_ = store.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N)*benchEvents/chained.Seconds(), "events/s")
}

// BenchmarkVerifySQLite verifies a chained log of 100k events and reports
// events verified per second.
func BenchmarkVerifySQLite(b *testing.B) {
	ctx := context.Background()
	store, table := openBench(b, copyDB(b, benchLog(b)))
	defer store.Close()
	defer table.Close()
	c, err := NewChainer(store, table, ChainerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.CatchUp(ctx); err != nil {
		b.Fatal(err)
	}
	var verifying time.Duration
	for b.Loop() {
		start := time.Now()
		r, err := Verify(ctx, store, table)
		verifying += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if !r.OK() || r.Verified != benchEvents {
			b.Fatalf("unexpected report: %s", r)
		}
	}
	b.ReportMetric(float64(b.N)*benchEvents/verifying.Seconds(), "events/s")
}

// BenchmarkNext is the CPU cost of chaining one event of about 300 bytes
// of data: canonical form (JSON canonicalisation) and two SHA-256.
func BenchmarkNext(b *testing.B) {
	e := sampleEvent()
	e.Data = []byte(`{"threadId":"t-1","from":"0190c3d2-0000-7000-8000-000000000001","body":"Thank you for the update, ` +
		`I will fill in the PHQ-9 before our session on Thursday. Sleep is better, mood about 6/10.",` +
		`"attachments":[],"n":12,"score":12.5}`)
	var h Hash
	for b.Loop() {
		h = Next(h, e).Hash
	}
}
