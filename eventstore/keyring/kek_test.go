package keyring

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGenerateAndParseKEK(t *testing.T) {
	k, text, err := GenerateKEK(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	require.NoError(t, err)
	assert.Equal(t, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)), text)
	parsed, err := ParseKEK(" \n" + text + "\n")
	require.NoError(t, err)
	assert.Equal(t, k, parsed)
	assert.Equal(t, k.ID(), parsed.ID())
	assert.Len(t, k.ID(), 16)
	assert.Regexp(t, "^[0-9a-f]{16}$", k.ID())

	raw := bytes.Repeat([]byte{0xfb}, 32) // differs between the std and URL alphabets
	want, err := NewKEK(raw)
	require.NoError(t, err)
	for _, form := range []string{
		hex.EncodeToString(raw),
		strings.ToUpper(hex.EncodeToString(raw)),
		base64.StdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
	} {
		got, err := ParseKEK(form)
		require.NoError(t, err, form)
		assert.Equal(t, want.ID(), got.ID(), form)
	}

	other, _, err := GenerateKEK(bytes.NewReader(bytes.Repeat([]byte{8}, 32)))
	require.NoError(t, err)
	assert.NotEqual(t, k.ID(), other.ID())

	_, _, err = GenerateKEK(bytes.NewReader(nil))
	assert.Error(t, err, "a failing random source is an error")
}

func TestParseKEKRefusesWithoutRepeatingTheText(t *testing.T) {
	for _, text := range []string{
		"",
		"   ",
		base64.StdEncoding.EncodeToString(make([]byte, 16)),
		hex.EncodeToString(make([]byte, 31)),
		"not a key at all, but long enough to look like one!",
	} {
		_, err := ParseKEK(text)
		require.Error(t, err, "%q", text)
		if strings.TrimSpace(text) != "" {
			assert.NotContains(t, err.Error(), strings.TrimSpace(text), "the error does not repeat a secret")
		}
	}
	_, err := ParseKEK(base64.StdEncoding.EncodeToString(make([]byte, 16)))
	assert.ErrorContains(t, err, "16 bytes")
}

func TestKEKNeverPrintsItself(t *testing.T) {
	k, text, err := GenerateKEK(bytes.NewReader(bytes.Repeat([]byte{9}, 32)))
	require.NoError(t, err)
	for _, s := range []string{k.String(), k.GoString()} {
		assert.NotContains(t, s, text)
		assert.Contains(t, s, k.ID())
	}
	assert.True(t, KEK{}.IsZero())
	assert.False(t, k.IsZero())
}

func TestLoadKEKFile(t *testing.T) {
	dir := t.TempDir()
	k, text, err := GenerateKEK(bytes.NewReader(bytes.Repeat([]byte{3}, 32)))
	require.NoError(t, err)
	path := filepath.Join(dir, "kek")
	require.NoError(t, os.WriteFile(path, []byte(text+"\n"), 0o600))
	got, err := LoadKEKFile(path)
	require.NoError(t, err)
	assert.Equal(t, k.ID(), got.ID())

	require.NoError(t, os.Chmod(path, 0o644))
	_, err = LoadKEKFile(path)
	assert.ErrorContains(t, err, "chmod 600", "a file others may read is refused")

	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("short"), 0o600))
	_, err = LoadKEKFile(bad)
	assert.ErrorContains(t, err, bad)

	_, err = LoadKEKFile(filepath.Join(dir, "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
