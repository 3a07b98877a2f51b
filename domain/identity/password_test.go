package identity

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
)

func testHasher(t testing.TB) *Hasher {
	t.Helper()
	h, err := NewHasher(TestArgon2Params())
	require.NoError(t, err)
	return h
}

func TestHashIsPHCWithParametersAndSalt(t *testing.T) {
	h := testHasher(t)
	a, err := h.Hash("correct horse battery")
	require.NoError(t, err)
	b, err := h.Hash("correct horse battery")
	require.NoError(t, err)

	assert.True(t, strings.HasPrefix(a, "$argon2id$v=19$m=64,t=1,p=1$"), a)
	assert.NotEqual(t, a, b, "each hash has its own salt")
	assert.NotContains(t, a, "correct horse")
}

func TestVerify(t *testing.T) {
	h := testHasher(t)
	enc, err := h.Hash("correct horse battery")
	require.NoError(t, err)

	ok, err := h.Verify("correct horse battery", enc)
	require.NoError(t, err)
	assert.True(t, ok)

	ok, err = h.Verify("correct horse batterY", enc)
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestVerifyUsesTheParametersStoredInTheHash(t *testing.T) {
	old, err := NewHasher(Argon2Params{MemoryKiB: 128, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32})
	require.NoError(t, err)
	enc, err := old.Hash("a long enough password")
	require.NoError(t, err)

	ok, err := testHasher(t).Verify("a long enough password", enc)
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestVerifyRefusesMalformedHashes(t *testing.T) {
	h := testHasher(t)
	good, err := h.Hash("a long enough password")
	require.NoError(t, err)
	parts := strings.Split(good, "$")
	for name, enc := range map[string]string{
		"empty":          "",
		"argon2i":        strings.Replace(good, "argon2id", "argon2i", 1),
		"bad version":    strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":    strings.Replace(good, "m=64", "m=99999999", 1),
		"zero time":      strings.Replace(good, "t=1", "t=0", 1),
		"salt not b64":   strings.Join([]string{"", parts[1], parts[2], parts[3], "!!!", parts[5]}, "$"),
		"short key":      strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "AAAA"}, "$"),
		"missing fields": "$argon2id$v=19$m=64,t=1,p=1",
	} {
		t.Run(name, func(t *testing.T) {
			ok, err := h.Verify("a long enough password", enc)
			assert.ErrorIs(t, err, ErrMalformedHash)
			assert.False(t, ok)
		})
	}
}

func TestNewHasherRefusesWeakOrAbsurdParameters(t *testing.T) {
	for _, p := range []Argon2Params{
		{MemoryKiB: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8},
		{MemoryKiB: 4 << 20, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	} {
		_, err := NewHasher(p)
		assert.Error(t, err, "%+v", p)
	}
}

func TestCheckPassword(t *testing.T) {
	assert.NoError(t, CheckPassword("password", "twelve chars"))
	for _, pw := range []string{"", "short", strings.Repeat(" ", 20), strings.Repeat("x", MaxPasswordLength+1), "\xff\xfe invalid utf8"} {
		err := CheckPassword("password", pw)
		require.Error(t, err, "%q", pw)
		var de *domain.Error
		require.ErrorAs(t, err, &de)
		assert.Equal(t, domain.KindValidation, de.Kind)
		assert.Equal(t, "password", de.Field)
	}
}

// BenchmarkHash measures the production parameters: the target is about
// 50 ms per hash on a 2-core box.
func BenchmarkHash(b *testing.B) {
	h, err := NewHasher(DefaultArgon2Params())
	require.NoError(b, err)
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHasherIsSafeForConcurrentUse(t *testing.T) {
	h := testHasher(t)
	var wg sync.WaitGroup
	results := make([]bool, 16)
	for i := range results {
		wg.Go(func() {
			pw := fmt.Sprintf("password number %d", i)
			enc, err := h.Hash(pw)
			if err != nil {
				return
			}
			ok, err := h.Verify(pw, enc)
			results[i] = ok && err == nil
		})
	}
	wg.Wait()
	for i, ok := range results {
		assert.True(t, ok, "goroutine %d", i)
	}
}
