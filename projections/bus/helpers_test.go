package bus

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
)

// waitBound bounds every wait in these tests; it is a deadline against
// hanging, not a speed assertion.
const waitBound = 30 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, waitBound, 5*time.Millisecond, "waiting for %s", what)
}

// appendInterleaved appends perStream events to each of streams, one
// stream after the other per round, so streams interleave in the log.
// Each event's type is its stream type + ".noted".
func appendInterleaved(t *testing.T, ctx context.Context, store eventstore.Store, streams []eventstore.StreamID, perStream int) {
	t.Helper()
	for round := 0; round < perStream; round++ {
		for _, s := range streams {
			data, err := json.Marshal(map[string]any{"round": round, "note": "PHI-" + s.ID})
			require.NoError(t, err)
			_, err = store.Append(ctx, s, eventstore.AnyVersion, []eventstore.NewEvent{{
				Type: s.Type + ".noted",
				Data: data,
				Metadata: eventstore.Metadata{
					CorrelationID: fmt.Sprintf("corr-%s-%d", s.ID, round),
					ClinicID:      "clinic-1",
					OccurredAt:    time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC),
				},
			}})
			require.NoError(t, err)
		}
	}
}

func newMemoryStore(t *testing.T) eventstore.Store {
	t.Helper()
	store := memory.New(eventstore.Options{})
	t.Cleanup(func() { _ = store.Close() })
	return store
}

func openCheckpoints(t *testing.T, ctx context.Context, path string) (*SQLCheckpoints, *sql.DB) {
	t.Helper()
	db, err := OpenSQLite(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	cp, err := NewSQLCheckpoints(ctx, db, SQLite, nil)
	require.NoError(t, err)
	return cp, db
}

func openInbox(t *testing.T, ctx context.Context, dir string) *Inbox {
	t.Helper()
	inbox, err := OpenSQLiteInbox(ctx, filepath.Join(dir, "inbox.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = inbox.Close() })
	return inbox
}

// delivery is one message a test consumer saw.
type delivery struct {
	eventID  string
	stream   string
	version  int64
	position int64
}

// recorder is a consumer that writes one effect row per handled event in
// the inbox's transaction and remembers every raw delivery, duplicates
// included.
type recorder struct {
	mu         sync.Mutex
	deliveries []delivery
}

func (r *recorder) raw() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.deliveries...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.deliveries)
}

// observe records the raw delivery, then hands over to the inbox.
func (r *recorder) observe(t *testing.T, next message.NoPublishHandlerFunc) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		e, err := Decode(msg)
		if err != nil {
			t.Errorf("decode: %v", err)
			return err
		}
		r.mu.Lock()
		r.deliveries = append(r.deliveries, delivery{eventID: e.ID.String(), stream: e.Stream.String(), version: e.Version, position: e.Position})
		r.mu.Unlock()
		return next(msg)
	}
}

func createEffects(t *testing.T, ctx context.Context, db *sql.DB) {
	t.Helper()
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS effects (event_id TEXT NOT NULL, stream TEXT NOT NULL, version BIGINT NOT NULL)`)
	require.NoError(t, err)
}

// writeEffect is a TxHandlerFunc that writes a row per event it handles;
// it has no uniqueness constraint, so a duplicate effect would show.
func writeEffect(dialect Dialect) TxHandlerFunc {
	insert := dialect.bind(`INSERT INTO effects (event_id, stream, version) VALUES (?, ?, ?)`)
	return func(ctx context.Context, tx *sql.Tx, msg *message.Message) error {
		e, err := Decode(msg)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, insert, e.ID.String(), e.Stream.String(), e.Version)
		return err
	}
}

func countRows(t *testing.T, ctx context.Context, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRowContext(ctx, query, args...).Scan(&n))
	return n
}

// assertOncePerEventInStreamOrder checks that deliveries hold every event
// of events exactly once and, per stream, in version order.
func assertOncePerEventInStreamOrder(t *testing.T, events []eventstore.RecordedEvent, deliveries []delivery) {
	t.Helper()
	require.Len(t, deliveries, len(events))
	seen := map[string]bool{}
	lastVersion := map[string]int64{}
	for _, d := range deliveries {
		require.False(t, seen[d.eventID], "event %s delivered twice", d.eventID)
		seen[d.eventID] = true
		require.Equal(t, lastVersion[d.stream]+1, d.version, "stream %s out of order", d.stream)
		lastVersion[d.stream] = d.version
	}
	for _, e := range events {
		require.True(t, seen[e.ID.String()], "event %s at %d not delivered", e.ID, e.Position)
	}
}

// flakyCheckpoints fails the Save of one position once.
type flakyCheckpoints struct {
	Checkpoints
	failAt int64
	failed atomic.Bool
}

var errCheckpointWrite = errors.New("checkpoint write failed (injected)")

func (f *flakyCheckpoints) Save(ctx context.Context, name string, position int64) error {
	if position == f.failAt && f.failed.CompareAndSwap(false, true) {
		return errCheckpointWrite
	}
	return f.Checkpoints.Save(ctx, name, position)
}

// runRouter starts router and waits until it runs. The returned stop
// closes it (once); cleanup stops it too.
func runRouter(t *testing.T, router *message.Router) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- router.Run(context.Background()) }()
	select {
	case <-router.Running():
	case err := <-done:
		t.Fatalf("router stopped before running: %v", err)
	case <-time.After(waitBound):
		t.Fatal("router did not start")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			require.NoError(t, router.Close())
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

// startRelay runs relay until the returned stop is called; stop returns
// Run's error.
func startRelay(t *testing.T, relay *Relay) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(waitBound):
				err = errors.New("relay did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}
