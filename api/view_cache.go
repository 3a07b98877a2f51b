package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections/views"
)

// Answers of the read models kept in memory, so that repeated reads of a
// view that has not changed skip its SQL, the opening of its sealed PHI
// and the building of its structs. What a cached answer may be served
// for is decided per request, after that request was authorized (the
// cache holds data, never decisions: authorization, the access record and
// the shaping of the answer for the reader's role still run every time):
//
//   - A session's views (the care team's and its client's) are a function
//     of the session's stream alone, so an answer is kept with the stream
//     version it shows and served while the session header read for the
//     request (sessionHeader) is at that version.
//   - A client's session list and a provider's inbox depend on many
//     streams. The changeTracker follows the log: a client's list is served
//     while no event of that client's sessions (or of the client's own
//     stream) came after the position the answer was read at; an inbox
//     while no event at all came after it, and for at most inboxCacheTTL
//     (its "sessions ending soon" move with the clock).
//
// The tracker follows the log as it is committed, a little ahead of the
// projections (it reads what they read, and writes nothing). A list or
// inbox read that names X-Careflow-Min-Position is served from the cache
// only once the tracker has read that far, so a reader that passes the
// position of its own write reads it, as from the read model; without
// one, a read is as fresh as the tracker, as it is otherwise as fresh as
// the read model. A cached answer is also only served while the client
// keys its PHI was sealed under still open it (views.KeyProbe): a
// forgotten client's PHI does not outlive the key here any more than in
// the read models.
//
// Each cache is bounded (maxCachedViews answers) and starts again from
// empty when full, like sessionHeads.

// maxCachedViews bounds the answers each view cache keeps.
const maxCachedViews = 2048

// inboxCacheTTL bounds how long an inbox answer is served: the sessions
// it lists as ending soon and the emergency notices it shows depend on
// the time of the read.
const inboxCacheTTL = time.Second

type cachedView[V any] struct {
	stamp int64 // a stream version or a log position, per cache
	at    time.Time
	value V
	// keys checks the keys of the PHI value holds; nil only for values
	// that hold none (a client's facts).
	keys *views.KeyProbe
	// bodies are the JSON answers made from value.
	bodies *encodedBodies
}

// encodedBodies keeps the JSON answers made from one cached value, by
// what else shapes them (bodyShape): a reader of the same value through
// the same route and query gets the same bytes, without encoding them
// again. They go with their value: a new value has none, and a value
// leaving its cache gives their bytes back to the budget they share.
type encodedBodies struct {
	mu       sync.Mutex
	byShape  map[string][]byte
	size     int64
	released bool
	budget   *atomic.Int64 // bytes left for the answers of every cache
}

// maxBodiesPerValue bounds the answers kept per value (the shape includes
// the query, which the caller chooses); maxBodyBytes bounds them all.
const (
	maxBodiesPerValue = 16
	maxBodyBytes      = 64 << 20
)

// release gives b's bytes back to the budget; b keeps nothing more.
func (b *encodedBodies) release() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.released {
		b.released = true
		b.budget.Add(b.size)
		b.byShape, b.size = nil, 0
	}
}

// encode returns body as writeJSON would send it, from b when it was
// encoded for shape before. A nil b encodes every time.
func (b *encodedBodies) encode(shape string, body any) ([]byte, error) {
	if b != nil {
		b.mu.Lock()
		raw, ok := b.byShape[shape]
		b.mu.Unlock()
		if ok {
			return raw, nil
		}
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(body); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	if b != nil {
		b.mu.Lock()
		if n := int64(len(raw)); !b.released && len(b.byShape) < maxBodiesPerValue {
			if b.budget.Add(-n) >= 0 {
				b.byShape[shape] = raw
				b.size += n
			} else {
				b.budget.Add(n) // over budget: not kept
			}
		}
		b.mu.Unlock()
	}
	return raw, nil
}

// bodyShape is what, beside the cached value, an answer depends on: the
// reader's role (what of the value they may see), the route, and the
// path and query (which part of the value, which page).
func bodyShape(r *http.Request, p Principal) string {
	return string(p.Role) + " " + r.Pattern + " " + r.URL.Path + "?" + r.URL.RawQuery
}

// viewCache keeps answers of one kind by key. Values are shared between
// requests and must not be modified by them.
type viewCache[V any] struct {
	mu      sync.Mutex
	max     int
	entries map[string]cachedView[V]
	// bodies is the budget of the answers kept with the values; nil keeps
	// none.
	bodies *atomic.Int64
}

func newViewCache[V any](max int, bodies *atomic.Int64) *viewCache[V] {
	return &viewCache[V]{max: max, entries: map[string]cachedView[V]{}, bodies: bodies}
}

// get returns the value under key for which valid holds, if its keys
// still open, with the answers made from it; an entry no longer valid is
// dropped.
func (c *viewCache[V]) get(key string, valid func(cachedView[V]) bool) (V, *encodedBodies, bool) {
	var zero V
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && !valid(e) {
		delete(c.entries, key)
		e.bodies.release()
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return zero, nil, false
	}
	if e.keys != nil && !e.keys.KeysLive() {
		c.drop(key)
		return zero, nil, false
	}
	return e.value, e.bodies, true
}

// put keeps e under key unless a newer entry is kept, and returns where
// the answers made from e.value go (nil when e was not kept).
func (c *viewCache[V]) put(key string, e cachedView[V]) *encodedBodies {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.entries[key]
	if ok && old.stamp > e.stamp {
		return nil
	}
	old.bodies.release()
	if len(c.entries) >= c.max {
		for _, gone := range c.entries {
			gone.bodies.release()
		}
		clear(c.entries)
	}
	e.bodies = nil
	if c.bodies != nil {
		e.bodies = &encodedBodies{byShape: map[string][]byte{}, budget: c.bodies}
	}
	c.entries[key] = e
	return e.bodies
}

func (c *viewCache[V]) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key].bodies.release()
	delete(c.entries, key)
}

// viewCaches are the care routes' caches.
type viewCaches struct {
	sessions       *viewCache[views.SessionDetail]     // by session id; stamp: stream version
	clientSessions *viewCache[views.ClientSession]     // by session id; stamp: stream version
	lists          *viewCache[views.ClientSessionList] // by client id; stamp: log position
	inboxes        *viewCache[views.ProviderInbox]     // by provider and page; stamp: log position
	facts          *viewCache[commands.ClientFacts]    // by client id; stamp: log position
	assignments    *assignmentSessions
	tracker        *changeTracker
	// reached is the last log position each projection was seen to have
	// applied (by name): what a list or inbox read later is at least as
	// fresh as.
	reachedMu sync.Mutex
	reached   map[string]int64
}

func newViewCaches(store eventstore.Store, knownSession func(string) (string, bool)) *viewCaches {
	bodies := &atomic.Int64{}
	bodies.Store(maxBodyBytes)
	return &viewCaches{
		sessions:       newViewCache[views.SessionDetail](maxCachedViews, bodies),
		clientSessions: newViewCache[views.ClientSession](maxCachedViews, bodies),
		lists:          newViewCache[views.ClientSessionList](maxCachedViews, bodies),
		inboxes:        newViewCache[views.ProviderInbox](maxCachedViews, bodies),
		facts:          newViewCache[commands.ClientFacts](maxCachedFacts, nil),
		assignments:    &assignmentSessions{max: maxCachedAssignments, sessions: map[string]string{}},
		tracker:        newChangeTracker(store, knownSession, maxTracked),
		reached:        map[string]int64{},
	}
}

// freshFrom returns the log position a read of projection about to start
// will be at least as fresh as: target (the head the tracker knows) when
// the projection has applied it, else the last position it was seen at.
func (c *careRoutes) freshFrom(ctx context.Context, projection string, target int64) int64 {
	vc := c.cache
	if ok, err := c.cfg.Freshness.WaitFor(ctx, projection, target, 0); err == nil && ok {
		vc.reachedMu.Lock()
		vc.reached[projection] = max(vc.reached[projection], target)
		vc.reachedMu.Unlock()
		return target
	}
	vc.reachedMu.Lock()
	defer vc.reachedMu.Unlock()
	return vc.reached[projection]
}

// knownSessionClient names the client of a session whose header the
// routes keep.
func (c *careRoutes) knownSessionClient(sessionID string) (string, bool) {
	h, ok := c.heads.get(sessionID)
	return h.ClientID, ok
}

// clientSessionList reads clientID's session list (the caller authorized
// the read and waited for minPos), from the cache while the client's
// sessions did not change.
func (c *careRoutes) clientSessionList(ctx context.Context, clientID string, minPos int64) (views.ClientSessionList, *encodedBodies, error) {
	tracker := c.cache.tracker
	head, ok := tracker.position()
	if !ok || head < minPos {
		// Changes are not known as far as asked: the read model alone.
		list, err := views.ClientSessions(ctx, c.cfg.Views, clientID)
		return list, nil, err
	}
	unchanged := func(e cachedView[views.ClientSessionList]) bool { return tracker.unchangedSince(clientID, e.stamp) }
	if list, bodies, ok := c.cache.lists.get(clientID, unchanged); ok {
		return list, bodies, nil
	}
	at := c.freshFrom(ctx, views.ClientSessionsProjection, head)
	probed, keys := views.WithKeyProbe(ctx)
	list, err := views.ClientSessions(probed, c.cfg.Views, clientID)
	var bodies *encodedBodies
	if err == nil && tracker.unchangedSince(clientID, at) {
		bodies = c.cache.lists.put(clientID, cachedView[views.ClientSessionList]{stamp: at, value: list, keys: keys})
	}
	return list, bodies, err
}

// readInbox reads a page of providerID's inbox (the caller authorized the
// read and waited for minPos), from the cache while no event came since
// it was read and for at most inboxCacheTTL.
func (c *careRoutes) readInbox(ctx context.Context, providerID string, page views.InboxPage, minPos int64) (views.ProviderInbox, *encodedBodies, error) {
	now := c.clock()
	tracker := c.cache.tracker
	head, ok := tracker.position()
	if !ok || head < minPos {
		inbox, err := views.ReadInbox(ctx, c.cfg.Views, providerID, now, page)
		return inbox, nil, err
	}
	key := providerID + "\x00" + strconv.Itoa(page.Limit) + "\x00" + page.After
	unchanged := func(e cachedView[views.ProviderInbox]) bool {
		age := now.Sub(e.at)
		return age >= 0 && age < inboxCacheTTL && tracker.unchangedSince("", e.stamp)
	}
	if inbox, bodies, ok := c.cache.inboxes.get(key, unchanged); ok {
		return inbox, bodies, nil
	}
	at := c.freshFrom(ctx, views.InboxProjection, head)
	probed, keys := views.WithKeyProbe(ctx)
	inbox, err := views.ReadInbox(probed, c.cfg.Views, providerID, now, page)
	var bodies *encodedBodies
	if err == nil && tracker.unchangedSince("", at) {
		bodies = c.cache.inboxes.put(key, cachedView[views.ProviderInbox]{stamp: at, at: now, value: inbox, keys: keys})
	}
	return inbox, bodies, err
}

// maxCachedFacts bounds the clients' facts kept (ids and grants, no PHI).
const maxCachedFacts = 16384

// trackerWait bounds how long a read waits for the change tracker to
// reach the head of the log before it reads the organization's streams
// itself.
const trackerWait = 5 * time.Millisecond

// trackerCurrent reports whether the change tracker has read every event
// committed before this call (the log's head), so that what it says has
// not changed has not changed as of this request: a membership ended
// before the request is seen by it as by a read of the streams.
func (c *careRoutes) trackerCurrent(ctx context.Context) bool {
	head, err := c.store.HeadPosition(ctx)
	if err != nil {
		return false
	}
	return c.cache.tracker.caughtUp(ctx, head, trackerWait)
}

// clientFacts is CareDirectory.ClientFacts, answered from memory when
// current (trackerCurrent) and no organization event came since the facts
// were read.
func (c *careRoutes) clientFacts(ctx context.Context, clientID string, current bool) (commands.ClientFacts, error) {
	tracker := c.cache.tracker
	if current {
		unchanged := func(e cachedView[commands.ClientFacts]) bool { return tracker.orgUnchangedSince(e.stamp) }
		if f, _, ok := c.cache.facts.get(clientID, unchanged); ok {
			return f, nil
		}
	}
	seen, started := tracker.position()
	f, err := c.cfg.Directory.ClientFacts(ctx, clientID)
	if err == nil && started {
		c.cache.facts.put(clientID, cachedView[commands.ClientFacts]{stamp: seen, value: f})
	}
	return f, err
}

// assignmentSessions remembers which session each assignment is in, as
// the assignment index answered: an assignment never moves, so the
// answer never goes stale. When full it starts again from empty.
type assignmentSessions struct {
	mu       sync.Mutex
	max      int
	sessions map[string]string
}

// maxCachedAssignments bounds the assignments remembered (ids only).
const maxCachedAssignments = 65536

func (a *assignmentSessions) get(assignmentID string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[assignmentID]
	return s, ok
}

func (a *assignmentSessions) put(assignmentID, sessionID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.sessions) >= a.max {
		clear(a.sessions)
	}
	a.sessions[assignmentID] = sessionID
}
