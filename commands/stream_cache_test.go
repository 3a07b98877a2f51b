package commands_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
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

// streamReads counts the store's ReadStream calls per stream.
type streamReads struct {
	eventstore.Store
	mu    sync.Mutex
	reads map[string]int
}

func (s *streamReads) ReadStream(ctx context.Context, stream eventstore.StreamID, from int64) ([]eventstore.RecordedEvent, error) {
	s.mu.Lock()
	s.reads[stream.String()]++
	s.mu.Unlock()
	return s.Store.ReadStream(ctx, stream, from)
}

func (s *streamReads) of(stream eventstore.StreamID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[stream.String()]
}

// A session's first event never changes: once cached, a command in the
// session reads the store only to load what came since (once), not again
// for whom the session belongs to. Another writer's message is still seen.
func TestStreamCacheAnswersTheSessionHeader(t *testing.T) {
	w := newCareWorld(t)
	counting := &streamReads{Store: w.store, reads: map[string]int{}}
	deps := w.deps
	deps.Store, deps.Streams = counting, commands.NewStreamCache(0)
	cached := commands.NewCare(deps, commands.NewOrganization(deps))
	id, _ := w.active()
	stream := eventstore.NewStreamID(care.StreamType, id)
	start := w.version(id)

	_, err := cached.PostMessage(w.ctx, careMeta(w.p1), commands.PostMessage{SessionID: id, Text: "first"})
	require.NoError(t, err)
	before := counting.of(stream)
	_, err = w.care.PostMessage(w.ctx, careMeta(w.p2), commands.PostMessage{SessionID: id, Text: "from elsewhere"})
	require.NoError(t, err)
	_, err = cached.PostMessage(w.ctx, careMeta(w.p1), commands.PostMessage{SessionID: id, Text: "second"})
	require.NoError(t, err)
	assert.Equal(t, 1, counting.of(stream)-before, "one read of the session stream per command")
	assert.Equal(t, start+3, w.version(id), "the other writer's message was read before deciding")
}

// cachedCare is a Care handler over w's store with a stream cache, whose
// store reads are counted; w.care is another writer without a cache.
func cachedCare(w *careWorld) (*commands.Care, *streamReads) {
	counting := &streamReads{Store: w.store, reads: map[string]int{}}
	deps := w.deps
	deps.Store, deps.Streams = counting, commands.NewStreamCache(0)
	return commands.NewCare(deps, commands.NewOrganization(deps)), counting
}

// A command decides on the cached stream without reading it again when
// nothing changed: the append's expected version proves the state current.
func TestStreamCacheDecidesWithoutReadingAnUnchangedStream(t *testing.T) {
	w := newCareWorld(t)
	cached, counting := cachedCare(w)
	id, _ := w.active()
	stream := eventstore.NewStreamID(care.StreamType, id)
	start := w.version(id)

	for i := range 3 {
		_, err := cached.PostMessage(w.ctx, careMeta(w.p1), commands.PostMessage{SessionID: id, Text: "note " + string(rune('a'+i))})
		require.NoError(t, err)
	}
	assert.Equal(t, 1, counting.of(stream), "the first command reads the stream, the next two decide on what it cached")
	assert.Equal(t, start+3, w.version(id))
}

// A refusal found on the cached stream is checked against the store before
// it is answered: what another writer did since (the client completed the
// assignment) makes the command valid.
func TestStreamCacheChecksARefusalAgainstTheStore(t *testing.T) {
	w := newCareWorld(t)
	cached, _ := cachedCare(w)
	id, as := w.active(books.PHQ9ID)
	_, err := cached.PostMessage(w.ctx, careMeta(w.p1), commands.PostMessage{SessionID: id, Text: "please fill it in"})
	require.NoError(t, err) // the session is cached, the assignment not completed

	_, err = w.care.CompleteAssignment(w.ctx, careMeta(w.k1), commands.CompleteAssignment{SessionID: id, AssignmentID: as[0], Answers: answersFor(books.PHQ9ID, 1)})
	require.NoError(t, err)
	before := w.version(id)
	_, err = cached.GiveFeedback(w.ctx, careMeta(w.p1), commands.GiveFeedback{SessionID: id, AssignmentID: as[0], Text: "Thank you"})
	require.NoError(t, err, "the completion was read from the store before refusing")
	assert.Equal(t, before+1, w.version(id))
}

// If-Match is checked against the store's version, not a cached one.
func TestStreamCacheChecksIfMatchAgainstTheStore(t *testing.T) {
	w := newCareWorld(t)
	cached, _ := cachedCare(w)
	id, _ := w.active()
	_, err := cached.PostMessage(w.ctx, careMeta(w.p1), commands.PostMessage{SessionID: id, Text: "one"})
	require.NoError(t, err)
	_, err = w.care.PostMessage(w.ctx, careMeta(w.p2), commands.PostMessage{SessionID: id, Text: "two"})
	require.NoError(t, err)

	m := careMeta(w.p1)
	m.IfVersion = w.version(id) // current in the store, newer than the cache
	_, err = cached.PostMessage(w.ctx, m, commands.PostMessage{SessionID: id, Text: "three"})
	require.NoError(t, err)
	m.IfVersion-- // stale in the store
	_, err = cached.PostMessage(w.ctx, m, commands.PostMessage{SessionID: id, Text: "four"})
	var stale *commands.StaleVersionError
	require.ErrorAs(t, err, &stale)
}

// A retried command whose first answer is not in the cache is answered
// from the store as a duplicate, and writes nothing.
func TestStreamCacheAnswersARetryFromAnotherProcess(t *testing.T) {
	w := newCareWorld(t)
	cached, _ := cachedCare(w)
	id, _ := w.active()
	_, err := cached.PostMessage(w.ctx, careMeta(w.p1), commands.PostMessage{SessionID: id, Text: "cache it"})
	require.NoError(t, err)
	m := careMeta(w.p1)
	m.CommandID = "post-once"
	first, err := w.care.PostMessage(w.ctx, m, commands.PostMessage{SessionID: id, Text: "hello"})
	require.NoError(t, err)
	before := w.version(id)

	again, err := cached.PostMessage(w.ctx, m, commands.PostMessage{SessionID: id, Text: "hello"})
	require.NoError(t, err)
	assert.True(t, again.Duplicate)
	assert.Equal(t, first.ID, again.ID)
	assert.Equal(t, first.Position, again.Position)
	assert.Equal(t, before, w.version(id), "nothing written twice")
}
