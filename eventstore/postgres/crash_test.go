package postgres

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/eventstore/storetest"
)

const crashURLEnv = "CAREFLOW_POSTGRES_CRASH_URL"

// TestCrashChild is the process TestCrashKeepsAcknowledgedAppends kills. It
// appends from several goroutines and prints one line per acknowledged
// append, after Append returned.
func TestCrashChild(t *testing.T) {
	url := os.Getenv(crashURLEnv)
	if url == "" {
		t.Skip("only runs as the child of TestCrashKeepsAcknowledgedAppends")
	}
	ctx := context.Background()
	s, err := Open(ctx, Config{URL: url}, eventstore.Options{})
	require.NoError(t, err)
	var out sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Minute) // in case the parent is gone
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			streams := []eventstore.StreamID{storetest.Stream("client"), storetest.Stream("session")}
			versions := make([]int64, len(streams))
			for i := 0; time.Now().Before(deadline); i++ {
				k := i % len(streams)
				batch := []eventstore.NewEvent{storetest.Event(fmt.Sprintf("w%d-%d", w, i))}
				if i%3 == 0 {
					batch = append(batch, storetest.Event(fmt.Sprintf("w%d-%d-b", w, i)))
				}
				res, err := s.Append(ctx, streams[k], eventstore.Exactly(versions[k]), batch)
				if err != nil {
					fmt.Fprintf(os.Stderr, "append: %v\n", err)
					os.Exit(3)
				}
				versions[k] = res.Version
				out.Lock()
				// os.Stdout is unbuffered: the line is in the pipe before
				// the next append starts.
				fmt.Fprintf(os.Stdout, "ACK %s %d %s\n", streams[k], res.Version, res.Events[len(res.Events)-1].ID)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
}

// A process killed with SIGKILL in the middle of appending loses nothing
// it acknowledged, and leaves a log that still reads in order.
func TestCrashKeepsAcknowledgedAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns and kills a child process")
	}
	url := pgtest.NewDatabase(t)
	s := openTestStore(t, url, eventstore.Options{}) // migrates
	require.NoError(t, s.Close())

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashURLEnv+"="+url)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())

	type ack struct {
		stream  eventstore.StreamID
		version int64
		id      uuid.UUID
	}
	var acks []ack
	scanner := bufio.NewScanner(stdout)
	for len(acks) < 400 && scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) != 4 || fields[0] != "ACK" {
			continue
		}
		stream, err := eventstore.ParseStreamID(fields[1])
		require.NoError(t, err)
		version, err := strconv.ParseInt(fields[2], 10, 64)
		require.NoError(t, err)
		acks = append(acks, ack{stream, version, uuid.MustParse(fields[3])})
	}
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no deferred cleanup, no Close
	_ = cmd.Wait()
	require.Len(t, acks, 400, "child output ended early; stderr:\n%s", stderr.String())

	ctx := context.Background()
	s = openTestStore(t, url, eventstore.Options{})
	for _, a := range acks {
		evs, err := s.ReadStream(ctx, a.stream, a.version)
		require.NoError(t, err)
		require.NotEmpty(t, evs, "acknowledged %s@%d is missing", a.stream, a.version)
		assert.Equal(t, a.id, evs[0].ID, "acknowledged %s@%d has another id", a.stream, a.version)
	}

	// The killed child's server backend can still hold a transaction open
	// until PostgreSQL notices the dead connection; readers rightly see no
	// event past it until then (the gap-free rule). Wait for that, bounded.
	readAll := func() []eventstore.RecordedEvent {
		var all []eventstore.RecordedEvent
		for after := int64(0); ; {
			page, err := s.ReadAll(ctx, after, 1000)
			require.NoError(t, err)
			all = append(all, page...)
			if len(page) < 1000 {
				return all
			}
			after = page[len(page)-1].Position
		}
	}
	all := readAll()
	for deadline := time.Now().Add(time.Minute); len(all) < len(acks) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		all = readAll()
	}
	require.GreaterOrEqual(t, len(all), len(acks))
	last := map[eventstore.StreamID]int64{}
	for i, e := range all {
		if i > 0 {
			require.Greater(t, e.Position, all[i-1].Position)
		}
		require.Equal(t, last[e.Stream]+1, e.Version, "versions of %s are contiguous", e.Stream)
		last[e.Stream] = e.Version
	}
	t.Logf("%d acknowledged appends checked, %d events stored in %d streams", len(acks), len(all), len(last))
}
