package api

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/postgres/pgtest"
)

// refreshStores runs each test against every RefreshTokens implementation.
func refreshStores(t *testing.T, run func(t *testing.T, s RefreshTokens, clock *testClock)) {
	t.Run("memory", func(t *testing.T) {
		clock := newTestClock()
		run(t, NewMemoryRefreshTokens(clock.Now), clock)
	})
	t.Run("sqlite", func(t *testing.T) {
		clock := newTestClock()
		s, err := OpenSQLiteRefreshTokens(context.Background(), filepath.Join(t.TempDir(), "auth.db"), clock.Now)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		run(t, s, clock)
	})
	t.Run("postgres", func(t *testing.T) {
		clock := newTestClock()
		s, err := OpenPostgresRefreshTokens(context.Background(), pgtest.NewDatabase(t), clock.Now)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		run(t, s, clock)
	})
}

var alice = RefreshSubject{UserID: "u1", Username: "alice"}

func TestRefreshStoreRotation(t *testing.T) {
	refreshStores(t, func(t *testing.T, s RefreshTokens, clock *testClock) {
		ctx := context.Background()
		expires := clock.Now().Add(time.Hour)
		t1, err := s.Issue(ctx, alice, expires)
		require.NoError(t, err)

		subj, t2, exp, err := s.Rotate(ctx, t1)
		require.NoError(t, err)
		assert.Equal(t, alice, subj)
		assert.NotEqual(t, t1, t2)
		assert.True(t, exp.Equal(expires), "the successor keeps the sign-in's expiry")

		_, t3, _, err := s.Rotate(ctx, t2)
		require.NoError(t, err)
		_, _, _, err = s.Rotate(ctx, "unknown")
		assert.ErrorIs(t, err, ErrRefreshInvalid)

		// Reusing t1 refuses it and revokes the family, t3 included.
		_, _, _, err = s.Rotate(ctx, t1)
		assert.ErrorIs(t, err, ErrRefreshInvalid)
		_, _, _, err = s.Rotate(ctx, t3)
		assert.ErrorIs(t, err, ErrRefreshInvalid)
	})
}

func TestRefreshStoreExpiry(t *testing.T) {
	refreshStores(t, func(t *testing.T, s RefreshTokens, clock *testClock) {
		ctx := context.Background()
		tok, err := s.Issue(ctx, alice, clock.Now().Add(time.Minute))
		require.NoError(t, err)
		clock.Advance(time.Minute)
		_, _, _, err = s.Rotate(ctx, tok)
		assert.ErrorIs(t, err, ErrRefreshInvalid)
		// Expired rows are swept on the next issue and stay invalid.
		_, err = s.Issue(ctx, alice, clock.Now().Add(time.Minute))
		require.NoError(t, err)
		_, _, _, err = s.Rotate(ctx, tok)
		assert.ErrorIs(t, err, ErrRefreshInvalid)
	})
}

func TestRefreshStoreRevocation(t *testing.T) {
	refreshStores(t, func(t *testing.T, s RefreshTokens, clock *testClock) {
		ctx := context.Background()
		exp := clock.Now().Add(time.Hour)
		a1, err := s.Issue(ctx, alice, exp)
		require.NoError(t, err)
		a2, err := s.Issue(ctx, alice, exp)
		require.NoError(t, err)
		b1, err := s.Issue(ctx, RefreshSubject{UserID: "u2", Username: "bob"}, exp)
		require.NoError(t, err)

		require.NoError(t, s.Revoke(ctx, a1))
		require.NoError(t, s.Revoke(ctx, "never-issued"))
		_, _, _, err = s.Rotate(ctx, a1)
		assert.ErrorIs(t, err, ErrRefreshInvalid)
		_, a3, _, err := s.Rotate(ctx, a2)
		require.NoError(t, err, "another sign-in of the same user is unaffected")

		require.NoError(t, s.RevokeUser(ctx, "u1"))
		_, _, _, err = s.Rotate(ctx, a3)
		assert.ErrorIs(t, err, ErrRefreshInvalid)
		_, _, _, err = s.Rotate(ctx, b1)
		assert.NoError(t, err, "other users are unaffected")
	})
}

func TestRefreshStoreRotatesATokenOnlyOnceUnderConcurrency(t *testing.T) {
	refreshStores(t, func(t *testing.T, s RefreshTokens, clock *testClock) {
		ctx := context.Background()
		tok, err := s.Issue(ctx, alice, clock.Now().Add(time.Hour))
		require.NoError(t, err)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { _, _, _, errs[i] = s.Rotate(ctx, tok) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				assert.ErrorIs(t, err, ErrRefreshInvalid)
			}
		}
		assert.Equal(t, 1, ok)
	})
}

func TestSQLiteRefreshTokensSurviveARestartAndStoreOnlyHashes(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	path := filepath.Join(t.TempDir(), "auth.db")
	s, err := OpenSQLiteRefreshTokens(ctx, path, clock.Now)
	require.NoError(t, err)
	tok, err := s.Issue(ctx, alice, clock.Now().Add(time.Hour))
	require.NoError(t, err)
	var stored []byte
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT token_hash FROM refresh_tokens`).Scan(&stored))
	assert.Equal(t, hashRefresh(tok), stored, "only the SHA-256 of the token is stored")
	assert.NotContains(t, string(stored), tok)
	require.NoError(t, s.Close())

	s, err = OpenSQLiteRefreshTokens(ctx, path, clock.Now)
	require.NoError(t, err)
	defer s.Close()
	subj, _, _, err := s.Rotate(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, alice, subj)
}
