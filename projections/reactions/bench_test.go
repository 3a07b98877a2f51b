package reactions

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkTimerLifecycle measures one timer set (in its own transaction,
// as an inbox handler does), found due and marked fired, on SQLite with
// synchronous=FULL.
func BenchmarkTimerLifecycle(b *testing.B) {
	ctx := context.Background()
	db, err := OpenDB(ctx, filepath.Join(b.TempDir(), "timers.db"))
	require.NoError(b, err)
	b.Cleanup(func() { _ = db.Close() })
	timers, err := NewSQLiteTimers(ctx, db)
	require.NoError(b, err)
	due := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	i := 0
	for b.Loop() {
		i++
		id := TimerID(TimerActivateSession, "s"+strconv.Itoa(i), "", 0)
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(b, err)
		require.NoError(b, timers.Set(ctx, tx, 1, Timer{ID: id, Kind: TimerActivateSession, SessionID: "s" + strconv.Itoa(i), Due: due}))
		require.NoError(b, tx.Commit())
		found, err := timers.Due(ctx, due, 10)
		require.NoError(b, err)
		require.Len(b, found, 1)
		require.NoError(b, timers.Finish(ctx, id, due, outcomeActivated))
	}
}

// BenchmarkWebhookDelivery measures queueing one event for an endpoint
// and delivering it, signed, to a local HTTP receiver, recording the
// attempt.
func BenchmarkWebhookDelivery(b *testing.B) {
	w := newWorld(b)
	rc := newReceiver(w.clock, nil)
	w.register(w.serve(rc).URL, "*")
	w.schedule()
	events, err := w.store.ReadAll(w.ctx, w.fed, 100)
	require.NoError(b, err)
	handler := w.handle(w.r.Webhooks().Handler(w.r.Inbox()))
	e := events[0]
	for b.Loop() {
		// A fresh delivery of the same event each round: a new endpoint
		// would grow the query, so the delivery row is reset instead.
		_, err := w.db.ExecContext(w.ctx, `DELETE FROM webhook_deliveries`)
		require.NoError(b, err)
		_, err = w.db.ExecContext(w.ctx, `DELETE FROM bus_inbox WHERE consumer = ?`, ConsumerWebhooks)
		require.NoError(b, err)
		require.NoError(b, handler(e))
		if w.deliverDue() != 1 {
			b.Fatal("not delivered")
		}
	}
}
