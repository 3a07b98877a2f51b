package projections

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/eventstore/sqlite"
)

// generous bounds a wait that should end long before it; it is never what
// a test asserts on.
const generous = 30 * time.Second

// storeFactory opens an empty event store whose RecordedAt comes from clock.
type storeFactory func(t *testing.T, clock func() time.Time) eventstore.Store

var storeFactories = map[string]storeFactory{
	"memory": func(t *testing.T, clock func() time.Time) eventstore.Store {
		s := memory.New(eventstore.Options{Clock: clock})
		t.Cleanup(func() { _ = s.Close() })
		return s
	},
	"sqlite": func(t *testing.T, clock func() time.Time) eventstore.Store {
		s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")},
			eventstore.Options{Clock: clock})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	},
}

// viewsFactory returns where a new, empty read-model database lives: a
// SQLite file path or a PostgreSQL URL, for OpenDB.
type viewsFactory func(t *testing.T) string

var viewsFactories = map[string]viewsFactory{
	"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "read.db") },
	"postgres": func(t *testing.T) string { return pgtest.NewDatabase(t) },
}

// forEachStore runs test against every event store backend with SQLite
// read models, and once with the read models on PostgreSQL.
func forEachStore(t *testing.T, test func(t *testing.T, newStore storeFactory, viewsAt viewsFactory)) {
	for _, c := range []struct{ name, store, views string }{
		{"memory", "memory", "sqlite"},
		{"sqlite", "sqlite", "sqlite"},
		{"postgres_views", "memory", "postgres"},
	} {
		t.Run(c.name, func(t *testing.T) { test(t, storeFactories[c.store], viewsFactories[c.views]) })
	}
}

// forEachDB runs test against every read-model database backend.
func forEachDB(t *testing.T, test func(t *testing.T, viewsAt viewsFactory)) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) { test(t, viewsFactories[name]) })
	}
}

// manualClock is a clock tests move by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// hook runs before the counting projection applies an event.
type hook func(ctx context.Context, t TableNames, e eventstore.RecordedEvent) error

// countingProjection counts events per stream and lists every application
// of an event, so a test can see an event applied twice or never.
type countingProjection struct {
	name    string
	version int
	hook    atomic.Pointer[hook]
}

func newCounting(name string) *countingProjection {
	return &countingProjection{name: name, version: 1}
}

func (p *countingProjection) setHook(h hook) {
	if h == nil {
		p.hook.Store(nil)
		return
	}
	p.hook.Store(&h)
}

func (p *countingProjection) Name() string     { return p.name }
func (p *countingProjection) Version() int     { return p.version }
func (p *countingProjection) Tables() []string { return []string{p.streams(), p.applied()} }
func (p *countingProjection) streams() string  { return p.name + "_streams" }
func (p *countingProjection) applied() string  { return p.name + "_applied" }

func (p *countingProjection) Schema(t TableNames) []string {
	return []string{
		`CREATE TABLE ` + t.Of(p.streams()) + ` (stream TEXT PRIMARY KEY, events BIGINT NOT NULL, last_position BIGINT NOT NULL)`,
		`CREATE TABLE ` + t.Of(p.applied()) + ` (event_id TEXT NOT NULL, position BIGINT NOT NULL)`,
		`CREATE INDEX ` + t.Of(p.applied()) + `_by_event ON ` + t.Of(p.applied()) + ` (event_id)`,
	}
}

func (p *countingProjection) Apply(ctx context.Context, tx *sql.Tx, t TableNames, e eventstore.RecordedEvent) error {
	if h := p.hook.Load(); h != nil {
		if err := (*h)(ctx, t, e); err != nil {
			return err
		}
	}
	if _, err := Exec(ctx, tx, `INSERT INTO `+t.Of(p.applied())+` (event_id, position) VALUES (?, ?)`,
		e.ID.String(), e.Position); err != nil {
		return err
	}
	_, err := Exec(ctx, tx, `INSERT INTO `+t.Of(p.streams())+` (stream, events, last_position) VALUES (?, 1, ?)
		ON CONFLICT (stream) DO UPDATE SET events = `+t.Of(p.streams())+`.events + 1, last_position = excluded.last_position`,
		e.Stream.String(), e.Position)
	return err
}

// failAt makes the projection fail on the event at position.
func failAt(position int64, err error) hook {
	return func(_ context.Context, _ TableNames, e eventstore.RecordedEvent) error {
		if e.Position == position {
			return err
		}
		return nil
	}
}

// appendEvents appends n events spread over a few streams, one append per
// event, and returns the position of the last one.
func appendEvents(t *testing.T, store eventstore.Store, n int) int64 {
	t.Helper()
	var last int64
	for i := range n {
		data, err := json.Marshal(map[string]int{"n": i})
		require.NoError(t, err)
		res, err := store.Append(context.Background(), eventstore.NewStreamID("client", fmt.Sprintf("c%d", i%5)),
			eventstore.AnyVersion, []eventstore.NewEvent{{Type: "test.happened", Data: data}})
		require.NoError(t, err)
		last = res.LastPosition()
	}
	return last
}

func openTestDB(t *testing.T, path string) *DB {
	t.Helper()
	db, err := OpenDB(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// running is a Run in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startRunner runs r until the test ends or stop is called, and returns
// once Run has prepared the projections and is following the log.
func startRunner(t *testing.T, r *Runner) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { run.done <- r.Run(ctx) }()
	t.Cleanup(func() { _ = run.stop() })
	require.Eventually(t, func() bool {
		select {
		case err := <-run.done:
			run.done <- err
			return true
		default:
		}
		isRunning, _ := r.runState()
		return isRunning
	}, generous, time.Millisecond)
	return run
}

// stop cancels Run and returns what it returned.
func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
	return r.err
}

// waitFor asserts the projection reaches position.
func waitFor(t *testing.T, r *Runner, name string, position int64) {
	t.Helper()
	reached, err := r.WaitFor(context.Background(), name, position, generous)
	require.NoError(t, err)
	require.True(t, reached, "%s did not reach position %d", name, position)
}

// applications counts, per position, how often the projection applied the
// event there, in the active generation.
func applications(t *testing.T, db *DB, p *countingProjection) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	err := db.Read(context.Background(), p.name, func(tx *sql.Tx, tn TableNames) error {
		rows, err := tx.Query(`SELECT position, COUNT(*) FROM ` + tn.Of(p.applied()) + ` GROUP BY position`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var position int64
			var n int
			if err := rows.Scan(&position, &n); err != nil {
				return err
			}
			out[position] = n
		}
		return rows.Err()
	})
	require.NoError(t, err)
	return out
}

// requireEachAppliedOnce asserts events 1..head were applied exactly once.
func requireEachAppliedOnce(t *testing.T, db *DB, p *countingProjection, head int64) {
	t.Helper()
	want := map[int64]int{}
	for pos := int64(1); pos <= head; pos++ {
		want[pos] = 1
	}
	require.Equal(t, want, applications(t, db, p))
}

func statusOf(t *testing.T, r *Runner, name string) Status {
	t.Helper()
	all, err := r.Status(context.Background())
	require.NoError(t, err)
	for _, s := range all {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %s", name)
	return Status{}
}

func tableExists(t *testing.T, db *DB, table string) bool {
	t.Helper()
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if db.url != "" {
		q = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?`
	}
	var n int
	require.NoError(t, db.read.QueryRow(q, table).Scan(&n))
	return n == 1
}

// syncBuffer is a log destination safe for the runner's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func bufferLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}
