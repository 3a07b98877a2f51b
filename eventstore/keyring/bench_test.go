package keyring

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkSealOpen seals and opens a 200-byte field of a subject whose key
// is cached: the hot path of the codec and the read models.
func BenchmarkSealOpen(b *testing.B) {
	for _, backend := range []string{"memory", "sqlite"} {
		b.Run(backend, func(b *testing.B) {
			var be Backend = NewMemoryBackend()
			if backend == "sqlite" {
				var err error
				if be, err = OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "keys.db")); err != nil {
					b.Fatal(err)
				}
			}
			kek, _, err := GenerateKEK(bytes.NewReader(bytes.Repeat([]byte{1}, 32)))
			if err != nil {
				b.Fatal(err)
			}
			k, err := New(Config{Current: kek, Backend: be})
			if err != nil {
				b.Fatal(err)
			}
			defer k.Close()
			field := bytes.Repeat([]byte("p"), 200)
			aad := []byte("0190c3d2-7f7e-7000-8000-000000000000/note")
			if _, err := k.Seal("client-1", field, aad); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(field)))
			b.ReportAllocs()
			for b.Loop() {
				sealed, err := k.Seal("client-1", field, aad)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := k.Open("client-1", sealed, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
