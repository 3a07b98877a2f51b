package chain

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
)

// chainAll chains what the log holds and checks the head is its last event.
func chainAll(t *testing.T, f fixture) Link {
	t.Helper()
	c, err := NewChainer(f.store, f.table, ChainerOptions{BatchSize: 4})
	require.NoError(t, err)
	head, err := c.CatchUp(context.Background())
	require.NoError(t, err)
	last, err := f.store.HeadPosition(context.Background())
	require.NoError(t, err)
	require.Equal(t, last, head.Position)
	return head
}

func verify(t *testing.T, f fixture) Report {
	t.Helper()
	r, err := Verify(context.Background(), f.store, f.table)
	require.NoError(t, err)
	return r
}

// requireProblem checks Verify found kind at the position of want.
func requireProblem(t *testing.T, r Report, kind Kind, want eventstore.RecordedEvent, verifiedBefore int) {
	t.Helper()
	require.False(t, r.OK(), "Verify says OK: %s", r)
	require.NotNil(t, r.Problem)
	assert.Equal(t, kind, r.Problem.Kind, r.Problem.String())
	assert.Equal(t, want.Position, r.Problem.Position, r.Problem.String())
	assert.EqualValues(t, verifiedBefore, r.Verified)
	assert.Contains(t, r.String(), "TAMPERED")
}

func TestVerifyEmptyLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		r := verify(t, f)
		assert.True(t, r.OK())
		assert.Zero(t, r.Verified)
		assert.Equal(t, GenesisLink, r.Head)
		assert.Zero(t, r.Unchained)
	})
}

func TestVerifyOKAndUnchainedTail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		events := appendScript(t, f.store)
		r := verify(t, f)
		assert.True(t, r.OK(), "nothing chained yet is not a problem: %s", r)
		assert.EqualValues(t, len(events), r.Unchained)

		head := chainAll(t, f)
		r = verify(t, f)
		require.True(t, r.OK(), r.String())
		assert.EqualValues(t, len(events), r.Verified)
		assert.Equal(t, head, r.Head)
		assert.Equal(t, head, r.ChainHead)
		assert.Zero(t, r.Unchained)
		assert.Contains(t, r.String(), "OK")

		appendMore(t, f.store, "late", 3)
		r = verify(t, f)
		require.True(t, r.OK(), r.String())
		assert.EqualValues(t, len(events), r.Verified)
		assert.EqualValues(t, 3, r.Unchained)

		chainAll(t, f)
		r = verify(t, f)
		require.True(t, r.OK(), r.String())
		assert.EqualValues(t, len(events)+3, r.Verified)
		assert.Zero(t, r.Unchained)
	})
}

func TestVerifyFindsAnAlteredByte(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		events := appendScript(t, f.store)
		chainAll(t, f)
		f.raw.flipDataByte(t, events[5].Position)
		r := verify(t, f)
		requireProblem(t, r, Altered, events[5], 5)
		assert.Equal(t, events[5].ID, r.Problem.Chained)
		assert.Equal(t, events[5].ID, r.Problem.Found)
	})
}

func TestVerifyFindsDataThatIsNoLongerJSON(t *testing.T) {
	f := openSQLiteFixture(t)
	events := appendScript(t, f.store)
	chainAll(t, f)
	f.raw.(*sqliteTamperer).breakData(t, events[2].Position)
	requireProblem(t, verify(t, f), Altered, events[2], 2)
}

func TestVerifyFindsADeletedEvent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		events := appendScript(t, f.store)
		chainAll(t, f)
		f.raw.deleteEvent(t, events[7].Position)
		r := verify(t, f)
		requireProblem(t, r, Deleted, events[7], 7)
		assert.Equal(t, events[7].ID, r.Problem.Chained)
		assert.Equal(t, uuid.Nil, r.Problem.Found)
	})
}

func TestVerifyFindsTheLastEventDeleted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		events := appendScript(t, f.store)
		chainAll(t, f)
		last := len(events) - 1
		f.raw.deleteEvent(t, events[last].Position)
		requireProblem(t, verify(t, f), Deleted, events[last], last)
	})
}

func TestVerifyFindsSwappedData(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		events := appendScript(t, f.store)
		chainAll(t, f)
		f.raw.swapTypeAndData(t, events[3].Position, events[8].Position)
		requireProblem(t, verify(t, f), Altered, events[3], 3)
	})
}

func TestVerifyFindsSwappedPositions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		events := appendScript(t, f.store)
		chainAll(t, f)
		f.raw.swapPositions(t, events[2].Position, events[4].Position)
		r := verify(t, f)
		requireProblem(t, r, Reordered, events[2], 2)
		assert.Equal(t, events[2].ID, r.Problem.Chained)
		assert.Equal(t, events[4].ID, r.Problem.Found)
	})
}

func TestVerifyFindsAnEventTheChainNeverRecorded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		events := appendScript(t, f.store)
		chainAll(t, f)
		// Equivalent to an event slipped into the chained range: the log
		// has it, the chain does not.
		f.raw.deleteLink(t, events[6].Position)
		r := verify(t, f)
		requireProblem(t, r, Inserted, events[6], 6)
		assert.Equal(t, events[6].ID, r.Problem.Found)
	})
}

func TestVerifyFindsAnAlteredChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		events := appendScript(t, f.store)
		chainAll(t, f)
		f.raw.zeroLinkHash(t, events[4].Position)
		requireProblem(t, verify(t, f), ChainAltered, events[4], 4)
	})
}

func TestChainerResumesFromItsHead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		events := appendScript(t, f.store)
		first := chainAll(t, f)
		appendMore(t, f.store, "more", 5)
		second := chainAll(t, f)
		assert.Greater(t, second.Position, first.Position)

		links, err := f.table.Links(context.Background(), 0, 1000)
		require.NoError(t, err)
		require.Len(t, links, len(events)+5)
		log := readLog(t, f.store, 0)
		prev := Genesis
		for i, l := range links {
			assert.Equal(t, Next(prev, log[i]), l, "link %d is the chain over the log in read order", i)
			prev = l.Hash
		}
	})
}

func TestTableRefusesALinkAfterAStaleHead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		events := appendScript(t, f.store)
		first := Next(Genesis, events[0])
		require.NoError(t, f.table.Append(ctx, GenesisLink, []Link{first}))
		err := f.table.Append(ctx, GenesisLink, []Link{first})
		require.ErrorIs(t, err, ErrHeadMoved)
		head, err := f.table.Head(ctx)
		require.NoError(t, err)
		assert.Equal(t, first, head)
	})
}
