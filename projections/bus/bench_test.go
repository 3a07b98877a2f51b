package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
)

// discardPublisher accepts everything: the benchmark measures the relay and
// its checkpoint writes, not a broker.
type discardPublisher struct{}

func (discardPublisher) Publish(string, ...*message.Message) error { return nil }
func (discardPublisher) Close() error                              { return nil }

// signallingCheckpoints closes reached once position target is saved.
type signallingCheckpoints struct {
	Checkpoints
	target  int64
	reached chan struct{}
}

func (s *signallingCheckpoints) Save(ctx context.Context, name string, position int64) error {
	if err := s.Checkpoints.Save(ctx, name, position); err != nil {
		return err
	}
	if position == s.target {
		close(s.reached)
	}
	return nil
}

// BenchmarkRelay measures events relayed per second from a memory store to
// a publisher that discards them; what remains is the relay itself and its
// SQLite checkpoint (one synchronous=FULL commit per batch).
func BenchmarkRelay(b *testing.B) {
	for _, batch := range []int{1, DefaultRelayBatch} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchmarkRelay(b, batch) })
	}
}

func benchmarkRelay(b *testing.B, batch int) {
	ctx := context.Background()
	store := memory.New(eventstore.Options{})
	defer func() { _ = store.Close() }()
	stream := eventstore.NewStreamID("session", "bench")
	data, err := json.Marshal(map[string]string{"note": "x"})
	require.NoError(b, err)
	for i := 0; i < b.N; i++ {
		_, err := store.Append(ctx, stream, eventstore.AnyVersion, []eventstore.NewEvent{{Type: "session.noted", Data: data}})
		require.NoError(b, err)
	}
	db, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), "relay.db"))
	require.NoError(b, err)
	defer func() { _ = db.Close() }()
	sqlCheckpoints, err := NewSQLCheckpoints(ctx, db, SQLite, nil)
	require.NoError(b, err)
	checkpoints := &signallingCheckpoints{Checkpoints: sqlCheckpoints, target: int64(b.N), reached: make(chan struct{})}
	relay, err := NewRelay(RelayConfig{Name: "bench", Store: store, Publisher: discardPublisher{}, Checkpoints: checkpoints, BatchSize: batch})
	require.NoError(b, err)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	b.ResetTimer()
	go func() { done <- relay.Run(runCtx) }()
	select {
	case <-checkpoints.reached:
	case err := <-done:
		b.Fatalf("relay stopped: %v", err)
	}
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
