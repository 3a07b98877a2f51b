package bus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Inbox is a durable record of the messages each consumer has handled,
// keyed by (consumer name, message UUID = event id). It lives in a table
// bus_inbox of a SQLite or PostgreSQL database, so dedupe survives restarts.
//
// Two ways to use it, with different guarantees:
//
//   - HandleTx: the handler writes through the transaction it is given, and
//     the inbox row is inserted first in that same transaction. Either both
//     commit or neither does, so the handler's writes happen exactly once per
//     event, even when the broker redelivers, the process crashes, or two
//     deliveries of one event race (the second waits for the first's write
//     lock, then finds the row). The handler must neither commit nor roll
//     back the transaction.
//   - Handle: for handlers whose effects are elsewhere (an e-mail, a webhook,
//     another database). The id is checked before and recorded after the
//     handler succeeded. The handler runs at least once; once its success is
//     recorded it never runs again for that event. A crash or a failed
//     insert between success and record, or two deliveries racing, can run
//     it again: its effects must tolerate a rare repeat.
type Inbox struct {
	db      *sql.DB
	ownsDB  bool
	dialect Dialect
	now     func() time.Time

	insert string
	seen   string
	prune  string
}

// NewInbox creates the inbox table in db if missing. Pass the database the
// handlers write to so HandleTx can share their transaction. now stamps
// processed_at; nil means time.Now.
func NewInbox(ctx context.Context, db *sql.DB, dialect Dialect, now func() time.Time) (*Inbox, error) {
	if db == nil {
		return nil, errors.New("bus: inbox needs a database")
	}
	if err := dialect.validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	ddl := `CREATE TABLE IF NOT EXISTS bus_inbox (
		consumer     TEXT    NOT NULL,
		event_id     TEXT    NOT NULL,
		processed_at INTEGER NOT NULL,
		PRIMARY KEY (consumer, event_id)
	) STRICT`
	if dialect == PostgreSQL {
		ddl = `CREATE TABLE IF NOT EXISTS bus_inbox (
		consumer     TEXT   NOT NULL,
		event_id     TEXT   NOT NULL,
		processed_at BIGINT NOT NULL,
		PRIMARY KEY (consumer, event_id)
	)`
	}
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		return nil, fmt.Errorf("bus: create inbox table: %w", err)
	}
	return &Inbox{
		db:      db,
		dialect: dialect,
		now:     now,
		insert:  dialect.bind(`INSERT INTO bus_inbox (consumer, event_id, processed_at) VALUES (?, ?, ?) ON CONFLICT (consumer, event_id) DO NOTHING`),
		seen:    dialect.bind(`SELECT 1 FROM bus_inbox WHERE consumer = ? AND event_id = ?`),
		prune:   dialect.bind(`DELETE FROM bus_inbox WHERE processed_at < ?`),
	}, nil
}

// OpenSQLiteInbox opens an inbox in its own SQLite file (see OpenSQLite).
// Close closes the file.
func OpenSQLiteInbox(ctx context.Context, path string, now func() time.Time) (*Inbox, error) {
	db, err := OpenSQLite(ctx, path)
	if err != nil {
		return nil, err
	}
	inbox, err := NewInbox(ctx, db, SQLite, now)
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	inbox.ownsDB = true
	return inbox, nil
}

// DB is the database the inbox lives in.
func (i *Inbox) DB() *sql.DB { return i.db }

// Close closes the database if the inbox opened it.
func (i *Inbox) Close() error {
	if !i.ownsDB {
		return nil
	}
	return i.db.Close()
}

// TxHandlerFunc handles one message, writing through tx.
type TxHandlerFunc func(ctx context.Context, tx *sql.Tx, msg *message.Message) error

// HandleTx wraps handle so that it runs in a transaction that also inserts
// the inbox row; a message already in the inbox is acknowledged without
// calling handle. See Inbox for the guarantee.
func (i *Inbox) HandleTx(consumer string, handle TxHandlerFunc) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		if err := checkKey(consumer, msg.UUID); err != nil {
			return err
		}
		ctx := msg.Context()
		tx, err := i.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("bus: inbox %s: begin: %w", consumer, err)
		}
		defer func() { _ = tx.Rollback() }()
		res, err := tx.ExecContext(ctx, i.insert, consumer, msg.UUID, i.now().UnixNano())
		if err != nil {
			return fmt.Errorf("bus: inbox %s: record %s: %w", consumer, msg.UUID, err)
		}
		inserted, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("bus: inbox %s: record %s: %w", consumer, msg.UUID, err)
		}
		if inserted == 0 {
			return nil // handled before: acknowledge, do nothing
		}
		if err := handle(ctx, tx, msg); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("bus: inbox %s: commit %s: %w", consumer, msg.UUID, err)
		}
		return nil
	}
}

// Handle wraps handle so that a message already recorded for consumer is
// acknowledged without calling it, and a message it handled is recorded.
// See Inbox for the guarantee.
func (i *Inbox) Handle(consumer string, handle message.NoPublishHandlerFunc) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		ctx := msg.Context()
		seen, err := i.Seen(ctx, consumer, msg.UUID)
		if err != nil {
			return err
		}
		if seen {
			return nil
		}
		if err := handle(msg); err != nil {
			return err
		}
		return i.Record(ctx, consumer, msg.UUID)
	}
}

// Seen reports whether consumer has recorded eventID.
func (i *Inbox) Seen(ctx context.Context, consumer, eventID string) (bool, error) {
	if err := checkKey(consumer, eventID); err != nil {
		return false, err
	}
	var one int
	err := i.db.QueryRowContext(ctx, i.seen, consumer, eventID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bus: inbox %s: look up %s: %w", consumer, eventID, err)
	}
	return true, nil
}

// Record notes that consumer handled eventID; recording twice is harmless.
func (i *Inbox) Record(ctx context.Context, consumer, eventID string) error {
	if err := checkKey(consumer, eventID); err != nil {
		return err
	}
	if _, err := i.db.ExecContext(ctx, i.insert, consumer, eventID, i.now().UnixNano()); err != nil {
		return fmt.Errorf("bus: inbox %s: record %s: %w", consumer, eventID, err)
	}
	return nil
}

// Prune forgets rows processed before cutoff and returns how many. Only
// prune past the longest time a transport may still redeliver (the NATS
// stream's MaxAge, for instance), or a late redelivery runs again.
func (i *Inbox) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := i.db.ExecContext(ctx, i.prune, cutoff.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("bus: inbox prune: %w", err)
	}
	return res.RowsAffected()
}

func checkKey(consumer, eventID string) error {
	if consumer == "" {
		return errors.New("bus: inbox consumer name is empty")
	}
	if eventID == "" {
		return errors.New("bus: inbox: message has no UUID")
	}
	return nil
}
