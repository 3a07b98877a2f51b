package bus

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// postgresTestURL is the server the tests create their databases on.
var postgresTestURL = envOr("CAREFLOW_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")

// newPostgresDatabase creates a throw-away database, dropped at cleanup,
// and returns its URL.
func newPostgresDatabase(t *testing.T) string {
	t.Helper()
	requireService(t, "PostgreSQL", func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, postgresTestURL)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	admin, err := pgx.Connect(ctx, postgresTestURL)
	require.NoError(t, err)
	defer func() { _ = admin.Close(context.Background()) }()
	name := "careflow_bus_test_" + randomSuffix(t)
	_, err = admin.Exec(ctx, `CREATE DATABASE `+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		admin, err := pgx.Connect(ctx, postgresTestURL)
		require.NoError(t, err)
		defer func() { _ = admin.Close(context.Background()) }()
		_, err = admin.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
		require.NoError(t, err)
	})
	u, err := url.Parse(postgresTestURL)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

func TestRelayOverPostgreSQLWithInboxAndCheckpointsInPostgreSQL(t *testing.T) {
	dbURL := newPostgresDatabase(t)
	ctx := testContext(t)
	transport, err := NewTransport(ctx, Config{Transport: TransportPostgres, PostgresURL: dbURL, PostgresPollInterval: 20 * time.Millisecond}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, transport.Close()) })
	publisher, err := transport.NewPublisher()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, publisher.Close()) })

	db, err := sql.Open("pgx", dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	inbox, err := NewInbox(ctx, db, PostgreSQL, nil)
	require.NoError(t, err)
	createEffects(t, ctx, db)
	checkpoints, err := NewSQLCheckpoints(ctx, db, PostgreSQL, nil)
	require.NoError(t, err)

	rec := &recorder{}
	router, err := NewRouter(RouterConfig{MaxRetries: 2, RetryInitialInterval: time.Millisecond, RetryMaxInterval: time.Millisecond}, publisher, nil)
	require.NoError(t, err)
	handle := rec.observe(t, inbox.HandleTx("audit", writeEffect(PostgreSQL)))
	for _, topic := range []string{"careflow.session", "careflow.client"} {
		sub, err := transport.NewSubscriber("audit")
		require.NoError(t, err)
		router.AddConsumerHandler("audit_"+topic, topic, sub, handle)
	}
	runRouter(t, router)

	store := newMemoryStore(t)
	appendInterleaved(t, ctx, store, testStreams, 10)
	relay, err := NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: publisher, Checkpoints: &flakyCheckpoints{Checkpoints: checkpoints, failAt: 5}, BatchSize: 1})
	require.NoError(t, err)
	require.ErrorIs(t, relay.Run(ctx), errCheckpointWrite)
	saved, err := checkpoints.Load(ctx, "relay")
	require.NoError(t, err)
	require.Equal(t, int64(4), saved)

	relay, err = NewRelay(RelayConfig{Name: "relay", Store: store, Publisher: publisher, Checkpoints: checkpoints, BatchSize: 1})
	require.NoError(t, err)
	stop := startRelay(t, relay)
	waitUntil(t, "30 events relayed", func() bool { return relay.Position() == 30 })
	require.ErrorIs(t, stop(), context.Canceled)
	// The table transport keeps both copies of position 5.
	waitUntil(t, "31 deliveries", func() bool { return rec.count() == 31 })
	waitUntil(t, "30 effects", func() bool { return countRows(t, ctx, db, `SELECT count(*) FROM effects`) == 30 })

	events, err := store.ReadAll(ctx, 0, 100)
	require.NoError(t, err)
	fifth := events[4]
	var once []delivery
	twice := 0
	for _, d := range rec.raw() {
		if d.eventID == fifth.ID.String() {
			twice++
			if twice == 2 {
				continue
			}
		}
		once = append(once, d)
	}
	assert.Equal(t, 2, twice)
	assertOncePerEventInStreamOrder(t, events, once)
	assert.Equal(t, 30, countRows(t, ctx, db, `SELECT count(*) FROM effects`), "the inbox kept one effect per event")
	assert.Equal(t, 30, countRows(t, ctx, db, `SELECT count(*) FROM bus_inbox WHERE consumer = 'audit'`))

	// Inbox and checkpoints behave in PostgreSQL as in SQLite.
	require.NoError(t, checkpoints.Save(ctx, "relay", 3))
	saved, err = checkpoints.Load(ctx, "relay")
	require.NoError(t, err)
	assert.Equal(t, int64(30), saved, "a checkpoint never moves back")
	seen, err := inbox.Seen(ctx, "audit", fifth.ID.String())
	require.NoError(t, err)
	assert.True(t, seen)
}

func TestPoisonQueueOverPostgreSQLStoresNoPayload(t *testing.T) {
	dbURL := newPostgresDatabase(t)
	ctx := testContext(t)
	transport, err := NewTransport(ctx, Config{Transport: TransportPostgres, PostgresURL: dbURL, PostgresPollInterval: 20 * time.Millisecond}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, transport.Close()) })
	publisher, err := transport.NewPublisher()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, publisher.Close()) })
	db, err := sql.Open("pgx", dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })

	router, err := NewRouter(RouterConfig{MaxRetries: 1, RetryInitialInterval: time.Millisecond, RetryMaxInterval: time.Millisecond}, publisher, nil)
	require.NoError(t, err)
	sub, err := transport.NewSubscriber("notifier")
	require.NoError(t, err)
	router.AddConsumerHandler("notifier", "careflow.client", sub, func(*message.Message) error {
		return errors.New("no template for this event")
	})
	runRouter(t, router)

	topic, msg, e := relayedMessage(t)
	require.NoError(t, publisher.Publish(topic, msg))

	var payload, metadata string
	waitUntil(t, "a row in the poison table", func() bool {
		err := db.QueryRowContext(ctx, `SELECT payload::text, metadata::text FROM "watermill_careflow.poison"`).Scan(&payload, &metadata)
		return err == nil
	})
	assert.NotContains(t, payload, "PHI-SECRET")
	assert.NotContains(t, metadata, "PHI-SECRET")
	assert.Contains(t, payload, e.ID.String())
	assert.Contains(t, metadata, `"event_id":"`+e.ID.String()+`"`)
	assert.Contains(t, metadata, "no template for this event")
	// The original message, PHI and all, stays only in its own topic.
	var original string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT payload::text FROM "watermill_careflow.client"`).Scan(&original))
	assert.Contains(t, original, "PHI-SECRET")
}
