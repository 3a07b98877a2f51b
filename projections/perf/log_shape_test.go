package perf_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/sqlite"
	"github.com/careflow/careflow/projections"
)

func TestClientsForReachesTheEventCount(t *testing.T) {
	for _, n := range []int{1, 500, 38_621, millionEvents} {
		clients := clientsFor(n)
		clinics := (clients + clientsPerClinic - 1) / clientsPerClinic
		events := clinics*eventsPerClinicSetup + clients*eventsPerClient
		assert.GreaterOrEqual(t, events, n, "n=%d", n)
		assert.Less(t, events-n, eventsPerClient+eventsPerClinicSetup, "n=%d: one client too many", n)
	}
}

// The synthetic history must be one the projections accept: a projection
// that failed on it would make the benchmark measure nothing.
func TestCareHistoryIsProjectedByEveryProjection(t *testing.T) {
	ctx := context.Background()
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")}, eventstore.Options{Types: reg})
	require.NoError(t, err)
	defer func() { require.NoError(t, store.Close()) }()
	const clients = 8
	writeCareHistory(t, store, reg, clients)
	head, err := store.HeadPosition(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(eventsPerClinicSetup+clients*eventsPerClient), head)

	db, err := projections.OpenDB(ctx, filepath.Join(t.TempDir(), "views.db"))
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	ps := allProjections(t, reg)
	runner, err := projections.NewRunner(store, db, nil, ps...)
	require.NoError(t, err)
	require.NoError(t, runner.Prepare(ctx))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.Run(runCtx) }()
	waitCaughtUp(t, runner, ps, head)
	status, err := runner.Status(ctx)
	require.NoError(t, err)
	stop()
	require.NoError(t, <-done)
	require.Len(t, status, len(ps))
	for _, s := range status {
		assert.Equal(t, head, s.Position, s.Name)
		assert.Empty(t, s.LastError, s.Name)
	}
}
