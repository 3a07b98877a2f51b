package main

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "0": 0, "off": 0, "OFF": 0,
		"1024": 1024, "512B": 512, "64KiB": 64 << 10, "128MiB": 128 << 20, " 2 GiB ": 2 << 30, "1TiB": 1 << 40,
	} {
		got, err := parseByteSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"-1", "128MB", "lots", "1.5GiB", "9999999999TiB"} {
		_, err := parseByteSize(in)
		assert.Error(t, err, in)
	}
}

func TestMemorySettingsAreValidated(t *testing.T) {
	c := DefaultConfig()
	c.MemoryLimit = "128MB"
	assert.ErrorContains(t, c.Validate(), "memory_limit")
	c = DefaultConfig()
	c.GCPercent = 0
	assert.ErrorContains(t, c.Validate(), "gc_percent")
	c = DefaultConfig()
	c.Procs = -1
	assert.ErrorContains(t, c.Validate(), "procs")
	c = DefaultConfig()
	c.GCPercent, c.MemoryLimit = -1, "0"
	assert.ErrorContains(t, c.Validate(), "needs a memory_limit")
	c.MemoryLimit = "256MiB"
	assert.NoError(t, c.Validate())
}

func TestMemorySettingsComeFromTheEnvironment(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := loadConfig(flags(t), env(map[string]string{"CAREFLOW_PROCS": "6", "CAREFLOW_GC_PERCENT": "200", "CAREFLOW_MEMORY_LIMIT": "1GiB"}))
	require.NoError(t, err)
	assert.Equal(t, 6, c.Procs)
	assert.Equal(t, 200, c.GCPercent)
	assert.Equal(t, "1GiB", c.MemoryLimit)
}

// restoreRuntime puts the test process's scheduler and GC settings back.
func restoreRuntime(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	percent := debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}

func TestTuneRuntimeAppliesTheSettings(t *testing.T) {
	restoreRuntime(t)
	log := slog.New(slog.DiscardHandler)
	c := DefaultConfig()
	c.Procs, c.GCPercent, c.MemoryLimit = 3, 300, "96MiB"
	assert.Equal(t, int64(96<<20), tuneRuntime(c, env(nil), log))
	assert.Equal(t, 3, runtime.GOMAXPROCS(0))
	assert.Equal(t, 300, debug.SetGCPercent(-1))
	assert.Equal(t, int64(96<<20), debug.SetMemoryLimit(-1))

	c.MemoryLimit = "0"
	assert.Zero(t, tuneRuntime(c, env(nil), log))
	assert.Equal(t, int64(math.MaxInt64), debug.SetMemoryLimit(-1))

	// procs 0: twice the CPUs Go runs on.
	runtime.GOMAXPROCS(2)
	c.Procs = 0
	tuneRuntime(c, env(nil), log)
	assert.Equal(t, 4, runtime.GOMAXPROCS(0))
}

func TestTheEnvironmentsGOMAXPROCSGOGCAndGOMEMLIMITWin(t *testing.T) {
	restoreRuntime(t)
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(300 << 20)
	var out bytes.Buffer
	c := DefaultConfig()
	limit := tuneRuntime(c, env(map[string]string{"GOMAXPROCS": "1", "GOGC": "150", "GOMEMLIMIT": "300MiB"}), slog.New(slog.NewTextHandler(&out, nil)))
	assert.Equal(t, int64(300<<20), limit, "the limit in force is reported")
	assert.Equal(t, 1, runtime.GOMAXPROCS(0), "procs is not applied")
	assert.Equal(t, 150, debug.SetGCPercent(-1), "gc_percent is not applied")
	assert.Equal(t, int64(300<<20), debug.SetMemoryLimit(-1), "memory_limit is not applied")
	assert.Contains(t, out.String(), "GOMAXPROCS is set")
	assert.Contains(t, out.String(), "GOGC is set")
	assert.Contains(t, out.String(), "GOMEMLIMIT is set")
}

func TestWatchHeapWarnsOnceWhileTheLiveHeapIsNearTheLimit(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Any live heap is past three quarters of one byte.
		watchHeap(ctx, 1, time.Millisecond, log)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "close to the soft memory limit") },
		10*time.Second, time.Millisecond)
	time.Sleep(20 * time.Millisecond) // twenty more looks
	cancel()
	<-done
	assert.Equal(t, 1, strings.Count(out.String(), "close to the soft memory limit"), "one warning while it stays high")
	assert.Contains(t, out.String(), "CAREFLOW_MEMORY_LIMIT")

	// No limit: nothing to watch, it returns at once.
	watchHeap(t.Context(), 0, time.Millisecond, log)
}
