package api

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLimiterKeyOfAnUnnormalizableNameIsSmall(t *testing.T) {
	huge := strings.Repeat("a", 1<<20)
	key := limiterKeyOf(huge)
	assert.Less(t, len(key), 100, "a megabyte-long name costs the limiter a digest")
	assert.Equal(t, key, limiterKeyOf(huge), "the same name keeps its bucket")
	assert.NotEqual(t, key, limiterKeyOf(huge+"b"))
}
