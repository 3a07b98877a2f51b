package keyring

import (
	"container/list"
	"crypto/cipher"
	"sync"
	"time"
)

// entry is a cached data key, or a tombstone (aead nil): a destroyed key
// never comes back, so remembering it saves a read per Open of a forgotten
// subject.
type entry struct {
	aead cipher.AEAD
}

type lruItem struct {
	subject string
	entry   entry
	loaded  time.Time
}

// lru is a bounded least-recently-used cache of data keys by subject.
type lru struct {
	mu    sync.Mutex
	size  int
	order *list.List // of *lruItem, most recent first
	items map[string]*list.Element
}

func newLRU(size int) *lru {
	return &lru{size: size, order: list.New(), items: make(map[string]*list.Element)}
}

// get returns the entry of subject if it was loaded less than ttl ago.
func (c *lru) get(subject string, now time.Time, ttl time.Duration) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[subject]
	if !ok {
		return entry{}, false
	}
	it := el.Value.(*lruItem)
	if now.Sub(it.loaded) >= ttl {
		c.order.Remove(el)
		delete(c.items, subject)
		return entry{}, false
	}
	c.order.MoveToFront(el)
	return it.entry, true
}

// putIfAbsent caches e unless subject already has an entry, and returns
// the entry that is cached.
func (c *lru) putIfAbsent(subject string, e entry, now time.Time) entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[subject]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*lruItem).entry
	}
	c.insert(subject, e, now)
	return e
}

// put caches e for subject, replacing what was there.
func (c *lru) put(subject string, e entry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[subject]; ok {
		c.order.Remove(el)
		delete(c.items, subject)
	}
	c.insert(subject, e, now)
}

func (c *lru) insert(subject string, e entry, now time.Time) {
	c.items[subject] = c.order.PushFront(&lruItem{subject: subject, entry: e, loaded: now})
	for c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruItem).subject)
	}
}

// len is the number of cached entries.
func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// remove drops the entry of subject.
func (c *lru) remove(subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[subject]; ok {
		c.order.Remove(el)
		delete(c.items, subject)
	}
}
