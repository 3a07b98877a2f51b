package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careflow/careflow/eventstore"
)

// listener holds the store's one LISTEN connection and turns every
// notification into a Broadcast, so any number of subscriptions share it.
type listener struct {
	cfg    *pgx.ConnConfig
	signal *eventstore.Signal
	cancel context.CancelFunc
	done   chan struct{}
}

const (
	minListenBackoff = 100 * time.Millisecond
	maxListenBackoff = 5 * time.Second
)

// startListener connects and listens before returning, so a server that
// refuses is reported by Open, then keeps listening in the background.
func startListener(ctx context.Context, cfg *pgx.ConnConfig, signal *eventstore.Signal) (*listener, error) {
	l := &listener{cfg: cfg.Copy(), signal: signal, done: make(chan struct{})}
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(runCtx, conn)
	return l, nil
}

func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: listener: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("postgres: listener: LISTEN: %w", err)
	}
	return conn, nil
}

// run waits for notifications until stopped. When the connection breaks it
// reconnects with a growing pause; after every (re)connection it wakes all
// subscribers, since notifications sent in between were lost.
func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	backoff := minListenBackoff
	for {
		if conn != nil {
			l.signal.Broadcast()
			for {
				if _, err := conn.WaitForNotification(ctx); err != nil {
					break
				}
				backoff = minListenBackoff
				l.signal.Broadcast()
			}
			_ = conn.Close(context.Background())
			conn = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxListenBackoff)
		conn, _ = l.connect(ctx)
	}
}

func (l *listener) stop() {
	l.cancel()
	<-l.done
}
