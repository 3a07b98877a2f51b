package projections

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLagTrackerQuantiles(t *testing.T) {
	var l lagTracker
	assert.Equal(t, LagStats{}, l.stats())

	for i := 100; i >= 1; i-- {
		l.observe(time.Duration(i) * time.Millisecond)
	}
	assert.Equal(t, LagStats{Count: 100, Window: 100, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond,
		Max: 100 * time.Millisecond}, l.stats())

	l.observe(-time.Second)
	assert.Equal(t, uint64(101), l.stats().Count, "a negative lag counts as none")
}

func TestLagTrackerKeepsTheRecentWindow(t *testing.T) {
	var l lagTracker
	for range 1000 {
		l.observe(time.Hour)
	}
	for range lagWindow {
		l.observe(5 * time.Millisecond)
	}
	s := l.stats()
	assert.Equal(t, uint64(1000+lagWindow), s.Count)
	assert.Equal(t, lagWindow, s.Window)
	assert.Equal(t, 5*time.Millisecond, s.P99, "old observations leave the window")
	assert.Equal(t, 5*time.Millisecond, s.Max)
}
