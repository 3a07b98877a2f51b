package views_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/projections/views"
)

// A KeyProbe tells whether the keys a read opened PHI under still open
// it: false once one of them is destroyed, for that read alone.
func TestKeyProbeFollowsTheClientsKeys(t *testing.T) {
	w := newWorld(t)
	loops := runPHILoops(t, w, "A", "B")
	forgotten, kept := loops[0], loops[1]
	now := careStart.Add(6 * day)

	type read struct {
		name string
		keys *views.KeyProbe
	}
	probe := func(name string, f func(ctx context.Context) error) read {
		ctx, keys := views.WithKeyProbe(w.ctx)
		require.NoError(t, f(ctx), name)
		return read{name, keys}
	}
	readsOf := func(l *phiLoop) []read {
		return []read{
			probe("sessions of "+l.tag, func(ctx context.Context) error {
				_, err := views.ClientSessions(ctx, w.db, l.client.ID)
				return err
			}),
			probe("client's session of "+l.tag, func(ctx context.Context) error {
				_, err := views.ClientSessionDetail(ctx, w.db, l.client.ID, l.s1)
				return err
			}),
			probe("team's session of "+l.tag, func(ctx context.Context) error {
				_, err := views.SessionView(ctx, w.db, l.s1)
				return err
			}),
		}
	}
	forgottenReads, keptReads := readsOf(forgotten), readsOf(kept)
	inbox := probe("inbox of both", func(ctx context.Context) error {
		in, err := views.Inbox(ctx, w.db, w.p1.ID, now)
		require.NotEmpty(t, in.Items)
		return err
	})
	for _, r := range append(append(forgottenReads, keptReads...), inbox) {
		assert.True(t, r.keys.KeysLive(), r.name)
	}

	w.sealer.Destroy(forgotten.client.ID)
	for _, r := range append(forgottenReads, inbox) {
		assert.False(t, r.keys.KeysLive(), "%s, after the key is destroyed", r.name)
	}
	for _, r := range keptReads {
		assert.True(t, r.keys.KeysLive(), "%s, after another client's key is destroyed", r.name)
	}
	// A read made after the key is gone shows redacted values: not live.
	for _, r := range readsOf(forgotten) {
		assert.False(t, r.keys.KeysLive(), "%s, read after the key is destroyed", r.name)
	}
}
