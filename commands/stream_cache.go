package commands

import (
	"container/list"
	"sync"

	"github.com/careflow/careflow/domain"
)

// StreamCache keeps the decoded events of recently used streams, so that a
// command reads from the store only what was appended since it last saw
// the stream (usually nothing: one index seek) instead of reading and
// decoding — and opening the sealed PHI of — the whole stream again.
//
// It never acts on stale state. Authorization and other reads (Load) ask
// the store for the events after the cached version. A command's own
// stream is decided on from the cache alone at first, but the append names
// the cached version, so the store refuses a decision made on a stream
// that moved on, and refusals are checked against the store before they
// are answered (execute). Appends put what they recorded in the cache.
// Events are immutable values once decoded (appliers copy what they keep),
// so entries are shared between goroutines without copying.
//
// A forgotten client's PHI must not outlive their key in memory: Purge
// empties the cache (erasures are rare), and ForgetClient calls it.
type StreamCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element // of *cachedStream
	lru     list.List                // front: most recently used
}

// cachedEvent is one decoded event with what a retried command needs to
// answer as a duplicate.
type cachedEvent struct {
	event     domain.Event
	version   int64
	position  int64
	commandID string
}

type cachedStream struct {
	key    string
	events []cachedEvent // versions 1..len(events), in order
}

// DefaultStreamCacheSize bounds the streams a StreamCache holds.
const DefaultStreamCacheSize = 4096

// NewStreamCache returns a cache of at most max streams (<= 0: the default).
func NewStreamCache(max int) *StreamCache {
	if max <= 0 {
		max = DefaultStreamCacheSize
	}
	return &StreamCache{max: max, entries: map[string]*list.Element{}}
}

// get returns the cached events of stream key (nil when none). The slice
// must not be appended to in place: extend copies it.
func (c *StreamCache) get(key string) []cachedEvent {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cachedStream).events
}

// put records events as the stream's whole history, unless the cache
// already holds a longer one (another goroutine saw newer events).
func (c *StreamCache) put(key string, events []cachedEvent) {
	if c == nil || len(events) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		s := el.Value.(*cachedStream)
		if len(s.events) < len(events) {
			s.events = events
		}
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(&cachedStream{key: key, events: events})
	for c.lru.Len() > c.max {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*cachedStream).key)
	}
}

// Purge drops every entry.
func (c *StreamCache) Purge() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]*list.Element{}
	c.lru.Init()
}

// Len is how many streams are cached.
func (c *StreamCache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// extend returns base followed by more, never writing into base's array.
func extend(base, more []cachedEvent) []cachedEvent {
	out := make([]cachedEvent, 0, len(base)+len(more))
	return append(append(out, base...), more...)
}
