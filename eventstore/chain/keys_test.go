package chain

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGenerateKeyWritesAPrivateFileAndItsPublicKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "chain.key")
	pub, err := GenerateKey(path)
	require.NoError(t, err)

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	priv, err := LoadPrivateKey(path)
	require.NoError(t, err)
	assert.Equal(t, pub, priv.Public())

	loadedPub, err := LoadPublicKey(PublicKeyPath(path))
	require.NoError(t, err)
	assert.Equal(t, pub, loadedPub)

	_, err = GenerateKey(path)
	require.Error(t, err, "an existing key is never overwritten")
	again, err := LoadPrivateKey(path)
	require.NoError(t, err)
	assert.Equal(t, priv, again)
}

func TestLoadPrivateKeyRefusesAKeyOthersCanRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chain.key")
	_, err := GenerateKey(path)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(path, 0o644))
	_, err = LoadPrivateKey(path)
	assert.ErrorContains(t, err, "chmod 600")
}

func TestLoadKeyRefusesTheWrongFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chain.key")
	_, err := GenerateKey(path)
	require.NoError(t, err)
	_, err = LoadPublicKey(path)
	assert.Error(t, err, "a private key is not a public key file")

	garbage := filepath.Join(t.TempDir(), "garbage.key")
	require.NoError(t, os.WriteFile(garbage, []byte("not a key"), 0o600))
	_, err = LoadPrivateKey(garbage)
	assert.Error(t, err)
	_, err = LoadPrivateKey(filepath.Join(t.TempDir(), "missing.key"))
	assert.Error(t, err)
}

func TestCheckpointSignature(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	otherPub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	head := Next(Genesis, sampleEvent())
	c := Sign(priv, head, time.Date(2026, 11, 22, 20, 0, 0, 123456789, time.FixedZone("CET", 3600)))

	assert.Equal(t, head.Position, c.Position)
	assert.Equal(t, head.Hash, c.Hash)
	assert.Equal(t, time.Date(2026, 11, 22, 19, 0, 0, 123456000, time.UTC), c.SignedAt)
	assert.Equal(t, KeyID(pub), c.KeyID)
	require.NoError(t, c.VerifySignature(pub))
	assert.Contains(t, string(c.Message()), "signed-at 2026-11-22T19:00:00.123456Z\n")

	assert.ErrorContains(t, c.VerifySignature(otherPub), "not by the given key")

	tampered := c
	tampered.Signature = append([]byte(nil), c.Signature...)
	tampered.Signature[0] ^= 1
	assert.ErrorContains(t, tampered.VerifySignature(pub), "does not verify")

	moved := c
	moved.Position++
	assert.Error(t, moved.VerifySignature(pub), "the signature covers the position")
	rehashed := c
	rehashed.Hash[0] ^= 1
	assert.Error(t, rehashed.VerifySignature(pub), "the signature covers the hash")
	redated := c
	redated.SignedAt = c.SignedAt.Add(time.Microsecond)
	assert.Error(t, redated.VerifySignature(pub), "the signature covers the time")
}
