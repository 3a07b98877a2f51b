package reactions

import (
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/projections/bus"
	"github.com/careflow/careflow/projections/notify"
)

// TestReactionsOverTheBus runs the whole chain as careflow does: the relay
// publishes the store's log on an in-process bus, the router hands it to
// the three consumers, and Run fires timers, delivers notifications and
// posts webhooks, all by the fake clock.
func TestReactionsOverTheBus(t *testing.T) {
	w := newWorld(t)
	ctx := w.ctx
	rc := newReceiver(w.clock, nil)
	w.register(w.serve(rc).URL, "session.*", "assignment.completed")

	transport, err := bus.NewTransport(ctx, bus.Config{Transport: bus.TransportGoChannel}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = transport.Close() })
	publisher, err := transport.NewPublisher()
	require.NoError(t, err)
	router, err := bus.NewRouter(bus.RouterConfig{RetryInitialInterval: time.Millisecond, RetryMaxInterval: 10 * time.Millisecond}, publisher, nil)
	require.NoError(t, err)
	require.NoError(t, w.r.AddHandlers(router, transport.NewSubscriber))

	runCtx, stop := context.WithCancel(ctx)
	var running sync.WaitGroup
	t.Cleanup(func() {
		stop()
		running.Wait()
	})
	running.Add(1)
	go func() { defer running.Done(); _ = router.Run(runCtx) }()
	select {
	case <-router.Running():
	case <-time.After(waitBound):
		t.Fatal("router did not start")
	}
	t.Cleanup(func() { _ = router.Close() })

	checkpointDB, err := bus.OpenSQLite(ctx, filepath.Join(t.TempDir(), "relay.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = checkpointDB.Close() })
	checkpoints, err := bus.NewSQLCheckpoints(ctx, checkpointDB, bus.SQLite, nil)
	require.NoError(t, err)
	// The organization's history went by before: the relay starts after it.
	require.NoError(t, checkpoints.Save(ctx, "relay", w.fed))
	relay, err := bus.NewRelay(bus.RelayConfig{Name: "relay", Store: w.store, Publisher: publisher, Checkpoints: checkpoints})
	require.NoError(t, err)
	running.Add(2)
	go func() { defer running.Done(); _ = relay.Run(runCtx) }()
	go func() { defer running.Done(); _ = w.r.Run(runCtx) }()

	// A session that started an hour ago activates without anyone acting.
	w.clock.Set(careStart.Add(time.Hour))
	res, err := w.care.ScheduleSession(ctx, commands.Meta{Actor: w.p1}, commands.ScheduleSession{
		ClientID: w.k1.ID, Title: secretTitle, Start: careStart, Homework: []string{books.PHQ9ID},
	})
	require.NoError(t, err)
	session := res.Sessions[0].ID
	require.Eventually(t, func() bool { return len(w.eventsOf(session, "session.activated")) == 1 }, waitBound, 5*time.Millisecond)

	// An item-9 answer reaches both providers of the team, urgently.
	w.completePHQ9(session, w.assignmentOf(session), 1)
	require.Eventually(t, func() bool { return len(w.deliverer.all()) == 2 }, waitBound, 5*time.Millisecond)
	for _, n := range w.deliverer.all() {
		assert.Equal(t, notify.KindAssignmentCompleted, n.Kind)
		assert.True(t, n.Urgent)
		assert.Contains(t, []string{w.p1.ID, w.p2.ID}, n.RecipientID)
	}

	// The receiver got scheduled, activated and completed, signed, in order.
	require.Eventually(t, func() bool { return len(rc.accepted()) == 3 }, waitBound, 5*time.Millisecond)
	bodies := rc.accepted()
	assertOncePerEventInStreamOrder(t, bodies)
	assert.Equal(t, []string{"session.scheduled", "session.activated", "assignment.completed"}, []string{bodies[0].Type, bodies[1].Type, bodies[2].Type})
	for _, r := range rc.all() {
		assert.True(t, r.verified)
		assert.NotEqual(t, http.StatusUnauthorized, r.status)
	}

	stop()
	require.NoError(t, router.Close())
	running.Wait()
	assert.Len(t, w.eventsOf(session, "session.activated"), 1, "still exactly once")
}
