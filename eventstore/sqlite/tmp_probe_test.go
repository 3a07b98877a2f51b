package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/storetest"
)

func TestTmpProbe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(context.Background(), Config{Path: path}, eventstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := storetest.Stream("session")
			for i := range 400 {
				_, err := s.Append(context.Background(), stream, eventstore.Exactly(int64(i)), []eventstore.NewEvent{storetest.BenchEvent(uuid.NewString(), i)})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	t.Logf("%v total, %.0f/s, batches %d, commit time %v, tx time %v", el, 6400/el.Seconds(), probeBatches, probeCommit, probeTx)
}
