package projections

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLockAdmitsOneHolderAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "views.db")
	release, err := Lock(path)
	require.NoError(t, err)

	_, err = Lock(path)
	assert.ErrorIs(t, err, ErrLocked, "a second holder is refused while the first holds the lock")

	require.NoError(t, release())
	again, err := Lock(path)
	require.NoError(t, err, "the lock is free once released")
	require.NoError(t, again())
}

func TestDBLockAdmitsOneProcessToRunTheProjections(t *testing.T) {
	forEachDB(t, func(t *testing.T, viewsAt viewsFactory) {
		ctx := context.Background()
		location := viewsAt(t)
		// Two handles on one database stand for two processes.
		first, second := openTestDB(t, location), openTestDB(t, location)
		release, err := first.Lock(ctx)
		require.NoError(t, err)

		_, err = second.Lock(ctx)
		assert.ErrorIs(t, err, ErrLocked, "a second process is refused while the first runs the projections")

		require.NoError(t, release())
		again, err := second.Lock(ctx)
		require.NoError(t, err, "the lock is free once released")
		require.NoError(t, again())
	})
}

func TestPostgresLockIsReleasedWhenItsSessionEnds(t *testing.T) {
	ctx := context.Background()
	location := viewsFactories["postgres"](t)
	holder, other := openTestDB(t, location), openTestDB(t, location)
	_, err := holder.Lock(ctx)
	require.NoError(t, err)
	_, err = other.Lock(ctx)
	require.ErrorIs(t, err, ErrLocked)

	// The holder's process dies: the server ends its sessions.
	_, err = other.write.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND classid::bigint = ? AND objid::bigint = ? AND granted`,
		runnerLockKey>>32, runnerLockKey&0xffffffff)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		release, err := other.Lock(ctx)
		if err != nil {
			return false
		}
		return release() == nil
	}, generous, 10*time.Millisecond)
}

func TestRequestedRebuildIsCarriedOutByTheRunningRunner(t *testing.T) {
	forEachDB(t, testRequestedRebuild)
}

func testRequestedRebuild(t *testing.T, viewsAt viewsFactory) {
	store := storeFactories["sqlite"](t, time.Now)
	path := viewsAt(t)
	db := openTestDB(t, path)
	p := newCounting("counts")
	r, err := NewRunner(store, db, nil, p)
	require.NoError(t, err)
	last := appendEvents(t, store, 20)
	startRunner(t, r)
	waitFor(t, r, "counts", last)
	before, err := ProjectionHash(context.Background(), db, "counts")
	require.NoError(t, err)
	genBefore := activeGeneration(t, r)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- r.ServeRequests(ctx, 10*time.Millisecond) }()

	// The tool opens the same database file as a separate handle, the way
	// `careflow projections rebuild` does from another process.
	tool := openTestDB(t, path)
	id, err := tool.RequestRebuild(context.Background(), "counts")
	require.NoError(t, err)
	waitCtx, waitCancel := context.WithTimeout(context.Background(), generous)
	defer waitCancel()
	require.NoError(t, tool.WaitRequest(waitCtx, id, 10*time.Millisecond))

	assert.Greater(t, activeGeneration(t, r), genBefore, "the rebuild swapped in a new generation")
	after, err := ProjectionHash(context.Background(), db, "counts")
	require.NoError(t, err)
	assert.Equal(t, before, after, "the rebuilt tables equal the incremental ones")

	bad, err := tool.RequestRebuild(context.Background(), "no_such_projection")
	require.NoError(t, err)
	err = tool.WaitRequest(waitCtx, bad, 10*time.Millisecond)
	assert.ErrorContains(t, err, "no_such_projection", "a failed request reports why")

	cancel()
	assert.ErrorIs(t, <-served, context.Canceled)
}

func activeGeneration(t *testing.T, r *Runner) int64 {
	t.Helper()
	st, err := r.Status(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, st)
	return st[0].Generation
}
