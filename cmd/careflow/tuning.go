package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// How careflow serve tunes Go's runtime (ADR 0014): its scheduler and its
// garbage collector.
//
// Scheduler: careflow's SQLite (modernc.org/sqlite, pure Go) reads, writes
// and syncs its files with blocking system calls made from Go code, tens of
// thousands a second under load. A goroutine in such a call keeps its P (Go's
// right to run code) until the call returns or the runtime's monitor takes
// the P back: with GOMAXPROCS equal to the cores, goroutines waited about
// 2 ms to run after their append was answered while the machine still had
// idle time. serve runs with twice as many Ps as the CPUs Go found (procs
// 0): 13% more commands/s under the load harness (docs/performance.md).
//
// Garbage collector: with Go's default (GOGC=100) the collector ran about
// 670 times while a service caught up with a log of 1M events and took a
// tenth of the CPU of a command under load. serve instead lets the heap
// grow to five times what
// is live (gc_percent 400) but never past a soft limit on Go's memory
// (memory_limit), sized so that a service holding 1M events stays well
// under the 256 MiB it is meant to fit in (docs/performance.md). The
// environment's GOGC and GOMEMLIMIT, when set, win: operators who tune Go
// the usual way keep that way.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = "128MiB"
	// procsPerCPU is serve's GOMAXPROCS per CPU when procs is 0.
	procsPerCPU = 2
)

// parseByteSize reads a size as GOMEMLIMIT writes it: a number of bytes
// with an optional B, KiB, MiB, GiB or TiB suffix. "0", "off" and "" mean
// no limit (0).
func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || strings.EqualFold(s, "off") {
		return 0, nil
	}
	units := []struct {
		suffix string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	factor := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, factor = strings.TrimSpace(rest), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 128MiB, 1GiB or a number of bytes", s)
	}
	if n > math.MaxInt64/factor {
		return 0, fmt.Errorf("%d times %d bytes is too large", n, factor)
	}
	return n * factor, nil
}

// tuneRuntime applies the scheduler and GC settings of cfg to this
// process, except those the environment sets (GOMAXPROCS, GOGC,
// GOMEMLIMIT), and returns the soft memory limit in force (0: none).
func tuneRuntime(cfg Config, environ func(string) (string, bool), log *slog.Logger) int64 {
	if _, set := environ("GOMAXPROCS"); set {
		log.Info("GOMAXPROCS is set: procs is not applied")
	} else {
		procs := cfg.Procs
		if procs == 0 {
			procs = procsPerCPU * runtime.GOMAXPROCS(0)
		}
		runtime.GOMAXPROCS(procs)
	}
	if _, set := environ("GOGC"); set {
		log.Info("GOGC is set: gc_percent is not applied")
	} else {
		debug.SetGCPercent(cfg.GCPercent)
	}
	if _, set := environ("GOMEMLIMIT"); set {
		log.Info("GOMEMLIMIT is set: memory_limit is not applied")
		return currentMemoryLimit()
	}
	limit, err := parseByteSize(cfg.MemoryLimit)
	if err != nil { // Validate has refused it already
		return currentMemoryLimit()
	}
	if limit == 0 {
		debug.SetMemoryLimit(math.MaxInt64)
		return 0
	}
	debug.SetMemoryLimit(limit)
	return limit
}

// currentMemoryLimit is the soft limit in force, 0 when there is none.
func currentMemoryLimit() int64 {
	limit := debug.SetMemoryLimit(-1) // a negative value only reads it
	if limit == math.MaxInt64 {
		return 0
	}
	return limit
}

// heapPressure is how full the soft limit may get, in live heap, before
// serve warns: past the limit the collector runs nearly all the time.
const heapPressure = 0.75

// watchHeap warns, every time it rises past heapPressure of limit, that
// the live heap is close to the soft memory limit, until ctx ends. A
// service that outgrows its limit slows down rather than fails; the log
// says which setting to raise.
func watchHeap(ctx context.Context, limit int64, every time.Duration, log *slog.Logger) {
	if limit <= 0 {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	warned := false
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return // not measured by this Go version
		}
		live := sample[0].Value.Uint64()
		high := float64(live) > heapPressure*float64(limit)
		if high && !warned {
			log.Warn("the live heap is close to the soft memory limit: raise memory_limit (CAREFLOW_MEMORY_LIMIT) or GOMEMLIMIT",
				"live_bytes", live, "limit_bytes", limit)
		}
		warned = high
	}
}
