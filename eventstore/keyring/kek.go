package keyring

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// KEK is a key-encryption key: 32 random bytes from configuration that
// wrap (encrypt) the data keys stored in the database. It never goes into
// the database; only its ID does.
type KEK struct {
	key [32]byte
	set bool
}

// ID names the KEK without revealing it: the hex of the first 8 bytes of
// its SHA-256. It is stored beside every data key the KEK wraps, so the
// keyring knows which configured KEK opens which key.
func (k KEK) ID() string {
	sum := sha256.Sum256(k.key[:])
	return hex.EncodeToString(sum[:8])
}

// IsZero reports whether k was never set (the zero KEK).
func (k KEK) IsZero() bool { return !k.set }

// String never prints the key itself, so a KEK that ends up in a log line
// or an error shows its ID only.
func (k KEK) String() string {
	if !k.set {
		return "KEK(none)"
	}
	return "KEK(" + k.ID() + ")"
}

// GoString keeps %#v from printing the key bytes.
func (k KEK) GoString() string { return k.String() }

// Text is the KEK in the form GenerateKEK prints and ParseKEK reads
// (standard base64).
func (k KEK) Text() string { return base64.StdEncoding.EncodeToString(k.key[:]) }

// NewKEK makes a KEK of exactly 32 bytes.
func NewKEK(b []byte) (KEK, error) {
	if len(b) != 32 {
		return KEK{}, fmt.Errorf("keyring: a KEK is 32 bytes, not %d", len(b))
	}
	k := KEK{set: true}
	copy(k.key[:], b)
	return k, nil
}

// GenerateKEK makes a new KEK from random (crypto/rand.Reader in
// production) and returns it with its text form for a key file or the
// CAREFLOW_KEK variable.
func GenerateKEK(random io.Reader) (KEK, string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(random, b); err != nil {
		return KEK{}, "", fmt.Errorf("keyring: generate KEK: %w", err)
	}
	k, err := NewKEK(b)
	if err != nil {
		return KEK{}, "", err
	}
	return k, k.Text(), nil
}

// ParseKEK reads a KEK written as base64 (standard or URL alphabet, with or
// without padding) or hex, surrounding whitespace ignored. It must decode
// to exactly 32 bytes. The error never repeats the text: it is a secret.
func ParseKEK(text string) (KEK, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return KEK{}, errors.New("keyring: the KEK is empty")
	}
	// 64 hex digits are also valid base64 (of 48 bytes), so hex goes first.
	if len(text) == 64 {
		if b, err := hex.DecodeString(text); err == nil {
			return NewKEK(b)
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil {
			if len(b) != 32 {
				return KEK{}, fmt.Errorf("keyring: the KEK decodes to %d bytes; it must be 32 (careflow keys generate makes one)", len(b))
			}
			return NewKEK(b)
		}
	}
	return KEK{}, fmt.Errorf("keyring: the KEK (%d characters) is neither base64 nor hex of 32 bytes (careflow keys generate makes one)", len(text))
}

// LoadKEKFile reads a KEK from a file holding its text (ParseKEK). Like ssh
// with a private key, it refuses a file that others than its owner may
// read or write.
func LoadKEKFile(path string) (KEK, error) {
	info, err := os.Stat(path)
	if err != nil {
		return KEK{}, fmt.Errorf("keyring: KEK file: %w", err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return KEK{}, fmt.Errorf("keyring: KEK file %s has mode %s: others may read it; chmod 600 it", path, info.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return KEK{}, fmt.Errorf("keyring: KEK file: %w", err)
	}
	k, err := ParseKEK(string(b))
	if err != nil {
		return KEK{}, fmt.Errorf("KEK file %s: %w", path, err)
	}
	return k, nil
}
