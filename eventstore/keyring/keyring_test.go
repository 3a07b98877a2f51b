package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
)

// opener opens a backend on the same storage every time it is called, as
// a restarted process (or a second one) would.
type opener func(t *testing.T) Backend

func memoryOpener(*testing.T) opener {
	m := NewMemoryBackend()
	return func(*testing.T) Backend { return m }
}

func sqliteOpener(t *testing.T) opener {
	path := filepath.Join(t.TempDir(), "keys.db")
	return func(t *testing.T) Backend {
		b, err := OpenSQLite(context.Background(), path)
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
}

func postgresOpener(t *testing.T) opener {
	url := pgtest.NewDatabase(t)
	return func(t *testing.T) Backend {
		b, err := OpenPostgres(context.Background(), url)
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
}

func newKEK(t testing.TB) KEK {
	k, _, err := GenerateKEK(rand.Reader)
	require.NoError(t, err)
	return k
}

// newKeyring is a keyring over a freshly opened backend.
func newKeyring(t *testing.T, open opener, current KEK, previous ...KEK) *Keyring {
	t.Helper()
	k, err := New(Config{Current: current, Previous: previous, Backend: open(t)})
	require.NoError(t, err)
	return k
}

func TestKeyringMemory(t *testing.T) { runSuite(t, memoryOpener) }
func TestKeyringSQLite(t *testing.T) { runSuite(t, sqliteOpener) }
func TestKeyringPostgres(t *testing.T) {
	pgtest.ServerURL(t) // skip (or fail under CI) before any subtest
	runSuite(t, postgresOpener)
}

// runSuite is what every backend must pass.
func runSuite(t *testing.T, newOpener func(t *testing.T) opener) {
	kek := newKEK(t)
	aad := []byte("event 7, field note")

	t.Run("round trip", func(t *testing.T) {
		k := newKeyring(t, newOpener(t), kek)
		plain := []byte("feels low most days; PHQ-9 item 9 answered 2")
		sealed, err := k.Seal("client-1", plain, aad)
		require.NoError(t, err)
		assert.Len(t, sealed, SealedSize(len(plain)))
		assert.Equal(t, sealVersion, sealed[0])
		assert.False(t, bytes.Contains(sealed, plain), "the plaintext does not show")
		again, err := k.Seal("client-1", plain, aad)
		require.NoError(t, err)
		assert.NotEqual(t, sealed, again, "every seal has its own nonce")

		got, err := k.Open("client-1", sealed, aad)
		require.NoError(t, err)
		assert.Equal(t, plain, got)
		got, err = k.Open("client-1", again, aad)
		require.NoError(t, err)
		assert.Equal(t, plain, got)

		empty, err := k.Seal("client-1", nil, nil)
		require.NoError(t, err)
		got, err = k.Open("client-1", empty, nil)
		require.NoError(t, err)
		assert.Empty(t, got)
	})

	t.Run("wrong aad, other subject or altered bytes fail", func(t *testing.T) {
		k := newKeyring(t, newOpener(t), kek)
		sealed, err := k.Seal("client-1", []byte("secret"), aad)
		require.NoError(t, err)
		_, err = k.Seal("client-2", []byte("other"), aad)
		require.NoError(t, err)

		_, err = k.Open("client-1", sealed, []byte("event 8, field note"))
		assert.Error(t, err, "other aad")
		_, err = k.Open("client-1", sealed, nil)
		assert.Error(t, err, "no aad")
		_, err = k.Open("client-2", sealed, aad)
		assert.Error(t, err, "another subject's key")
		for _, i := range []int{0, 1, 12, 13, len(sealed) - 1} {
			altered := bytes.Clone(sealed)
			altered[i] ^= 0x01
			_, err = k.Open("client-1", altered, aad)
			assert.Error(t, err, "byte %d altered", i)
		}
		_, err = k.Open("client-1", sealed[:len(sealed)-1], aad)
		assert.Error(t, err, "cut short")
		_, err = k.Open("client-1", sealed[:5], aad)
		assert.ErrorContains(t, err, "too short")
		_, err = k.Open("client-1", sealed, aad)
		assert.NoError(t, err, "the original still opens")
	})

	t.Run("subject with a key and no key are told apart", func(t *testing.T) {
		k := newKeyring(t, newOpener(t), kek)
		sealed, err := k.Seal("client-1", []byte("x"), aad)
		require.NoError(t, err)
		_, err = k.Open("client-unknown", sealed, aad)
		require.ErrorIs(t, err, ErrNoKey)
		assert.NotErrorIs(t, err, eventstore.ErrKeyDestroyed)
		assert.ErrorContains(t, err, "client-unknown")
		_, err = k.Open("client-unknown", sealed, aad)
		assert.ErrorIs(t, err, ErrNoKey, "Open creates no key")
	})

	t.Run("subjects must be sane", func(t *testing.T) {
		k := newKeyring(t, newOpener(t), kek)
		for _, s := range []string{"", strings.Repeat("a", 256), "a\x00b", "\xff"} {
			_, err := k.Seal(s, []byte("x"), nil)
			assert.Error(t, err, "%q", s)
		}
	})

	t.Run("destroy forgets one subject only, for good", func(t *testing.T) {
		open := newOpener(t)
		k := newKeyring(t, open, kek)
		ctx := context.Background()
		gone, err := k.Seal("client-1", []byte("forget me"), aad)
		require.NoError(t, err)
		kept, err := k.Seal("client-2", []byte("keep me"), aad)
		require.NoError(t, err)
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

		require.NoError(t, k.Destroy(ctx, "client-1", at))
		_, err = k.Open("client-1", gone, aad)
		assert.ErrorIs(t, err, eventstore.ErrKeyDestroyed)
		_, err = k.Seal("client-1", []byte("new"), aad)
		assert.ErrorIs(t, err, eventstore.ErrKeyDestroyed, "no new key for a forgotten subject")
		got, err := k.Open("client-2", kept, aad)
		require.NoError(t, err)
		assert.Equal(t, "keep me", string(got))

		require.NoError(t, k.Destroy(ctx, "client-1", at.Add(time.Hour)), "idempotent")
		require.NoError(t, k.Destroy(ctx, "client-never-sealed", at))
		_, err = k.Seal("client-never-sealed", []byte("x"), aad)
		assert.ErrorIs(t, err, eventstore.ErrKeyDestroyed, "a tombstone also stops a subject that never had a key")

		// A new process sees the tombstones and the first time of destruction.
		b := open(t)
		rec, err := b.Get(ctx, "client-1")
		require.NoError(t, err)
		assert.Nil(t, rec.Wrapped, "the wrapped key is erased")
		assert.True(t, at.Equal(rec.DestroyedAt), "the first destroyed_at stays: %s", rec.DestroyedAt)
		k2, err := New(Config{Current: kek, Backend: b})
		require.NoError(t, err)
		_, err = k2.Open("client-1", gone, aad)
		assert.ErrorIs(t, err, eventstore.ErrKeyDestroyed)
		_, err = k2.Seal("client-never-sealed", []byte("x"), aad)
		assert.ErrorIs(t, err, eventstore.ErrKeyDestroyed)
		got, err = k2.Open("client-2", kept, aad)
		require.NoError(t, err)
		assert.Equal(t, "keep me", string(got))

		counts, err := k2.Counts(ctx)
		require.NoError(t, err)
		assert.Equal(t, []KEKCount{{KEKID: kek.ID(), Keys: 1}, {Destroyed: true, Keys: 2}}, counts)
	})

	t.Run("keys survive a reopen", func(t *testing.T) {
		open := newOpener(t)
		k := newKeyring(t, open, kek)
		sealed, err := k.Seal("client-1", []byte("durable"), aad)
		require.NoError(t, err)
		require.NoError(t, k.Close())

		k2 := newKeyring(t, open, kek)
		got, err := k2.Open("client-1", sealed, aad)
		require.NoError(t, err)
		assert.Equal(t, "durable", string(got))
	})

	t.Run("concurrent first seals agree on one key", func(t *testing.T) {
		open := newOpener(t)
		const writers = 16
		sealed := make([][]byte, writers)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			// Each writer has its own keyring and cache (and, for the
			// databases, its own connections), as separate processes would.
			k := newKeyring(t, open, kek)
			wg.Go(func() {
				<-start
				sealed[i], errs[i] = k.Seal("client-race", fmt.Appendf(nil, "writer %d", i), aad)
			})
		}
		close(start)
		wg.Wait()
		reader := newKeyring(t, open, kek)
		for i := range writers {
			require.NoError(t, errs[i])
			got, err := reader.Open("client-race", sealed[i], aad)
			require.NoError(t, err, "writer %d sealed under the stored key", i)
			assert.Equal(t, fmt.Sprintf("writer %d", i), string(got))
		}
		counts, err := reader.Counts(context.Background())
		require.NoError(t, err)
		assert.Equal(t, []KEKCount{{KEKID: kek.ID(), Keys: 1}}, counts)
	})

	t.Run("rotation rewraps the keys and the old KEK can go", func(t *testing.T) {
		open := newOpener(t)
		ctx := context.Background()
		oldKEK, newKEK := newKEK(t), newKEK(t)
		k := newKeyring(t, open, oldKEK)
		sealed := map[string][]byte{}
		for i := range 5 {
			s := fmt.Sprintf("client-%d", i)
			var err error
			sealed[s], err = k.Seal(s, []byte(s), aad)
			require.NoError(t, err)
		}
		require.NoError(t, k.Destroy(ctx, "client-4", time.Now()))
		delete(sealed, "client-4")

		rotating := newKeyring(t, open, newKEK, oldKEK)
		for s, v := range sealed {
			got, err := rotating.Open(s, v, aad)
			require.NoError(t, err, "before Rotate the previous KEK opens %s", s)
			assert.Equal(t, s, string(got))
		}
		var err error
		sealed["client-new"], err = rotating.Seal("client-new", []byte("client-new"), aad)
		require.NoError(t, err)
		n, err := rotating.Rotate(ctx)
		require.NoError(t, err)
		assert.Equal(t, 4, n, "the live keys under the old KEK; not the tombstone, not the new key")
		n, err = rotating.Rotate(ctx)
		require.NoError(t, err)
		assert.Zero(t, n, "a second Rotate has nothing left to do")

		rotated := newKeyring(t, open, newKEK)
		for s, v := range sealed {
			got, err := rotated.Open(s, v, aad)
			require.NoError(t, err, "without the old KEK %s still opens", s)
			assert.Equal(t, s, string(got))
		}
		_, err = rotated.Open("client-4", []byte{1}, aad)
		assert.Error(t, err)
		counts, err := rotated.Counts(ctx)
		require.NoError(t, err)
		assert.Equal(t, []KEKCount{{KEKID: newKEK.ID(), Keys: 5}, {Destroyed: true, Keys: 1}}, counts)
	})

	t.Run("a KEK that is not configured is named", func(t *testing.T) {
		open := newOpener(t)
		oldKEK, newKEK := newKEK(t), newKEK(t)
		k := newKeyring(t, open, oldKEK)
		sealed, err := k.Seal("client-1", []byte("x"), aad)
		require.NoError(t, err)

		without := newKeyring(t, open, newKEK)
		_, err = without.Open("client-1", sealed, aad)
		require.ErrorIs(t, err, ErrUnknownKEK)
		assert.ErrorContains(t, err, oldKEK.ID())
		assert.NotErrorIs(t, err, eventstore.ErrKeyDestroyed)
		n, err := without.Rotate(context.Background())
		require.ErrorIs(t, err, ErrUnknownKEK)
		assert.ErrorContains(t, err, oldKEK.ID())
		assert.Zero(t, n)

		got, err := newKeyring(t, open, oldKEK).Open("client-1", sealed, aad)
		require.NoError(t, err, "a failed Rotate changed nothing")
		assert.Equal(t, "x", string(got))
	})
}

// countingBackend counts the reads and writes that reach the backend.
type countingBackend struct {
	Backend
	mu    sync.Mutex
	calls int
}

func (c *countingBackend) count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.calls }
func (c *countingBackend) inc()       { c.mu.Lock(); c.calls++; c.mu.Unlock() }

func (c *countingBackend) Get(ctx context.Context, s string) (Record, error) {
	c.inc()
	return c.Backend.Get(ctx, s)
}

func (c *countingBackend) InsertIfAbsent(ctx context.Context, r Record) (bool, error) {
	c.inc()
	return c.Backend.InsertIfAbsent(ctx, r)
}

func TestCacheSpareTheBackendOnTheHotPath(t *testing.T) {
	b := &countingBackend{Backend: NewMemoryBackend()}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k, err := New(Config{Current: newKEK(t), Backend: b, Clock: func() time.Time { return now }, CacheSize: 2, CacheTTL: time.Minute})
	require.NoError(t, err)

	sealed, err := k.Seal("a", []byte("x"), nil)
	require.NoError(t, err)
	first := b.count()
	assert.Equal(t, 2, first, "a first seal reads, then creates")
	for range 10 {
		_, err = k.Seal("a", []byte("x"), nil)
		require.NoError(t, err)
		_, err = k.Open("a", sealed, nil)
		require.NoError(t, err)
	}
	assert.Equal(t, first, b.count(), "a warm cache does no I/O")

	_, err = k.Seal("b", []byte("x"), nil)
	require.NoError(t, err)
	_, err = k.Seal("c", []byte("x"), nil)
	require.NoError(t, err)
	assert.Equal(t, 2, k.cache.len(), "the cache stays within CacheSize")
	before := b.count()
	_, err = k.Open("a", sealed, nil)
	require.NoError(t, err)
	assert.Equal(t, before+1, b.count(), "the least recently used key was evicted and is read again")

	before = b.count()
	now = now.Add(time.Minute)
	_, err = k.Open("a", sealed, nil)
	require.NoError(t, err)
	assert.Equal(t, before+1, b.count(), "after CacheTTL the key is read again")
}

func TestDestroyByAnotherProcessIsSeenAfterTheCacheTTL(t *testing.T) {
	b := NewMemoryBackend()
	kek := newKEK(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	here, err := New(Config{Current: kek, Backend: b, Clock: clock, CacheTTL: time.Minute})
	require.NoError(t, err)
	there, err := New(Config{Current: kek, Backend: b, Clock: clock})
	require.NoError(t, err)
	sealed, err := here.Seal("a", []byte("x"), nil)
	require.NoError(t, err)
	require.NoError(t, there.Destroy(context.Background(), "a", now))

	_, err = here.Open("a", sealed, nil)
	assert.NoError(t, err, "within the TTL the cached key still opens (documented)")
	now = now.Add(time.Minute)
	_, err = here.Open("a", sealed, nil)
	assert.ErrorIs(t, err, eventstore.ErrKeyDestroyed)
}

func TestConfigValidate(t *testing.T) {
	kek := newKEK(t)
	_, err := New(Config{})
	assert.ErrorContains(t, err, "Current KEK is not set")
	assert.ErrorContains(t, err, "Backend is nil")
	_, err = New(Config{Current: kek, Previous: []KEK{kek}, Backend: NewMemoryBackend()})
	assert.ErrorContains(t, err, "configured twice")
	_, err = New(Config{Current: kek, Previous: []KEK{{}}, Backend: NewMemoryBackend()})
	assert.ErrorContains(t, err, "Previous[0] is not set")
	_, err = New(Config{Current: kek, Backend: NewMemoryBackend(), CacheSize: -1, CacheTTL: -1, IOTimeout: -1})
	assert.ErrorContains(t, err, "CacheSize")
	assert.ErrorContains(t, err, "CacheTTL")
	assert.ErrorContains(t, err, "IOTimeout")

	c := Config{Current: kek, Backend: NewMemoryBackend()}
	c.setDefaults()
	require.NoError(t, c.Validate())
	assert.Equal(t, defaultCacheSize, c.CacheSize)
	assert.Equal(t, defaultCacheTTL, c.CacheTTL)
	assert.Equal(t, defaultIOTimeout, c.IOTimeout)
}

func TestOpenPicksTheBackendByLocation(t *testing.T) {
	kek := newKEK(t)
	path := filepath.Join(t.TempDir(), "keys.db")
	k, err := Open(context.Background(), "sqlite://"+path, Config{Current: kek})
	require.NoError(t, err)
	assert.IsType(t, &SQLiteBackend{}, k.cfg.Backend)
	sealed, err := k.Seal("a", []byte("x"), nil)
	require.NoError(t, err)
	require.NoError(t, k.Close())
	k, err = Open(context.Background(), path, Config{Current: kek})
	require.NoError(t, err)
	defer k.Close()
	_, err = k.Open("a", sealed, nil)
	assert.NoError(t, err, "a plain path is the same SQLite file")

	_, err = Open(context.Background(), path, Config{})
	assert.ErrorContains(t, err, "Current KEK is not set")
}

func TestOpenPostgresLocation(t *testing.T) {
	url := pgtest.NewDatabase(t)
	k, err := Open(context.Background(), url, Config{Current: newKEK(t)})
	require.NoError(t, err)
	defer k.Close()
	assert.IsType(t, &PostgresBackend{}, k.cfg.Backend)
}
