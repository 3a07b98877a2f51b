package audit

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/projections"
)

// trailV2 builds the links as version 2 did: no recording times.
type trailV2 struct{ *Trail }

func (trailV2) Version() int { return 2 }

func (trailV2) Schema(t projections.TableNames) []string {
	return []string{
		`CREATE TABLE ` + t.Of(clientEventsTable) + ` (client_id TEXT NOT NULL, position BIGINT NOT NULL,
			PRIMARY KEY (client_id, position)) WITHOUT ROWID`,
		`CREATE TABLE ` + t.Of(streamClientsTable) + ` (stream TEXT PRIMARY KEY, client_id TEXT NOT NULL,
			position BIGINT NOT NULL) WITHOUT ROWID`,
	}
}

func (v trailV2) Apply(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent) error {
	refs, _ := v.Prepare(e)
	return v.ApplyPrepared(ctx, tx, t, e, refs)
}

func (trailV2) ApplyPrepared(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent, _ any) error {
	_, err := projections.Exec(ctx, tx, `INSERT INTO `+t.Of(clientEventsTable)+` (client_id, position) VALUES (?, ?)`,
		e.Stream.ID, e.Position)
	return err
}

// While the trail of an earlier version still serves reads (its
// replacement being built after an upgrade), a timeline without a time
// range is answered and one with a range is refused with a clear error.
func TestTimelineOverATrailOfVersion2(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t)
	registered := l.put(eventstore.NewStreamID(commands.StreamClient, "k1"), organization.ClientRegistered{ClientID: "k1",
		ClinicID: "c1", DisplayName: "x", CareTeam: []string{"p1"}, RegisteredBy: "p1"})
	db, store := runTrail(t, l.store, trailV2{NewTrail()}, registered), l.store

	page, err := ClientTimeline(ctx, db, store, "k1", time.Time{}, time.Time{}, Page{})
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	assert.Equal(t, "client.registered", page.Entries[0].Type)

	_, err = ClientTimeline(ctx, db, store, "k1", time.Now().Add(-time.Hour), time.Time{}, Page{})
	assert.ErrorIs(t, err, ErrTrailRebuilding)
	_, err = ClientTimeline(ctx, db, store, "k1", time.Time{}, time.Now(), Page{})
	assert.ErrorIs(t, err, ErrTrailRebuilding)
}

// trailV3 builds the trail as version 3 did: every event linked to each
// client it touched, its own stream's and its linked streams' too.
type trailV3 struct{ *Trail }

func (trailV3) Version() int { return 3 }

func (trailV3) Schema(t projections.TableNames) []string {
	return []string{
		`CREATE TABLE ` + t.Of(clientEventsTable) + ` (client_id TEXT NOT NULL, position BIGINT NOT NULL,
			recorded_at BIGINT NOT NULL, PRIMARY KEY (client_id, position)) WITHOUT ROWID`,
		`CREATE TABLE ` + t.Of(streamClientsTable) + ` (stream TEXT PRIMARY KEY, client_id TEXT NOT NULL,
			position BIGINT NOT NULL) WITHOUT ROWID`,
	}
}

func (v trailV3) Apply(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent) error {
	refs, _ := v.Prepare(e)
	return v.ApplyPrepared(ctx, tx, t, e, refs)
}

func (v trailV3) ApplyPrepared(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent, prepared any) error {
	owner, err := v.ownerOf(ctx, tx, t, e, e.Stream.String())
	if err != nil {
		return err
	}
	l := link(e, prepared.(references), owner)
	if l.owner != "" {
		if _, err := projections.Exec(ctx, tx, `INSERT INTO `+t.Of(streamClientsTable)+` (stream, client_id, position) VALUES (?, ?, ?)`,
			e.Stream.String(), l.owner, e.Position); err != nil {
			return err
		}
		v.owners.remember(e.Stream.String(), l.owner, e.Position)
	}
	for _, client := range l.clients {
		if _, err := projections.Exec(ctx, tx, `INSERT INTO `+t.Of(clientEventsTable)+` (client_id, position, recorded_at) VALUES (?, ?, ?)`,
			client, e.Position, e.RecordedAt.UnixNano()); err != nil {
			return err
		}
	}
	return nil
}

// While a trail of version 3 still serves reads, its links and the
// streams it links overlap: the timeline shows every event once, as the
// current version's does.
func TestTimelineOverATrailOfVersion3(t *testing.T) {
	l := newTestLog(t)
	put, store := l.put, l.store
	session := eventstore.NewStreamID(care.StreamType, "s1")
	positions := []int64{
		put(eventstore.NewStreamID(commands.StreamClient, "k1"), organization.ClientRegistered{ClientID: "k1", ClinicID: "c1",
			DisplayName: "x", CareTeam: []string{"p1"}, RegisteredBy: "p1"}),
		put(session, care.SessionScheduled{SessionID: "s1", ClinicID: "c1", ClientID: "k1", ProviderID: "p1", ScheduledBy: "p1",
			Title: "t", Start: time.Now(), End: time.Now().Add(time.Hour)}),
		put(session, care.SessionActivated{SessionID: "s1", ClientID: "k1"}),
	}

	timeline := func(p projections.Projection) []int64 {
		return timelineOf(t, runTrail(t, store, p, positions[len(positions)-1]), store, "k1")
	}
	assert.Equal(t, positions, timeline(trailV3{NewTrail()}))
	assert.Equal(t, positions, timeline(NewTrail()))
}

// A timeline shows the log as of the trail's checkpoint: an event of a
// client's stream that the trail has not applied yet is not shown, as one
// linked on its own would not be.
func TestTimelineStopsAtTheTrailsCheckpoint(t *testing.T) {
	l := newTestLog(t)
	store := l.store
	put := func(e domain.Event) int64 { return l.put(eventstore.NewStreamID(care.StreamType, "s1"), e) }
	scheduled := put(care.SessionScheduled{SessionID: "s1", ClinicID: "c1", ClientID: "k1", ProviderID: "p1", ScheduledBy: "p1",
		Title: "t", Start: time.Now(), End: time.Now().Add(time.Hour)})
	db := runTrail(t, store, NewTrail(), scheduled)
	put(care.SessionActivated{SessionID: "s1", ClientID: "k1"}) // after the runner stopped
	assert.Equal(t, []int64{scheduled}, timelineOf(t, db, store, "k1"))
}

// runTrail runs the trail p over store until it has applied the event at
// head, then stops it, and returns its read-model database.
func runTrail(t *testing.T, store eventstore.Store, p projections.Projection, head int64) *projections.DB {
	t.Helper()
	ctx := context.Background()
	db, err := projections.OpenDB(ctx, pgtest.Location(t, "read.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	r, err := projections.NewRunner(store, db, nil, p)
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	require.Eventually(t, func() bool {
		reached, err := r.WaitFor(ctx, TrailName, head, time.Second)
		return err == nil && reached
	}, 30*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	return db
}

func timelineOf(t *testing.T, db *projections.DB, store eventstore.Store, clientID string) []int64 {
	t.Helper()
	page, err := ClientTimeline(context.Background(), db, store, clientID, time.Time{}, time.Time{}, Page{})
	require.NoError(t, err)
	var out []int64
	for _, e := range page.Entries {
		out = append(out, e.Position)
	}
	return out
}

// A client's stream links its events from the one that made it theirs; an
// event of it naming another client is linked to that client alone.
func TestStreamLinksStartAtTheLinkingEventAndNameOthersOneByOne(t *testing.T) {
	l := newTestLog(t)
	store := l.store
	put := func(e domain.Event) int64 { return l.put(eventstore.NewStreamID(care.StreamType, "s1"), e) }
	// Version 1 names no client, so it makes the stream no one's.
	first := put(care.SessionActivated{SessionID: "s1"})
	scheduled := put(care.SessionScheduled{SessionID: "s1", ClinicID: "c1", ClientID: "k1", ProviderID: "p1", ScheduledBy: "p1",
		Title: "t", Start: time.Now(), End: time.Now().Add(time.Hour)})
	other := put(care.SessionMessagePosted{SessionID: "s1", ClientID: "k2", MessageID: "m1", AuthorID: "p1",
		AuthorRole: domain.RoleProvider, Text: "x"})
	last := put(care.SessionActivated{SessionID: "s1", ClientID: "k1"})

	db := runTrail(t, store, NewTrail(), last)
	assert.Equal(t, []int64{scheduled, other, last}, timelineOf(t, db, store, "k1"), "not the event before the link")
	assert.Equal(t, []int64{other}, timelineOf(t, db, store, "k2"))
	assert.Less(t, first, scheduled)
}

// testLog is an event store in memory with the commands' event types, for
// the trail's tests.
type testLog struct {
	t        *testing.T
	registry *codec.Registry
	store    *memory.Store
}

func newTestLog(t *testing.T) *testLog {
	t.Helper()
	registry, err := commands.NewRegistry()
	require.NoError(t, err)
	store := memory.New(eventstore.Options{Types: registry})
	t.Cleanup(func() { _ = store.Close() })
	return &testLog{t: t, registry: registry, store: store}
}

// put appends e to stream as a provider's command would, and returns its
// position.
func (l *testLog) put(stream eventstore.StreamID, e domain.Event) int64 {
	l.t.Helper()
	name, v, data, err := l.registry.Encode(e)
	require.NoError(l.t, err)
	res, err := l.store.Append(context.Background(), stream, eventstore.AnyVersion, []eventstore.NewEvent{{Type: name,
		SchemaVersion: v, Data: data, Metadata: eventstore.Metadata{ActorID: "p1", ActorRole: "provider"}}})
	require.NoError(l.t, err)
	return res.LastPosition()
}

// A trail that starts with nothing cached (after a restart) finds a
// stream's client in its table for any event after the stream's first, and
// looks nothing up for a first event: nothing can have linked the stream
// before it.
func TestOwnerOfReadsTheLinkAfterARestart(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t)
	session := eventstore.NewStreamID(care.StreamType, "s1")
	scheduled := l.put(session, care.SessionScheduled{SessionID: "s1", ClinicID: "c1", ClientID: "k1", ProviderID: "p1",
		ScheduledBy: "p1", Title: "t", Start: time.Now(), End: time.Now().Add(time.Hour)})
	db := runTrail(t, l.store, NewTrail(), scheduled)

	restarted := NewTrail()
	require.NoError(t, db.Read(ctx, TrailName, func(tx *sql.Tx, tables projections.TableNames) error {
		for version, want := range map[int64]string{1: "", 2: "k1", 7: "k1"} {
			e := eventstore.RecordedEvent{Stream: session, Version: version, Position: scheduled + version}
			owner, err := restarted.ownerOf(ctx, tx, tables, e, session.String())
			require.NoError(t, err)
			assert.Equal(t, want, owner, "version %d", version)
		}
		return nil
	}))
}
