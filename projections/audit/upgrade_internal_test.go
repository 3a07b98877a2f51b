package audit

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
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
	registry, err := commands.NewRegistry()
	require.NoError(t, err)
	store := memory.New(eventstore.Options{Types: registry})
	t.Cleanup(func() { _ = store.Close() })
	name, v, data, err := registry.Encode(organization.ClientRegistered{ClientID: "k1", ClinicID: "c1", DisplayName: "x",
		CareTeam: []string{"p1"}, RegisteredBy: "p1"})
	require.NoError(t, err)
	res, err := store.Append(ctx, eventstore.NewStreamID(commands.StreamClient, "k1"), eventstore.NoStream,
		[]eventstore.NewEvent{{Type: name, SchemaVersion: v, Data: data, Metadata: eventstore.Metadata{ActorID: "p1", ActorRole: "provider"}}})
	require.NoError(t, err)

	db, err := projections.OpenDB(ctx, filepath.Join(t.TempDir(), "read.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	r, err := projections.NewRunner(store, db, nil, trailV2{NewTrail()})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	require.Eventually(t, func() bool {
		reached, err := r.WaitFor(ctx, TrailName, res.LastPosition(), time.Second)
		return err == nil && reached
	}, 30*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	page, err := ClientTimeline(ctx, db, store, "k1", time.Time{}, time.Time{}, Page{})
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	assert.Equal(t, "client.registered", page.Entries[0].Type)

	_, err = ClientTimeline(ctx, db, store, "k1", time.Now().Add(-time.Hour), time.Time{}, Page{})
	assert.ErrorIs(t, err, ErrTrailRebuilding)
	_, err = ClientTimeline(ctx, db, store, "k1", time.Time{}, time.Now(), Page{})
	assert.ErrorIs(t, err, ErrTrailRebuilding)
}
