package commands_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

// cachedOrgWorld is orgWorld whose handlers keep a stream cache of size n.
func cachedOrgWorld(t *testing.T, n int) (*orgWorld, *commands.StreamCache) {
	w := newOrgWorld(t)
	cache := commands.NewStreamCache(n)
	w.deps.Streams = cache
	w.org = commands.NewOrganization(w.deps)
	return w, cache
}

// A cached stream is never decided on stale: what another writer (another
// process, without this cache) appended is read before deciding.
func TestStreamCacheSeesOtherWriters(t *testing.T) {
	w, cache := cachedOrgWorld(t, 0)
	other := commands.NewOrganization(newOrgWorldDepsOver(w))

	_, err := w.org.DeactivateClient(w.ctx, orgMeta(orgCA1), commands.DeactivateClient{ClientID: "k1", Reason: "moved"})
	require.NoError(t, err)
	assert.Positive(t, cache.Len(), "the client stream is cached")
	_, err = other.ReactivateClient(w.ctx, orgMeta(orgCA1), commands.ReactivateClient{ClientID: "k1"})
	require.NoError(t, err)

	_, err = w.org.DeactivateClient(w.ctx, orgMeta(orgCA1), commands.DeactivateClient{ClientID: "k1", Reason: "moved again"})
	require.NoError(t, err, "the cached handler saw the reactivation")
	events := w.eventsSince(commands.StreamClient, "k1", 1)
	require.Len(t, events, 3)
	assert.IsType(t, organization.ClientDeactivated{}, events[2])
}

func TestStreamCacheAnswersARetriedCommandAsTheFirstTime(t *testing.T) {
	w, _ := cachedOrgWorld(t, 0)
	m := orgMeta(orgCA1)
	m.CommandID = "deactivate-once"
	first, err := w.org.DeactivateClient(w.ctx, m, commands.DeactivateClient{ClientID: "k1"})
	require.NoError(t, err)
	again, err := w.org.DeactivateClient(w.ctx, m, commands.DeactivateClient{ClientID: "k1"})
	require.NoError(t, err)
	assert.True(t, again.Duplicate)
	assert.Equal(t, first.Version, again.Version)
	assert.Equal(t, first.Position, again.Position)
}

func TestStreamCacheIsBoundedAndPurgedByAnErasure(t *testing.T) {
	w, cache := cachedOrgWorld(t, 2)
	keys := newSealingKeyring(t)
	w.deps.Codec = w.deps.Codec.WithSealer(keys)
	w.org = commands.NewOrganization(w.deps).WithShredder(keys)
	for _, p := range []string{"p1", "p2", "p4"} {
		_, err := w.org.DeactivateProvider(w.ctx, orgMeta(orgSys), commands.DeactivateProvider{ProviderID: p})
		require.NoError(t, err)
	}
	assert.Equal(t, 2, cache.Len(), "at most 2 streams are kept")

	_, err := w.org.ForgetClient(w.ctx, orgMeta(orgSys), commands.ForgetClient{ClientID: "k1", Reason: "request"})
	require.NoError(t, err)
	assert.Zero(t, cache.Len(), "no opened PHI outlives the key")
	_, err = w.org.ReactivateClient(w.ctx, orgMeta(orgCA1), commands.ReactivateClient{ClientID: "k1"})
	w.requireRefused(err, w.head(), domain.KindConflict, "client-forgotten")
}

// newOrgWorldDepsOver returns w's dependencies without a stream cache: a
// second process writing to the same store.
func newOrgWorldDepsOver(w *orgWorld) commands.Deps {
	d := w.deps
	d.Streams = nil
	return d
}
