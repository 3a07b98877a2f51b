package chain

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixedClock ticks one second per call from a fixed instant, with
// nanoseconds a backend cannot keep.
func fixedClock() func() time.Time {
	now := time.Date(2026, 11, 22, 20, 0, 0, 123456789, time.UTC)
	return func() time.Time {
		now = now.Add(time.Second)
		return now
	}
}

// signingChainer makes a key file and a chainer that signs with it.
func signingChainer(t *testing.T, f fixture) (*Chainer, ed25519.PublicKey) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chain.key")
	pub, err := GenerateKey(path)
	require.NoError(t, err)
	key, err := LoadPrivateKey(path)
	require.NoError(t, err)
	c, err := NewChainer(f.store, f.table, ChainerOptions{Key: key, Clock: fixedClock(), BatchSize: 5})
	require.NoError(t, err)
	return c, pub
}

// exportAndRead is what a reviewer does: export the checkpoints, keep the
// file elsewhere, read it back later.
func exportAndRead(t *testing.T, table Table) []Checkpoint {
	t.Helper()
	var file bytes.Buffer
	n, err := ExportCheckpoints(context.Background(), table, &file)
	require.NoError(t, err)
	require.Equal(t, n, strings.Count(file.String(), "\n"), "one JSON line per checkpoint")
	cps, err := ReadCheckpoints(&file)
	require.NoError(t, err)
	require.Len(t, cps, n)
	return cps
}

func verifyCheckpoints(t *testing.T, f fixture, pub ed25519.PublicKey, cps []Checkpoint) CheckpointReport {
	t.Helper()
	r, err := VerifyCheckpoints(context.Background(), f.store, pub, cps)
	require.NoError(t, err)
	assert.Equal(t, len(cps), r.Checked)
	return r
}

func failedIndexes(r CheckpointReport) []int {
	var out []int
	for _, f := range r.Failures {
		out = append(out, f.Index)
	}
	return out
}

func TestCheckpointsRoundTripAndHoldWhileTheLogGrows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		c, pub := signingChainer(t, f)
		events := appendScript(t, f.store)
		first, err := c.Checkpoint(ctx)
		require.NoError(t, err)
		assert.Equal(t, events[len(events)-1].Position, first.Position, "Checkpoint chains what is there first")
		require.NoError(t, first.VerifySignature(pub))

		appendMore(t, f.store, "later", 4)
		second, err := c.Checkpoint(ctx)
		require.NoError(t, err)
		assert.Greater(t, second.Position, first.Position)

		cps := exportAndRead(t, f.table)
		require.Equal(t, []Checkpoint{first, second}, cps, "stored and exported without loss, oldest first")

		appendMore(t, f.store, "even-later", 2)
		r := verifyCheckpoints(t, f, pub, cps)
		assert.True(t, r.OK(), r.String())
		assert.Contains(t, r.String(), "OK")

		// Order of the file does not matter.
		r = verifyCheckpoints(t, f, pub, []Checkpoint{second, first})
		assert.True(t, r.OK(), r.String())
	})
}

func TestCheckpointOfAnEmptyLogIsTheGenesis(t *testing.T) {
	f := openSQLiteFixture(t)
	c, pub := signingChainer(t, f)
	cp, err := c.Checkpoint(context.Background())
	require.NoError(t, err)
	assert.Zero(t, cp.Position)
	assert.Equal(t, Genesis, cp.Hash)
	appendScript(t, f.store)
	assert.True(t, verifyCheckpoints(t, f, pub, []Checkpoint{cp}).OK())
}

func TestCheckpointWithoutKey(t *testing.T) {
	f := openSQLiteFixture(t)
	c, err := NewChainer(f.store, f.table, ChainerOptions{})
	require.NoError(t, err)
	_, err = c.Checkpoint(context.Background())
	require.ErrorIs(t, err, ErrNoKey)
}

func TestCheckpointFailsAfterAnAlteration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		c, pub := signingChainer(t, f)
		events := appendScript(t, f.store)
		_, err := c.Checkpoint(ctx)
		require.NoError(t, err)
		cps := exportAndRead(t, f.table)

		f.raw.flipDataByte(t, events[3].Position)
		r := verifyCheckpoints(t, f, pub, cps)
		require.False(t, r.OK())
		assert.Equal(t, []int{0}, failedIndexes(r))
		assert.Contains(t, r.Failures[0].Reason, "altered")
		assert.Contains(t, r.String(), "FAILED")
	})
}

// The attack Verify alone cannot see: the log is rewritten and the chain
// rebuilt over it. Only the exported checkpoint, kept elsewhere, catches
// it.
func TestCheckpointCatchesARewrittenLogAndChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		c, pub := signingChainer(t, f)
		events := appendScript(t, f.store)
		_, err := c.Checkpoint(ctx)
		require.NoError(t, err)
		kept := exportAndRead(t, f.table)

		f.raw.flipDataByte(t, events[1].Position)
		f.raw.dropChain(t)
		chainAll(t, f)
		_, err = c.Checkpoint(ctx)
		require.NoError(t, err)

		r := verify(t, f)
		assert.True(t, r.OK(), "the rebuilt chain matches the rewritten log: %s", r)
		assert.True(t, verifyCheckpoints(t, f, pub, exportAndRead(t, f.table)).OK(),
			"checkpoints signed after the rewrite hold")
		held := verifyCheckpoints(t, f, pub, kept)
		assert.False(t, held.OK(), "the checkpoint kept elsewhere does not")
	})
}

func TestCheckpointFailsWhenItsEventIsDeleted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		c, pub := signingChainer(t, f)
		events := appendScript(t, f.store)
		_, err := c.Checkpoint(ctx)
		require.NoError(t, err)
		appendMore(t, f.store, "later", 3)
		_, err = c.Checkpoint(ctx)
		require.NoError(t, err)
		cps := exportAndRead(t, f.table)

		f.raw.deleteEvent(t, events[len(events)-1].Position)
		r := verifyCheckpoints(t, f, pub, cps)
		assert.Equal(t, []int{0, 1}, failedIndexes(r))
		assert.Contains(t, r.Failures[0].Reason, "removed")
		assert.Contains(t, r.Failures[1].Reason, "altered, removed")
	})
}

func TestCheckpointFailsWithAWrongKeyOrSignature(t *testing.T) {
	f := openSQLiteFixture(t)
	ctx := context.Background()
	c, pub := signingChainer(t, f)
	appendScript(t, f.store)
	_, err := c.Checkpoint(ctx)
	require.NoError(t, err)
	appendMore(t, f.store, "later", 2)
	_, err = c.Checkpoint(ctx)
	require.NoError(t, err)
	cps := exportAndRead(t, f.table)
	require.True(t, verifyCheckpoints(t, f, pub, cps).OK())

	otherPub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	r := verifyCheckpoints(t, f, otherPub, cps)
	assert.Equal(t, []int{0, 1}, failedIndexes(r))
	assert.Contains(t, r.Failures[0].Reason, "not by the given key")

	tampered := append([]Checkpoint(nil), cps...)
	tampered[1].Signature = append([]byte(nil), cps[1].Signature...)
	tampered[1].Signature[10] ^= 0x40
	r = verifyCheckpoints(t, f, pub, tampered)
	assert.Equal(t, []int{1}, failedIndexes(r))
	assert.Contains(t, r.Failures[0].Reason, "does not verify")

	_, err = VerifyCheckpoints(ctx, f.store, pub[:10], cps)
	assert.Error(t, err, "a truncated public key is refused, not a panic")

	// A forger who changes the signed hash to today's needs the key.
	forged := append([]Checkpoint(nil), cps...)
	forged[0].Hash[0] ^= 1
	r = verifyCheckpoints(t, f, pub, forged)
	assert.Equal(t, []int{0}, failedIndexes(r))
}

func TestReadCheckpointsRefusesGarbage(t *testing.T) {
	_, err := ReadCheckpoints(strings.NewReader(`{"position":1,"hash":"00","signedAt":"2026-11-22T20:00:00Z"}`))
	assert.Error(t, err, "short hash")
	_, err = ReadCheckpoints(strings.NewReader(`{"position":1,"surprise":true}`))
	assert.Error(t, err, "unknown field")
	_, err = ReadCheckpoints(strings.NewReader("not json\n"))
	assert.Error(t, err)
	cps, err := ReadCheckpoints(strings.NewReader("\n\n"))
	require.NoError(t, err)
	assert.Empty(t, cps)
}

func TestPeriodicCheckpointOnlyWhenTheHeadMoved(t *testing.T) {
	f := openSQLiteFixture(t)
	ctx := context.Background()
	c, _ := signingChainer(t, f)
	appendScript(t, f.store)
	require.NoError(t, c.checkpointIfMoved(ctx))
	require.NoError(t, c.checkpointIfMoved(ctx))
	cps, err := f.table.Checkpoints(ctx)
	require.NoError(t, err)
	assert.Len(t, cps, 1)

	appendMore(t, f.store, "later", 1)
	require.NoError(t, c.checkpointIfMoved(ctx))
	cps, err = f.table.Checkpoints(ctx)
	require.NoError(t, err)
	assert.Len(t, cps, 2)
	assert.Greater(t, cps[1].Position, cps[0].Position)
}
