package projections

import (
	"math"
	"slices"
	"sync"
	"time"
)

// LagObserver receives the live lag of every event a projection's active
// generation applies: the time from the event's RecordedAt to the commit of
// the read-model transaction that applied it. A Prometheus histogram plugs
// in here; calls come from the projection's goroutine and must be quick.
type LagObserver interface {
	ObserveLag(projection string, lag time.Duration)
}

// LagStats summarises the live lag of the most recent applied events.
type LagStats struct {
	// Count is how many events were observed since the runner started.
	Count uint64
	// Window is how many recent observations P50, P99 and Max cover.
	Window int
	P50    time.Duration
	P99    time.Duration
	Max    time.Duration
}

// lagWindow bounds the memory and the cost of a Status call.
const lagWindow = 1024

// lagTracker keeps the last lagWindow observations in a ring; quantiles
// are computed on demand, so observing stays O(1).
type lagTracker struct {
	mu      sync.Mutex
	samples [lagWindow]time.Duration
	next    int
	filled  bool
	count   uint64
}

func (l *lagTracker) observe(d time.Duration) {
	if d < 0 {
		// Clocks of different machines may disagree a little; a negative
		// lag says "none".
		d = 0
	}
	l.mu.Lock()
	l.samples[l.next] = d
	l.next++
	if l.next == lagWindow {
		l.next = 0
		l.filled = true
	}
	l.count++
	l.mu.Unlock()
}

func (l *lagTracker) stats() LagStats {
	l.mu.Lock()
	n := l.next
	if l.filled {
		n = lagWindow
	}
	window := slices.Clone(l.samples[:n])
	count := l.count
	l.mu.Unlock()
	if n == 0 {
		return LagStats{Count: count}
	}
	slices.Sort(window)
	return LagStats{
		Count:  count,
		Window: n,
		P50:    quantile(window, 0.50),
		P99:    quantile(window, 0.99),
		Max:    window[n-1],
	}
}

// quantile is the nearest-rank quantile of sorted samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
