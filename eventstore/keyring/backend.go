package keyring

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Record is one subject's stored data key. A destroyed record (a
// tombstone) keeps the subject and the times but not the key.
type Record struct {
	Subject string
	// KeyID names the data key (random, not secret); it is bound into the
	// wrapping so a wrapped key cannot be moved to another row.
	KeyID string
	// KEKID is the ID of the KEK that wrapped the key.
	KEKID string
	// Wrapped is nonce | AES-256-GCM(KEK, data key); nil once destroyed.
	Wrapped     []byte
	CreatedAt   time.Time
	DestroyedAt time.Time // zero while the key lives
}

// Destroyed reports whether r is a tombstone.
func (r Record) Destroyed() bool { return !r.DestroyedAt.IsZero() }

// KEKCount is how many keys one KEK wraps (Destroyed false), or how many
// tombstones there are (Destroyed true, KEKID empty).
type KEKCount struct {
	KEKID     string
	Destroyed bool
	Keys      int
}

// errNotFound is what Backend.Get returns for a subject with no record.
var errNotFound = errors.New("keyring: no record")

// Backend stores the wrapped data keys. Every write is committed durably
// before it returns. Implementations: NewMemoryBackend (tests),
// OpenSQLite, OpenPostgres.
type Backend interface {
	// Get returns the record of subject, or errNotFound.
	Get(ctx context.Context, subject string) (Record, error)
	// InsertIfAbsent stores r unless subject already has a record (live or
	// destroyed) and reports whether it did.
	InsertIfAbsent(ctx context.Context, r Record) (bool, error)
	// Destroy erases the wrapped key of subject and sets its destroyed_at to
	// at, or stores a tombstone if subject has no record. A record already
	// destroyed keeps its first destroyed_at.
	Destroy(ctx context.Context, subject string, at time.Time) error
	// Rewrap replaces the wrapped key of a live record still wrapped under
	// oldKEKID and reports whether it did (false: destroyed or rewrapped
	// meanwhile).
	Rewrap(ctx context.Context, subject, oldKEKID, newKEKID string, wrapped []byte) (bool, error)
	// NotWrappedUnder returns up to limit live records whose KEK is not
	// kekID, with subjects after the given one, in subject order.
	NotWrappedUnder(ctx context.Context, kekID, after string, limit int) ([]Record, error)
	// Counts returns the live keys per KEK and the number of tombstones.
	Counts(ctx context.Context) ([]KEKCount, error)
	Close() error
}

// MemoryBackend keeps the keys in memory: for tests, and nothing that must
// survive the process.
type MemoryBackend struct {
	mu      sync.Mutex
	records map[string]Record
}

var _ Backend = (*MemoryBackend)(nil)

// NewMemoryBackend returns an empty in-memory backend.
func NewMemoryBackend() *MemoryBackend {
	return &MemoryBackend{records: make(map[string]Record)}
}

func copyRecord(r Record) Record {
	r.Wrapped = bytes.Clone(r.Wrapped)
	return r
}

func (m *MemoryBackend) Get(ctx context.Context, subject string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[subject]
	if !ok {
		return Record{}, errNotFound
	}
	return copyRecord(r), nil
}

func (m *MemoryBackend) InsertIfAbsent(ctx context.Context, r Record) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[r.Subject]; ok {
		return false, nil
	}
	m.records[r.Subject] = copyRecord(r)
	return true, nil
}

func (m *MemoryBackend) Destroy(ctx context.Context, subject string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[subject]
	if !ok {
		r = Record{Subject: subject, CreatedAt: at}
	}
	if r.Destroyed() {
		return nil
	}
	clear(r.Wrapped)
	r.Wrapped, r.DestroyedAt = nil, at
	m.records[subject] = r
	return nil
}

func (m *MemoryBackend) Rewrap(ctx context.Context, subject, oldKEKID, newKEKID string, wrapped []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[subject]
	if !ok || r.Destroyed() || r.KEKID != oldKEKID {
		return false, nil
	}
	r.KEKID, r.Wrapped = newKEKID, bytes.Clone(wrapped)
	m.records[subject] = r
	return true, nil
}

func (m *MemoryBackend) NotWrappedUnder(ctx context.Context, kekID, after string, limit int) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, r := range m.records {
		if !r.Destroyed() && r.KEKID != kekID && r.Subject > after {
			out = append(out, copyRecord(r))
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return cmp.Compare(a.Subject, b.Subject) })
	return out[:min(limit, len(out))], nil
}

func (m *MemoryBackend) Counts(ctx context.Context) ([]KEKCount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	counts := map[KEKCount]int{}
	for _, r := range m.records {
		k := KEKCount{KEKID: r.KEKID, Destroyed: r.Destroyed()}
		if k.Destroyed {
			k.KEKID = ""
		}
		counts[k]++
	}
	out := make([]KEKCount, 0, len(counts))
	for k, n := range counts {
		k.Keys = n
		out = append(out, k)
	}
	sortCounts(out)
	return out, nil
}

func (m *MemoryBackend) Close() error { return nil }

// sortCounts puts live keys first, by KEK id.
func sortCounts(c []KEKCount) {
	slices.SortFunc(c, func(a, b KEKCount) int {
		if a.Destroyed != b.Destroyed {
			if a.Destroyed {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.KEKID, b.KEKID)
	})
}
