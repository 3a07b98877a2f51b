package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/eventstore/storetest"
)

func notifyAfterCommit(s *Store) {
	s.cfg.NotifyAfterCommit = true
	s.cfg.AppendWorkers = 4
}

func TestConformanceNotifyAfterCommit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts eventstore.Options) eventstore.Store {
		return openTestStore(t, pgtest.NewDatabase(t), opts, notifyAfterCommit)
	})
}

// With NotifyAfterCommit, a subscriber on another store (another process)
// is woken by the notification sent after the commit.
func TestNotifyAfterCommitWakesOtherStores(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	writer := openTestStore(t, url, storetest.Options(), notifyAfterCommit)
	reader := openTestStore(t, url, storetest.Options(), notifyAfterCommit, func(s *Store) {
		s.cfg.LostNotifyRecheck = time.Hour // only the notification can wake it
	})
	sub := subscribe(ctx, reader)
	res, err := writer.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("x")})
	require.NoError(t, err)
	assert.Equal(t, ids(res.Events), ids(sub.waitFor(t, res.Events[0])))
}

// A commit whose notification never went out (the writer died in between)
// still reaches idle subscribers through their lost-notification re-check.
func TestNotifyAfterCommitSurvivesALostNotification(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reads := make(chan bool, 100)
	reader := openTestStore(t, url, storetest.Options(), notifyAfterCommit, func(s *Store) {
		s.cfg.LostNotifyRecheck = 50 * time.Millisecond
		s.afterRead = func(blocked bool) {
			select {
			case reads <- blocked:
			default:
			}
		}
	})
	sub := subscribe(ctx, reader)
	<-reads // the subscriber has read the empty log and waits

	// The append statement without its notification, as a writer that
	// committed and died would leave it.
	req, err := newAppendRequest(ctx, storetest.Stream("session"), eventstore.NoStream, "", []eventstore.NewEvent{storetest.Event("x")})
	require.NoError(t, err)
	req.events[0].ID = uuid.Must(uuid.NewV7())
	req.ids[0].Bytes = req.events[0].ID
	req.events[0].SchemaVersion = 1
	rows, xid, err := scanGroup(reader.pool.Query(ctx, appendQuietSQL, newGroup([]*appendRequest{req}).args(time.Now())...))
	require.NoError(t, err)
	require.Len(t, rows, 1)
	got := sub.waitFor(t, eventstore.RecordedEvent{ID: req.events[0].ID})
	require.Len(t, got, 1)
	assert.Equal(t, xid<<positionShift, got[0].Position)
}

// In the default mode too, a commit whose notification was lost reaches an
// idle subscriber, at its next idle re-check.
func TestALostNotificationDelaysButNeverHoldsBackEvents(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reads := make(chan bool, 100)
	reader := openTestStore(t, url, storetest.Options(), func(s *Store) {
		s.cfg.IdleRecheck = 50 * time.Millisecond
		s.afterRead = func(blocked bool) {
			select {
			case reads <- blocked:
			default:
			}
		}
	})
	sub := subscribe(ctx, reader)
	<-reads // the subscriber has read the empty log and waits

	req, err := newAppendRequest(ctx, storetest.Stream("session"), eventstore.NoStream, "", []eventstore.NewEvent{storetest.Event("x")})
	require.NoError(t, err)
	req.events[0].ID = uuid.Must(uuid.NewV7())
	req.ids[0].Bytes = req.events[0].ID
	req.events[0].SchemaVersion = 1
	rows, _, err := scanGroup(reader.pool.Query(ctx, appendQuietSQL, newGroup([]*appendRequest{req}).args(time.Now())...))
	require.NoError(t, err)
	require.Len(t, rows, 1)
	got := sub.waitFor(t, eventstore.RecordedEvent{ID: req.events[0].ID})
	assert.Len(t, got, 1)
}

// A store listens only while it has a subscription, so a store that only
// writes is not woken by every commit; each new subscription listens again
// and is woken by other stores' commits.
func TestListensOnlyWhileSubscribed(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	writer := openTestStore(t, url, storetest.Options())
	reader := openTestStore(t, url, storetest.Options(), func(s *Store) {
		s.cfg.IdleRecheck = time.Hour // only a notification can wake it
	})
	listening := func(s *Store, want bool) {
		t.Helper()
		require.Eventually(t, func() bool { return s.listener.listening.Load() == want }, 10*time.Second, time.Millisecond)
	}
	listening(reader, false)
	for range 2 {
		subCtx, stop := context.WithCancel(ctx)
		sub := subscribe(subCtx, reader)
		listening(reader, true)
		// The first may be read after LISTEN's wake-up; each later one only
		// after a notification.
		for range 3 {
			res, err := writer.Append(ctx, storetest.Stream("session"), eventstore.NoStream, []eventstore.NewEvent{storetest.Event("x")})
			require.NoError(t, err)
			sub.waitFor(t, res.Events[0])
		}
		stop()
		require.ErrorIs(t, <-sub.done, context.Canceled)
		listening(reader, false)
	}
	listening(writer, false) // it never subscribed
}
