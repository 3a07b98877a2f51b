// Package keyring keeps one data key per subject (a client id) for field
// encryption and crypto-shredding: PHI is sealed under its subject's key,
// and destroying that key makes everything sealed for the subject
// unreadable while the events that carry it stay in the log.
//
// Envelope encryption: each data key (DEK, 256 random bits) is stored
// wrapped by a key-encryption key (KEK) that lives only in configuration.
// The database alone opens nothing; the KEK alone holds no data. Rotating
// the KEK rewraps the stored DEKs and never touches an event.
//
// Formats (version 1):
//
//	sealed  = 0x01 | nonce (12) | AES-256-GCM(DEK, plaintext, ad) (ciphertext | 16-byte tag)
//	ad      = "careflow-seal-v1" | uvarint(len(subject)) | subject | aad
//	wrapped = nonce (12) | AES-256-GCM(KEK, DEK, "careflow-wrap-v1" | uvarint(len(subject)) | subject | key id)
package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/careflow/careflow/eventstore"
)

// ErrNoKey: the subject has no data key, so nothing was ever sealed for it
// by this keyring (a wrong subject, or the wrong keys database).
var ErrNoKey = errors.New("keyring: no data key for the subject")

// ErrUnknownKEK: a data key is wrapped under a KEK that is not configured
// (neither Current nor among Previous). The error names the KEK's ID.
var ErrUnknownKEK = errors.New("keyring: data key is wrapped under a KEK that is not configured")

// sealVersion is the first byte of every sealed value.
const sealVersion byte = 1

const (
	nonceSize   = 12
	tagSize     = 16
	dekSize     = 32
	maxSubject  = 255
	sealContext = "careflow-seal-v1"
	wrapContext = "careflow-wrap-v1"
)

// Config configures a Keyring.
type Config struct {
	// Current wraps every new data key and is what Rotate rewraps to.
	Current KEK
	// Previous are older KEKs still accepted to unwrap keys not yet
	// rewrapped. After Rotate they can be dropped.
	Previous []KEK
	// Backend stores the wrapped keys. The Keyring owns it: Close closes it.
	Backend Backend
	// Clock stamps created_at. Defaults to time.Now.
	Clock func() time.Time
	// Random makes data keys and nonces. Defaults to crypto/rand.Reader.
	Random io.Reader
	// CacheSize is how many unwrapped data keys (and tombstones) stay in
	// memory, least recently used evicted first. Defaults to 10000.
	CacheSize int
	// CacheTTL bounds how long a cached key is used before it is read
	// again, so a key destroyed by another process stops working here too.
	// Defaults to 5 minutes.
	CacheTTL time.Duration
	// IOTimeout bounds each backend call made by Seal and Open, which take
	// no context. Defaults to 10s.
	IOTimeout time.Duration
}

const (
	defaultCacheSize = 10000
	defaultCacheTTL  = 5 * time.Minute
	defaultIOTimeout = 10 * time.Second
)

func (c *Config) setDefaults() {
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Random == nil {
		c.Random = rand.Reader
	}
	if c.CacheSize == 0 {
		c.CacheSize = defaultCacheSize
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = defaultCacheTTL
	}
	if c.IOTimeout == 0 {
		c.IOTimeout = defaultIOTimeout
	}
}

// Validate reports what is wrong with the configuration (after defaults).
func (c Config) Validate() error {
	var errs []error
	if c.Current.IsZero() {
		errs = append(errs, errors.New("keyring: Current KEK is not set"))
	}
	seen := map[string]bool{c.Current.ID(): !c.Current.IsZero()}
	for i, k := range c.Previous {
		switch {
		case k.IsZero():
			errs = append(errs, fmt.Errorf("keyring: Previous[%d] is not set", i))
		case seen[k.ID()]:
			errs = append(errs, fmt.Errorf("keyring: Previous[%d] (KEK %s) is configured twice", i, k.ID()))
		}
		seen[k.ID()] = true
	}
	if c.Backend == nil {
		errs = append(errs, errors.New("keyring: Backend is nil"))
	}
	if c.CacheSize < 1 {
		errs = append(errs, fmt.Errorf("keyring: CacheSize %d must be at least 1", c.CacheSize))
	}
	if c.CacheTTL < 0 {
		errs = append(errs, fmt.Errorf("keyring: CacheTTL %s must not be negative", c.CacheTTL))
	}
	if c.IOTimeout < 0 {
		errs = append(errs, fmt.Errorf("keyring: IOTimeout %s must not be negative", c.IOTimeout))
	}
	return errors.Join(errs...)
}

// Keyring seals and opens values under per-subject data keys. It is safe
// for concurrent use, also by several processes sharing one backend.
type Keyring struct {
	cfg     Config
	current cipher.AEAD
	keks    map[string]cipher.AEAD // by KEK id, Current included
	cache   *lru
}

var _ eventstore.Sealer = (*Keyring)(nil)

// New returns a keyring over cfg.Backend, which it takes over.
func New(cfg Config) (*Keyring, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	k := &Keyring{cfg: cfg, keks: make(map[string]cipher.AEAD), cache: newLRU(cfg.CacheSize)}
	for _, kek := range append([]KEK{cfg.Current}, cfg.Previous...) {
		aead, err := newAEAD(kek.key[:])
		if err != nil {
			return nil, err
		}
		k.keks[kek.ID()] = aead
	}
	k.current = k.keks[cfg.Current.ID()]
	return k, nil
}

// Close closes the backend.
func (k *Keyring) Close() error { return k.cfg.Backend.Close() }

// CurrentKEKID is the ID of the KEK new keys are wrapped under.
func (k *Keyring) CurrentKEKID() string { return k.cfg.Current.ID() }

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return cipher.NewGCM(block)
}

func checkSubject(subject string) error {
	switch {
	case subject == "":
		return errors.New("keyring: subject is empty")
	case len(subject) > maxSubject:
		return fmt.Errorf("keyring: subject is %d bytes; at most %d are allowed", len(subject), maxSubject)
	case !utf8.ValidString(subject) || strings.ContainsRune(subject, 0):
		// PostgreSQL text holds neither.
		return errors.New("keyring: subject must be UTF-8 without NUL")
	}
	return nil
}

// boundData is the GCM additional data: a context label, then subject with
// its length (so subject and aad cannot trade bytes), then tail.
func boundData(label, subject string, tail []byte) []byte {
	ad := make([]byte, 0, len(label)+binary.MaxVarintLen64+len(subject)+len(tail))
	ad = append(ad, label...)
	ad = binary.AppendUvarint(ad, uint64(len(subject)))
	ad = append(ad, subject...)
	return append(ad, tail...)
}

// Seal encrypts plaintext for subject, binding aad and the subject. It
// creates the subject's data key on first use and stores it durably
// before returning.
func (k *Keyring) Seal(subject string, plaintext, aad []byte) ([]byte, error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	dek, err := k.dek(subject, true)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = sealVersion
	if _, err := io.ReadFull(k.cfg.Random, out[1:]); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	return dek.Seal(out, out[1:], plaintext, boundData(sealContext, subject, aad)), nil
}

// Open decrypts what Seal returned for the same subject and aad.
func (k *Keyring) Open(subject string, sealed, aad []byte) ([]byte, error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	if len(sealed) < 1+nonceSize+tagSize {
		return nil, fmt.Errorf("keyring: sealed value is %d bytes, too short", len(sealed))
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("keyring: sealed value has unknown version %d", sealed[0])
	}
	dek, err := k.dek(subject, false)
	if err != nil {
		return nil, err
	}
	plain, err := dek.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], boundData(sealContext, subject, aad))
	if err != nil {
		return nil, fmt.Errorf("keyring: open a value of subject %s: altered, or sealed with other aad or for another subject", subject)
	}
	return plain, nil
}

// dek returns the subject's data key from the cache or the backend,
// creating it if create is set and the subject has none.
func (k *Keyring) dek(subject string, create bool) (cipher.AEAD, error) {
	now := k.cfg.Clock()
	if e, ok := k.cache.get(subject, now, k.cfg.CacheTTL); ok {
		if e.aead == nil {
			return nil, destroyedError(subject)
		}
		return e.aead, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.cfg.IOTimeout)
	defer cancel()
	rec, err := k.cfg.Backend.Get(ctx, subject)
	if errors.Is(err, errNotFound) && create {
		rec, err = k.create(ctx, subject)
	}
	if errors.Is(err, errNotFound) {
		return nil, fmt.Errorf("%w %s", ErrNoKey, subject)
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: read the key of subject %s: %w", subject, err)
	}
	e := entry{}
	if !rec.Destroyed() {
		if e.aead, err = k.unwrap(rec); err != nil {
			return nil, err
		}
	}
	// A Destroy that ran while this read was in flight has left its
	// tombstone in the cache: that one wins over what was read.
	e = k.cache.putIfAbsent(subject, e, now)
	if e.aead == nil {
		return nil, destroyedError(subject)
	}
	return e.aead, nil
}

func destroyedError(subject string) error {
	return fmt.Errorf("%w: subject %s", eventstore.ErrKeyDestroyed, subject)
}

// create makes a data key for subject and stores it unless another writer
// (goroutine or process) got there first; either way it returns the one
// stored, which is the one everybody uses.
func (k *Keyring) create(ctx context.Context, subject string) (Record, error) {
	dek := make([]byte, dekSize)
	defer clear(dek)
	id := make([]byte, 8)
	if _, err := io.ReadFull(k.cfg.Random, dek); err != nil {
		return Record{}, fmt.Errorf("keyring: new data key: %w", err)
	}
	if _, err := io.ReadFull(k.cfg.Random, id); err != nil {
		return Record{}, fmt.Errorf("keyring: new data key: %w", err)
	}
	rec := Record{Subject: subject, KeyID: hex.EncodeToString(id), KEKID: k.cfg.Current.ID(), CreatedAt: k.cfg.Clock().UTC()}
	var err error
	if rec.Wrapped, err = k.wrap(k.current, rec, dek); err != nil {
		return Record{}, err
	}
	inserted, err := k.cfg.Backend.InsertIfAbsent(ctx, rec)
	if err != nil {
		return Record{}, fmt.Errorf("keyring: store the key of subject %s: %w", subject, err)
	}
	if inserted {
		return rec, nil
	}
	return k.cfg.Backend.Get(ctx, subject)
}

func (k *Keyring) wrap(kek cipher.AEAD, rec Record, dek []byte) ([]byte, error) {
	out := make([]byte, nonceSize, nonceSize+len(dek)+tagSize)
	if _, err := io.ReadFull(k.cfg.Random, out); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	return kek.Seal(out, out, dek, boundData(wrapContext, rec.Subject, []byte(rec.KeyID))), nil
}

// unwrapKey returns the raw data key of a live record.
func (k *Keyring) unwrapKey(rec Record) ([]byte, error) {
	kek, ok := k.keks[rec.KEKID]
	if !ok {
		return nil, fmt.Errorf("%w: the key of subject %s needs KEK %s; add it to the previous KEKs", ErrUnknownKEK, rec.Subject, rec.KEKID)
	}
	if len(rec.Wrapped) != nonceSize+dekSize+tagSize {
		return nil, fmt.Errorf("keyring: the stored key of subject %s is %d bytes, not a wrapped key", rec.Subject, len(rec.Wrapped))
	}
	dek, err := kek.Open(nil, rec.Wrapped[:nonceSize], rec.Wrapped[nonceSize:], boundData(wrapContext, rec.Subject, []byte(rec.KeyID)))
	if err != nil {
		return nil, fmt.Errorf("keyring: the stored key of subject %s does not unwrap under KEK %s: altered or moved", rec.Subject, rec.KEKID)
	}
	return dek, nil
}

func (k *Keyring) unwrap(rec Record) (cipher.AEAD, error) {
	dek, err := k.unwrapKey(rec)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	return newAEAD(dek)
}

// Destroy forgets subject: its data key is erased and a tombstone stays, so
// nothing sealed for the subject opens again and Seal never makes a new
// key for it. Destroying again changes nothing. at is recorded as
// destroyed_at.
func (k *Keyring) Destroy(ctx context.Context, subject string, at time.Time) error {
	if err := checkSubject(subject); err != nil {
		return err
	}
	if err := k.cfg.Backend.Destroy(ctx, subject, at.UTC()); err != nil {
		// The key may be gone or not: use it no more from the cache either.
		k.cache.remove(subject)
		return fmt.Errorf("keyring: destroy the key of subject %s: %w", subject, err)
	}
	k.cache.put(subject, entry{}, k.cfg.Clock())
	return nil
}

// rotateBatch is how many keys Rotate reads at a time.
const rotateBatch = 500

// Rotate rewraps every live data key not wrapped under the Current KEK,
// using the Previous KEK that wrapped it. The data keys themselves, and so
// every sealed value, stay the same. Keys whose KEK is not configured are
// skipped and reported in the error, which names their KEK ids; the count
// says how many were rewrapped.
func (k *Keyring) Rotate(ctx context.Context) (rewrapped int, err error) {
	currentID := k.cfg.Current.ID()
	missing := map[string]int{}
	after := ""
	for {
		recs, err := k.cfg.Backend.NotWrappedUnder(ctx, currentID, after, rotateBatch)
		if err != nil {
			return rewrapped, fmt.Errorf("keyring: rotate: %w", err)
		}
		for _, rec := range recs {
			after = rec.Subject
			if _, ok := k.keks[rec.KEKID]; !ok {
				missing[rec.KEKID]++
				continue
			}
			dek, err := k.unwrapKey(rec)
			if err != nil {
				return rewrapped, err
			}
			wrapped, err := k.wrap(k.current, rec, dek)
			clear(dek)
			if err != nil {
				return rewrapped, err
			}
			ok, err := k.cfg.Backend.Rewrap(ctx, rec.Subject, rec.KEKID, currentID, wrapped)
			if err != nil {
				return rewrapped, fmt.Errorf("keyring: rotate the key of subject %s: %w", rec.Subject, err)
			}
			if ok {
				rewrapped++
			}
		}
		if len(recs) < rotateBatch {
			break
		}
	}
	if len(missing) > 0 {
		var b strings.Builder
		for _, id := range slices.Sorted(maps.Keys(missing)) {
			fmt.Fprintf(&b, " %s (%d keys)", id, missing[id])
		}
		return rewrapped, fmt.Errorf("%w: rotate left keys under KEKs not configured:%s", ErrUnknownKEK, b.String())
	}
	return rewrapped, nil
}

// Counts returns how many live keys each KEK wraps and how many subjects
// were destroyed.
func (k *Keyring) Counts(ctx context.Context) ([]KEKCount, error) {
	c, err := k.cfg.Backend.Counts(ctx)
	if err != nil {
		return nil, fmt.Errorf("keyring: count keys: %w", err)
	}
	return c, nil
}

// sealedOverhead is how many bytes Seal adds to a plaintext.
const sealedOverhead = 1 + nonceSize + tagSize

// SealedSize is the length of what Seal returns for n bytes of plaintext.
func SealedSize(n int) int { return n + sealedOverhead }
