package memory_test

import (
	"testing"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/eventstore/storetest"
)

func BenchmarkMemory(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) eventstore.Store {
		s := memory.New(eventstore.Options{})
		b.Cleanup(func() { _ = s.Close() })
		return s
	})
}
