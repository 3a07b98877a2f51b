package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/careflow/careflow/domain"
)

// Password limits. The upper bound keeps one hash cheap to compute for an
// attacker-chosen input; passphrases fit comfortably.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
)

// CheckPassword validates a new password (never a login attempt: a login
// with any input simply fails to match).
func CheckPassword(field, pw string) error {
	if !utf8.ValidString(pw) {
		return domain.Validation("invalid-password", field, "password must be valid UTF-8")
	}
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLength || len(pw) > MaxPasswordLength {
		return domain.Validation("invalid-password", field,
			"password must be at least %d characters and at most %d bytes", MinPasswordLength, MaxPasswordLength)
	}
	if strings.TrimSpace(pw) == "" {
		return domain.Validation("invalid-password", field, "password must not be blank")
	}
	return nil
}

// Argon2Params are the argon2id cost parameters. They are stored in every
// hash, so raising them later still verifies old hashes.
type Argon2Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
	SaltLen   uint32
	KeyLen    uint32
}

// DefaultArgon2Params cost about 50 ms and 32 MiB per hash on a 2-core box
// (measured with BenchmarkHash; see ADR 0006). Memory is the main cost to a
// GPU attacker; time 2 gets the duration into the target with 2 lanes.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{MemoryKiB: 32 * 1024, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32}
}

// TestArgon2Params are cheap parameters for tests only.
func TestArgon2Params() Argon2Params {
	return Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// bounds on parameters read from a stored hash, so a corrupt or hostile
// hash cannot make a verification allocate gigabytes.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 64
	maxKeyLen    = 128
	maxSaltLen   = 64
)

// ErrMalformedHash: a stored hash is not an argon2id PHC string this
// package can verify.
var ErrMalformedHash = errors.New("identity: malformed password hash")

// Hasher hashes and verifies passwords with argon2id. The zero value is not
// usable; use NewHasher.
type Hasher struct {
	params Argon2Params
	dummy  string // a hash of nothing, to spend the same time on unknown users
	// slots bounds hashes running at once: each holds MemoryKiB, so a burst
	// of sign-ins queues instead of exhausting memory.
	slots chan struct{}
}

// NewHasher returns a hasher that makes new hashes with p.
func NewHasher(p Argon2Params) (*Hasher, error) {
	if p.MemoryKiB < 8*uint32(p.Threads) || p.Time < 1 || p.Threads < 1 || p.SaltLen < 8 || p.KeyLen < 16 ||
		p.MemoryKiB > maxMemoryKiB || p.Time > maxTime || p.KeyLen > maxKeyLen || p.SaltLen > maxSaltLen {
		return nil, fmt.Errorf("identity: argon2 parameters %+v are out of range", p)
	}
	h := &Hasher{params: p, slots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
	dummy, err := h.Hash("careflow dummy password for timing")
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Hash returns the PHC string of pw with a fresh random salt:
// $argon2id$v=19$m=<KiB>,t=<time>,p=<threads>$<salt>$<key> (unpadded base64).
func (h *Hasher) Hash(pw string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("identity: salt: %w", err)
	}
	key := h.idKey(pw, salt, h.params, h.params.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.params.MemoryKiB, h.params.Time, h.params.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether pw matches the PHC string encoded, comparing in
// constant time. A malformed hash is an error, never a match.
func (h *Hasher) Verify(pw, encoded string) (bool, error) {
	p, salt, key, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	got := h.idKey(pw, salt, p, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

func (h *Hasher) idKey(pw string, salt []byte, p Argon2Params, keyLen uint32) []byte {
	h.slots <- struct{}{}
	defer func() { <-h.slots }()
	return argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
}

// VerifyNothing spends the time of one verification and always fails: a
// login for an unknown username takes as long as one with a wrong password.
func (h *Hasher) VerifyNothing(pw string) {
	_, _ = h.Verify(pw, h.dummy)
}

func parsePHC(encoded string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, ErrMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, ErrMalformedHash
	}
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil || n != 3 {
		return p, nil, nil, ErrMalformedHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, ErrMalformedHash
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return p, nil, nil, ErrMalformedHash
	}
	if p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB ||
		len(salt) < 8 || len(salt) > maxSaltLen || len(key) < 16 || len(key) > maxKeyLen {
		return p, nil, nil, ErrMalformedHash
	}
	return p, salt, key, nil
}
