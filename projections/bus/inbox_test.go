package bus

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errHandler = errors.New("handler failed (injected)")

func eventMessage(t *testing.T, ctx context.Context, id string) *message.Message {
	t.Helper()
	msg := message.NewMessage(id, []byte(`{}`))
	msg.SetContext(ctx)
	return msg
}

func TestInboxHandleTxRollsBackTheRecordWithTheHandlerAndSkipsDuplicates(t *testing.T) {
	ctx := testContext(t)
	inbox := openInbox(t, ctx, t.TempDir())
	db := inbox.DB()
	createEffects(t, ctx, db)
	var calls atomic.Int32
	handle := inbox.HandleTx("projector", func(ctx context.Context, tx *sql.Tx, msg *message.Message) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO effects (event_id, stream, version) VALUES (?, 's', 1)`, msg.UUID)
		require.NoError(t, err)
		if calls.Add(1) == 1 {
			return errHandler // its insert must be rolled back with the inbox row
		}
		return nil
	})

	require.ErrorIs(t, handle(eventMessage(t, ctx, "e-1")), errHandler)
	seen, err := inbox.Seen(ctx, "projector", "e-1")
	require.NoError(t, err)
	assert.False(t, seen, "a failed handler leaves no inbox row")
	assert.Zero(t, countRows(t, ctx, db, `SELECT count(*) FROM effects`))

	require.NoError(t, handle(eventMessage(t, ctx, "e-1")))
	require.NoError(t, handle(eventMessage(t, ctx, "e-1")))
	assert.Equal(t, int32(2), calls.Load(), "the duplicate did not reach the handler")
	assert.Equal(t, 1, countRows(t, ctx, db, `SELECT count(*) FROM effects`))
	seen, err = inbox.Seen(ctx, "projector", "e-1")
	require.NoError(t, err)
	assert.True(t, seen)
	seen, err = inbox.Seen(ctx, "another", "e-1")
	require.NoError(t, err)
	assert.False(t, seen, "dedupe is per consumer")
}

func TestInboxHandleTxAppliesConcurrentDeliveriesOfOneEventOnce(t *testing.T) {
	ctx := testContext(t)
	inbox := openInbox(t, ctx, t.TempDir())
	createEffects(t, ctx, inbox.DB())
	handle := inbox.HandleTx("projector", writeEffectRaw)

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- handle(eventMessage(t, ctx, "e-race"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 1, countRows(t, ctx, inbox.DB(), `SELECT count(*) FROM effects`))
}

func writeEffectRaw(ctx context.Context, tx *sql.Tx, msg *message.Message) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO effects (event_id, stream, version) VALUES (?, 's', 1)`, msg.UUID)
	return err
}

func TestInboxHandleRecordsOnlyAfterSuccess(t *testing.T) {
	ctx := testContext(t)
	inbox := openInbox(t, ctx, t.TempDir())
	var calls atomic.Int32
	handle := inbox.Handle("mailer", func(msg *message.Message) error {
		if calls.Add(1) == 1 {
			return errHandler
		}
		return nil
	})

	require.ErrorIs(t, handle(eventMessage(t, ctx, "e-2")), errHandler)
	seen, err := inbox.Seen(ctx, "mailer", "e-2")
	require.NoError(t, err)
	assert.False(t, seen)

	require.NoError(t, handle(eventMessage(t, ctx, "e-2")))
	require.NoError(t, handle(eventMessage(t, ctx, "e-2")))
	assert.Equal(t, int32(2), calls.Load())
	seen, err = inbox.Seen(ctx, "mailer", "e-2")
	require.NoError(t, err)
	assert.True(t, seen)
}

func TestInboxSurvivesReopeningItsFileAndPrunesByAge(t *testing.T) {
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "inbox.db")
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	inbox, err := OpenSQLiteInbox(ctx, path, clock)
	require.NoError(t, err)
	require.NoError(t, inbox.Record(ctx, "c", "old"))
	now = now.Add(time.Hour)
	require.NoError(t, inbox.Record(ctx, "c", "new"))
	require.NoError(t, inbox.Record(ctx, "c", "new"), "recording twice is harmless")
	require.NoError(t, inbox.Close())

	inbox, err = OpenSQLiteInbox(ctx, path, clock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = inbox.Close() })
	for _, id := range []string{"old", "new"} {
		seen, err := inbox.Seen(ctx, "c", id)
		require.NoError(t, err)
		assert.True(t, seen, id)
	}
	pruned, err := inbox.Prune(ctx, now.Add(-time.Minute))
	require.NoError(t, err)
	assert.Equal(t, int64(1), pruned)
	seen, err := inbox.Seen(ctx, "c", "old")
	require.NoError(t, err)
	assert.False(t, seen)
}

func TestInboxRefusesEmptyKeysAndBadSetups(t *testing.T) {
	ctx := testContext(t)
	inbox := openInbox(t, ctx, t.TempDir())
	require.Error(t, inbox.Record(ctx, "", "e"))
	require.Error(t, inbox.Record(ctx, "c", ""))
	require.Error(t, inbox.HandleTx("", writeEffectRaw)(eventMessage(t, ctx, "e")))
	_, err := NewInbox(ctx, nil, SQLite, nil)
	require.Error(t, err)
	_, err = NewInbox(ctx, inbox.DB(), Dialect(9), nil)
	require.Error(t, err)
}

func TestDialectBindNumbersPlaceholdersForPostgreSQL(t *testing.T) {
	assert.Equal(t, "a = $1 AND b = $2", PostgreSQL.bind("a = ? AND b = ?"))
	assert.Equal(t, "a = ? AND b = ?", SQLite.bind("a = ? AND b = ?"))
}
