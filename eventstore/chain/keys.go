package chain

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// PEM block types of the key files (PKCS#8 and PKIX, as openssl writes
// them).
const (
	privateKeyBlock = "PRIVATE KEY"
	publicKeyBlock  = "PUBLIC KEY"
)

// PublicKeyPath is where GenerateKey writes the public half of the key at
// path.
func PublicKeyPath(path string) string { return path + ".pub" }

// GenerateKey creates a new Ed25519 signing key in a file at path (PEM,
// PKCS#8) readable by its owner only, and its public key beside it at
// PublicKeyPath(path). It never overwrites an existing key.
func GenerateKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("chain: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("chain: encode key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("chain: encode public key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("chain: create directory for %s: %w", path, err)
	}
	if err := writeNew(path, pem.EncodeToMemory(&pem.Block{Type: privateKeyBlock, Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(PublicKeyPath(path), pem.EncodeToMemory(&pem.Block{Type: publicKeyBlock, Bytes: pubDER}), 0o644); err != nil {
		return nil, errors.Join(err, os.Remove(path))
	}
	return pub, nil
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("chain: create %s: %w", path, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("chain: write %s: %w", path, err)
	}
	return nil
}

// LoadPrivateKey reads a signing key written by GenerateKey (or openssl
// genpkey -algorithm ed25519). It refuses a file that others than its
// owner may read or write, as ssh does.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("chain: signing key: %w", err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("chain: signing key %s has mode %s: others may read it; chmod 600 it", path, info.Mode().Perm())
	}
	block, err := readPEM(path, privateKeyBlock)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("chain: signing key %s: %w", path, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("chain: signing key %s is a %T, not an Ed25519 key", path, key)
	}
	return priv, nil
}

// LoadPublicKey reads a public key file written by GenerateKey (or openssl
// pkey -pubout).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	block, err := readPEM(path, publicKeyBlock)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("chain: public key %s: %w", path, err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("chain: public key %s is a %T, not an Ed25519 key", path, key)
	}
	return pub, nil
}

func readPEM(path, blockType string) (*pem.Block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chain: read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != blockType {
		return nil, fmt.Errorf("chain: %s holds no PEM %q block", path, blockType)
	}
	return block, nil
}
