// Package viewstest holds what tests of the read models need beside them:
// an in-memory eventstore.Sealer whose keys can be destroyed.
package viewstest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/careflow/careflow/eventstore"
)

// Sealer is an eventstore.Sealer for tests: AES-256-GCM under a random key
// per subject, kept in memory only (nothing survives the process, so it
// has no place in a running service).
type Sealer struct {
	mu        sync.Mutex
	keys      map[string]cipher.AEAD
	destroyed map[string]bool
	seals     int
}

var _ eventstore.Sealer = (*Sealer)(nil)

// NewSealer returns a Sealer with no keys.
func NewSealer() *Sealer {
	return &Sealer{keys: map[string]cipher.AEAD{}, destroyed: map[string]bool{}}
}

// Seal encrypts plaintext under subject's key, made on first use, as
// nonce | ciphertext.
func (s *Sealer) Seal(subject string, plaintext, aad []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed[subject] {
		return nil, fmt.Errorf("viewstest: seal for %s: %w", subject, eventstore.ErrKeyDestroyed)
	}
	aead, ok := s.keys[subject]
	if !ok {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		if aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
		s.keys[subject] = aead
	}
	s.seals++
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plaintext, aad), nil
}

// Open decrypts what Seal returned for subject with the same aad.
func (s *Sealer) Open(subject string, sealed, aad []byte) ([]byte, error) {
	s.mu.Lock()
	aead, ok := s.keys[subject]
	destroyed := s.destroyed[subject]
	s.mu.Unlock()
	if destroyed {
		return nil, fmt.Errorf("viewstest: open for %s: %w", subject, eventstore.ErrKeyDestroyed)
	}
	if !ok {
		return nil, fmt.Errorf("viewstest: no key for %s", subject)
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("viewstest: sealed value too short")
	}
	n := aead.NonceSize()
	return aead.Open(nil, sealed[:n], sealed[n:], aad)
}

// Destroy forgets subject's key: what was sealed under it never opens
// again and nothing more is sealed for subject.
func (s *Sealer) Destroy(subject string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, subject)
	s.destroyed[subject] = true
}

// Seals counts the successful Seal calls so far.
func (s *Sealer) Seals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seals
}
