package api

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
)

// changeTracker follows the event log (a subscription to the store,
// started on first use and again after it ends) and remembers the
// position of the last change to what the read routes keep in memory:
//
//   - each client's care records (an event of one of the client's
//     sessions, or of the client's own stream): their session list;
//   - each session's stream: its header (sessionHeader);
//   - the organization (an event of any stream but a session's): who may
//     read a client's records (commands.ClientFacts reads only the
//     organization's streams: the client's, its clinic's, its team's).
//
// What was read at position p (the tracker's position when the read
// began) is still current while no change to it came after p. Changes
// before a floor are forgotten (a map was full, or an event's client
// could not be told): anything read before it counts as changed.
type changeTracker struct {
	store eventstore.Store
	max   int
	// knownSession names the client of a session scheduled before the
	// tracker started (the session headers the routes keep).
	knownSession func(string) (string, bool)

	mu           sync.Mutex
	running      bool
	started      bool  // the fields below are set
	start        int64 // where the tracker began
	pos          int64 // every event up to here is accounted for
	advanced     chan struct{}
	org          int64            // last event of any stream but a session's
	clientFloor  int64            // client changes before it are forgotten
	sessionFloor int64            // session changes before it are forgotten
	clients      map[string]int64 // client id -> position of its last change
	sessions     map[string]int64 // session id -> position of its last event
	sessionOf    map[string]string
}

// maxTracked bounds the clients and sessions the tracker remembers; when
// one map is full it starts again from empty (and its floor moves up).
const maxTracked = 65536

func newChangeTracker(store eventstore.Store, knownSession func(string) (string, bool), max int) *changeTracker {
	return &changeTracker{store: store, knownSession: knownSession, max: max, advanced: make(chan struct{}),
		clients: map[string]int64{}, sessions: map[string]int64{}, sessionOf: map[string]string{}}
}

// position returns the position up to which changes are known; ok is
// false until the tracker has started (nothing is served from memory
// until then).
func (t *changeTracker) position() (pos int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ensureRunning()
	return t.pos, t.started
}

// ensureRunning starts following the log if it is not; t.mu is held.
func (t *changeTracker) ensureRunning() {
	if !t.running {
		t.running = true
		go t.follow()
	}
}

// caughtUp waits, at most maxWait, until the tracker has read the log up
// to head, and reports whether it has.
func (t *changeTracker) caughtUp(ctx context.Context, head int64, maxWait time.Duration) bool {
	var timer *time.Timer
	for {
		t.mu.Lock()
		t.ensureRunning()
		done, advanced := t.started && t.pos >= head, t.advanced
		t.mu.Unlock()
		if done {
			return true
		}
		if timer == nil {
			timer = time.NewTimer(maxWait)
			defer timer.Stop()
		}
		select {
		case <-advanced:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// follow applies the log's events as they are committed, from where the
// tracker stopped (the head, the first time), until the subscription
// ends (the store closed, or failed).
func (t *changeTracker) follow() {
	defer func() {
		t.mu.Lock()
		t.running = false
		t.mu.Unlock()
	}()
	ctx := context.Background()
	t.mu.Lock()
	from, started := t.pos, t.started
	t.mu.Unlock()
	if !started {
		head, err := t.store.HeadPosition(ctx)
		if err != nil {
			return
		}
		t.mu.Lock()
		t.start, t.pos, t.org, t.clientFloor, t.sessionFloor, t.started = head, head, head, head, head, true
		close(t.advanced)
		t.advanced = make(chan struct{})
		t.mu.Unlock()
		from = head
	}
	_ = t.store.Subscribe(ctx, from, func(e eventstore.RecordedEvent) error {
		t.apply(e)
		return nil
	})
}

func (t *changeTracker) apply(e eventstore.RecordedEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.Stream.Type == care.StreamType {
		if len(t.sessions) >= t.max {
			clear(t.sessions)
			t.sessionFloor = e.Position
		}
		t.sessions[e.Stream.ID] = e.Position
	} else {
		t.org = e.Position
	}
	client, known := t.clientOf(e)
	switch {
	case !known:
		// Whose change this is cannot be told: count it as every
		// client's.
		clear(t.clients)
		t.clientFloor = e.Position
	case client != "":
		if len(t.clients) >= t.max {
			clear(t.clients)
			t.clientFloor = e.Position
		}
		t.clients[client] = e.Position
	}
	t.pos = e.Position
	close(t.advanced)
	t.advanced = make(chan struct{})
}

// clientOf names the client whose care records e changes ("" for none);
// known is false when e is a session's event and its client is unknown.
func (t *changeTracker) clientOf(e eventstore.RecordedEvent) (client string, known bool) {
	switch e.Stream.Type {
	case care.StreamType:
		if c, ok := t.sessionOf[e.Stream.ID]; ok {
			return c, true
		}
		if e.Type == (care.SessionScheduled{}).EventType() {
			var first struct {
				ClientID string `json:"clientId"`
			}
			if err := json.Unmarshal(e.Data, &first); err == nil && first.ClientID != "" {
				if len(t.sessionOf) >= t.max {
					clear(t.sessionOf)
				}
				t.sessionOf[e.Stream.ID] = first.ClientID
				return first.ClientID, true
			}
		}
		return t.knownSession(e.Stream.ID)
	case clientStreamType:
		return e.Stream.ID, true
	}
	return "", true
}

// clientStreamType is the organization's client streams (commands.StreamClient).
const clientStreamType = "client"

// unchangedSince reports whether clientID's care records did not change
// after at, as far as the tracker has read the log; clientID "" asks
// about any event at all.
func (t *changeTracker) unchangedSince(clientID string, at int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.started || at < t.clientFloor {
		return false
	}
	if clientID == "" {
		return t.pos <= at
	}
	return t.clients[clientID] <= at
}

// sessionUnchangedSince reports whether sessionID's stream had no event
// after at, as far as the tracker has read the log.
func (t *changeTracker) sessionUnchangedSince(sessionID string, at int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.started && at >= t.sessionFloor && t.sessions[sessionID] <= at
}

// orgUnchangedSince reports whether no stream but sessions' had an event
// after at, as far as the tracker has read the log.
func (t *changeTracker) orgUnchangedSince(at int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.started && at >= t.start && t.org <= at
}
