package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careflow/careflow/eventstore"
)

// listener holds the store's one LISTEN connection and turns every
// notification into a Broadcast, so any number of subscriptions share it.
// It listens only while the store has a live subscription: a store that
// only writes is not woken by every commit (its own included).
type listener struct {
	cfg    *pgx.ConnConfig
	signal *eventstore.Signal
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	subs int // live subscriptions
	// changed is closed (and replaced) when subs goes from 0 to 1 or back.
	changed chan struct{}
	// listening is whether LISTEN is in effect (for tests).
	listening atomic.Bool
}

const (
	minListenBackoff = 100 * time.Millisecond
	maxListenBackoff = 5 * time.Second
)

// startListener connects and listens before returning, so a server that
// refuses is reported by Open, then manages the connection in the
// background (with no subscription yet, it stops listening at once).
func startListener(ctx context.Context, cfg *pgx.ConnConfig, signal *eventstore.Signal) (*listener, error) {
	l := &listener{cfg: cfg.Copy(), signal: signal, done: make(chan struct{}), changed: make(chan struct{})}
	conn, err := l.listen(ctx, nil)
	if err != nil {
		return nil, err
	}
	l.listening.Store(true)
	runCtx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(runCtx, conn)
	return l, nil
}

// subscribe registers a live subscription until release is called. The
// subscription need not wait for LISTEN: once it is in effect the listener
// broadcasts, so whatever committed before is read then.
func (l *listener) subscribe() (release func()) {
	l.mu.Lock()
	l.subs++
	if l.subs == 1 {
		l.changedLocked()
	}
	l.mu.Unlock()
	return sync.OnceFunc(func() {
		l.mu.Lock()
		l.subs--
		if l.subs == 0 {
			l.changedLocked()
		}
		l.mu.Unlock()
	})
}

func (l *listener) changedLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// wanted says whether a subscription is live, and returns a channel closed
// when that changes.
func (l *listener) wanted() (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.subs > 0, l.changed
}

// listen runs LISTEN on conn, connecting first when conn is nil.
func (l *listener) listen(ctx context.Context, conn *pgx.Conn) (*pgx.Conn, error) {
	if conn == nil {
		var err error
		if conn, err = pgx.ConnectConfig(ctx, l.cfg); err != nil {
			return nil, fmt.Errorf("postgres: listener: connect: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("postgres: listener: LISTEN: %w", err)
	}
	return conn, nil
}

// run listens while subscriptions are live, until stopped. When the
// connection breaks it reconnects with a growing pause. Every time LISTEN
// takes effect it wakes all subscribers, since notifications sent before
// were not received. With no subscription left it runs UNLISTEN and keeps
// the connection for the next one.
func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	listening := true // startListener did
	backoff := time.Duration(0)
	for {
		want, changed := l.wanted()
		if !want {
			if listening {
				listening = false
				l.listening.Store(false)
				if _, err := conn.Exec(ctx, `UNLISTEN `+notifyChannel); err != nil {
					_ = conn.Close(context.Background())
					conn = nil
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			continue
		}
		if !listening {
			if backoff > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
			}
			var err error
			if conn, err = l.listen(ctx, conn); err != nil {
				backoff = min(max(2*backoff, minListenBackoff), maxListenBackoff)
				continue
			}
			backoff = 0
			listening = true
			l.signal.Broadcast()
			l.listening.Store(true)
		}
		if l.wait(ctx, conn, changed) {
			continue // the subscriptions changed; the connection is fine
		}
		if ctx.Err() != nil {
			return
		}
		_ = conn.Close(context.Background())
		conn, listening = nil, false
		l.listening.Store(false)
		backoff = minListenBackoff
	}
}

// wait broadcasts every notification until changed is closed (it then
// returns true) or the connection fails or ctx ends (false). Interrupting
// WaitForNotification leaves the connection usable: pgx's default context
// handling only sets a deadline on the socket.
func (l *listener) wait(ctx context.Context, conn *pgx.Conn, changed <-chan struct{}) bool {
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-changed:
			cancel()
		case <-waitCtx.Done():
		}
	}()
	for {
		if _, err := conn.WaitForNotification(waitCtx); err != nil {
			select {
			case <-changed:
				return ctx.Err() == nil && !conn.IsClosed()
			default:
				return false
			}
		}
		l.signal.Broadcast()
	}
}

func (l *listener) stop() {
	l.cancel()
	<-l.done
}
