package api

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// LoginLimits bound sign-in attempts: per username (slows guessing one
// account's password from many addresses) and per client address (slows
// one address trying many accounts). Every attempt counts, successful or
// not, so the limiter says nothing about which passwords were right.
type LoginLimits struct {
	// PerUsername: sustained attempts per second and burst, per username.
	PerUsername rate.Limit
	UserBurst   int
	// PerAddress: sustained attempts per second and burst, per address.
	PerAddress   rate.Limit
	AddressBurst int
	// MaxKeys bounds the tracked usernames and addresses each.
	MaxKeys int
}

// DefaultLoginLimits: 5 attempts then one every 12 s per username; 20 then
// one every 3 s per address.
func DefaultLoginLimits() LoginLimits {
	return LoginLimits{
		PerUsername: rate.Every(12 * time.Second), UserBurst: 5,
		PerAddress: rate.Every(3 * time.Second), AddressBurst: 20,
		MaxKeys: 100_000,
	}
}

// keyedLimiter is one token bucket per key. Idle buckets (full again) are
// dropped when the table reaches its bound, so memory stays bounded.
type keyedLimiter struct {
	limit   rate.Limit
	burst   int
	maxKeys int
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newKeyedLimiter(limit rate.Limit, burst, maxKeys int) *keyedLimiter {
	return &keyedLimiter{limit: limit, burst: burst, maxKeys: maxKeys, buckets: map[string]*rate.Limiter{}}
}

// take spends one token of key's bucket at now, or says how long until one
// is available.
func (k *keyedLimiter) take(key string, now time.Time) (bool, time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	lim, ok := k.buckets[key]
	if !ok {
		if len(k.buckets) >= k.maxKeys {
			k.dropIdle(now)
		}
		lim = rate.NewLimiter(k.limit, k.burst)
		k.buckets[key] = lim
	}
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Minute
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// dropIdle forgets full buckets (they behave exactly like new ones); if
// none is idle the table is reset rather than grown without bound.
func (k *keyedLimiter) dropIdle(now time.Time) {
	for key, lim := range k.buckets {
		if lim.TokensAt(now) >= float64(k.burst) {
			delete(k.buckets, key)
		}
	}
	if len(k.buckets) >= k.maxKeys {
		clear(k.buckets)
	}
}

// loginLimiter applies both limits.
type loginLimiter struct {
	byUser *keyedLimiter
	byAddr *keyedLimiter
}

func newLoginLimiter(l LoginLimits) *loginLimiter {
	return &loginLimiter{
		byUser: newKeyedLimiter(l.PerUsername, l.UserBurst, l.MaxKeys),
		byAddr: newKeyedLimiter(l.PerAddress, l.AddressBurst, l.MaxKeys),
	}
}

// allow returns nil or a 429 problem.
func (l *loginLimiter) allow(username, addr string, now time.Time) error {
	if ok, wait := l.byAddr.take(addr, now); !ok {
		return RateLimited(wait)
	}
	if ok, wait := l.byUser.take(username, now); !ok {
		return RateLimited(wait)
	}
	return nil
}

// limiterKeyOf is the limiter key of a username that does not normalize:
// a fixed-size digest, so an attacker's megabyte-long "username" costs the
// limiter 64 bytes, not a megabyte.
func limiterKeyOf(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return "raw:" + hex.EncodeToString(sum[:])
}
