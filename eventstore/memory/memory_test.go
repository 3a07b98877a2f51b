package memory_test

import (
	"testing"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/eventstore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts eventstore.Options) eventstore.Store {
		s := memory.New(opts)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
