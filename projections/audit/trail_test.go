package audit_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/audit"
)

// positionsOfStreams merges the positions of every event of the streams,
// in global order: the timeline a client's streams make, read without the
// audit trail.
func positionsOfStreams(t *testing.T, w *world, streams ...eventstore.StreamID) []int64 {
	t.Helper()
	var out []int64
	for _, s := range streams {
		events, err := w.store.ReadStream(w.ctx, s, 1)
		require.NoError(t, err)
		require.NotEmpty(t, events, "stream %s", s)
		for _, e := range events {
			out = append(out, e.Position)
		}
	}
	slices.Sort(out)
	return out
}

func positionsOf(entries []audit.Entry) []int64 {
	out := []int64{}
	for _, e := range entries {
		out = append(out, e.Position)
	}
	return out
}

func TestClientTimelineListsAllTheirSessionsInGlobalOrder(t *testing.T) {
	h := runHistory(t)
	w := h.w
	w.caughtUp()
	session := func(id string) eventstore.StreamID { return eventstore.NewStreamID(care.StreamType, id) }

	k1 := w.timeline(w.k1.ID, time.Time{}, time.Time{})
	want := positionsOfStreams(t, w, h.clientStreamK1, session(h.s1), session(h.s2))
	assert.Equal(t, want, positionsOf(k1), "the client's stream and both sessions, interleaved in global order")
	streams := map[string]bool{}
	for _, e := range k1 {
		streams[e.Stream] = true
		assert.NotEqual(t, session(h.s3).String(), e.Stream, "another client's session never shows")
	}
	assert.Len(t, streams, 3)
	assert.True(t, slices.IsSortedFunc(k1, func(a, b audit.Entry) int { return int(a.Position - b.Position) }))
	teamChange := slices.IndexFunc(k1, func(e audit.Entry) bool { return e.Type == "client.care_team_changed" })
	require.GreaterOrEqual(t, teamChange, 0, "care-team changes are on the timeline")
	assert.Equal(t, w.p1.ID, k1[teamChange].ActorID)

	k2 := w.timeline(w.k2.ID, time.Time{}, time.Time{})
	assert.Equal(t, positionsOfStreams(t, w, eventstore.NewStreamID(commands.StreamClient, w.k2.ID), session(h.s3)), positionsOf(k2))

	// The log scan of time travel finds exactly the same.
	scanned, err := w.tt.ClientTimeline(w.ctx, w.k1.ID, w.clock())
	require.NoError(t, err)
	assert.Equal(t, k1, scanned)
}

func TestClientTimelinePagesAndTimeRange(t *testing.T) {
	h := runHistory(t)
	w := h.w
	w.caughtUp()
	all := w.timeline(w.k1.ID, time.Time{}, time.Time{})
	require.Greater(t, len(all), 7)

	var paged []audit.Entry
	page := audit.Page{Limit: 3}
	for pages := 0; ; pages++ {
		require.Less(t, pages, len(all), "paging ends")
		got, err := audit.ClientTimeline(w.ctx, w.db, w.store, w.k1.ID, time.Time{}, time.Time{}, page)
		require.NoError(t, err)
		require.LessOrEqual(t, len(got.Entries), 3)
		paged = append(paged, got.Entries...)
		if got.Next == 0 {
			break
		}
		page.After = got.Next
	}
	assert.Equal(t, all, paged)

	// A window of steps: from the activation of s1 to the care-team change.
	from, to := stepAt(t, h, "activate s1"), stepAt(t, h, "care team changes")
	window := w.timeline(w.k1.ID, from, to)
	var want []audit.Entry
	for _, e := range all {
		if !e.RecordedAt.Before(from) && !e.RecordedAt.After(to) {
			want = append(want, e)
		}
	}
	require.NotEmpty(t, want)
	require.Less(t, len(want), len(all))
	assert.Equal(t, want, window)
	assert.Equal(t, "session.activated", window[0].Type)
	assert.Equal(t, "client.care_team_changed", window[len(window)-1].Type)

	// Bounds far outside what nanoseconds since 1970 hold still bound.
	longAgo, farAhead := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, all, w.timeline(w.k1.ID, longAgo, farAhead))
	assert.Empty(t, w.timeline(w.k1.ID, farAhead, farAhead))
	assert.Empty(t, w.timeline(w.k1.ID, longAgo, longAgo))

	for _, bad := range []struct {
		name     string
		client   string
		from, to time.Time
		page     audit.Page
	}{
		{"no client", "", time.Time{}, time.Time{}, audit.Page{}},
		{"from after to", w.k1.ID, to, from, audit.Page{}},
		{"negative cursor", w.k1.ID, time.Time{}, time.Time{}, audit.Page{After: -1}},
		{"page too large", w.k1.ID, time.Time{}, time.Time{}, audit.Page{Limit: audit.MaxPageSize + 1}},
	} {
		_, err := audit.ClientTimeline(w.ctx, w.db, w.store, bad.client, bad.from, bad.to, bad.page)
		assert.ErrorIs(t, err, audit.ErrInvalidQuery, bad.name)
	}
}

func stepAt(t *testing.T, h *history, name string) time.Time {
	t.Helper()
	i := slices.IndexFunc(h.steps, func(s snapshot) bool { return s.step == name })
	require.GreaterOrEqual(t, i, 0, "step %q", name)
	return h.steps[i].at
}

// dumpTables returns every value of every row of the audit tables as text.
func dumpTables(t *testing.T, w *world) string {
	t.Helper()
	var b strings.Builder
	rowsSeen := 0
	err := w.db.Read(w.ctx, audit.TrailName, func(tx *sql.Tx, names projections.TableNames) error {
		for _, table := range names.Physical() {
			rows, err := tx.Query(`SELECT * FROM ` + table)
			if err != nil {
				return err
			}
			columns, err := rows.Columns()
			if err != nil {
				return err
			}
			values := make([]any, len(columns))
			targets := make([]any, len(columns))
			for i := range values {
				targets[i] = &values[i]
			}
			for rows.Next() {
				if err := rows.Scan(targets...); err != nil {
					return err
				}
				rowsSeen++
				for _, v := range values {
					fmt.Fprintf(&b, "%v|", v)
				}
				b.WriteString("\n")
			}
			if err := rows.Close(); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Positive(t, rowsSeen)
	return b.String()
}

func TestAuditTablesHoldNoPHI(t *testing.T) {
	h := runHistory(t)
	w := h.w
	w.caughtUp()

	// Every canary really is in the event store, so its absence from the
	// audit tables means something.
	events, err := w.store.ReadAll(w.ctx, 0, 10_000)
	require.NoError(t, err)
	var log strings.Builder
	for _, e := range events {
		log.Write(e.Data)
	}
	for _, canary := range canaries {
		require.Contains(t, log.String(), canary)
	}
	// The answers too: every PHQ-9 answer was 2.
	require.Contains(t, log.String(), `"answers":[{"itemId"`)

	dump := dumpTables(t, w)
	for _, canary := range canaries {
		assert.NotContains(t, dump, canary)
	}
	assert.NotContains(t, dump, "answers")
	assert.NotContains(t, dump, "itemId")
	// What the tables do hold: which events touched which client.
	assert.Contains(t, dump, w.k1.ID)

	// The auditor's timeline, read from the store, says who did what to
	// what, without the bodies either.
	timeline, err := json.Marshal(w.timeline(w.k1.ID, time.Time{}, time.Time{}))
	require.NoError(t, err)
	for _, canary := range canaries {
		assert.NotContains(t, string(timeline), canary)
	}
	assert.Contains(t, string(timeline), "assignment.completed")
	assert.Contains(t, string(timeline), "message:")
}

func TestIncrementalTrailEqualsRebuild(t *testing.T) {
	for _, backend := range []string{"memory", "sqlite"} {
		t.Run(backend, func(t *testing.T) { testIncrementalEqualsRebuild(t, runHistoryOn(t, backend)) })
	}
}

func testIncrementalEqualsRebuild(t *testing.T, h *history) {
	w := h.w
	w.caughtUp()
	incremental, err := projections.ProjectionHash(w.ctx, w.db, audit.TrailName)
	require.NoError(t, err)
	timeline := w.timeline(w.k1.ID, time.Time{}, time.Time{})

	require.NoError(t, w.run.Rebuild(w.ctx, audit.TrailName))
	rebuilt, err := projections.ProjectionHash(w.ctx, w.db, audit.TrailName)
	require.NoError(t, err)
	assert.Equal(t, incremental, rebuilt)
	assert.Equal(t, timeline, w.timeline(w.k1.ID, time.Time{}, time.Time{}))

	// A fresh database built in one go from the finished log agrees too.
	db, err := projections.OpenDB(w.ctx, readModelsAt(t, "fresh.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	r, err := projections.NewRunnerWithOptions(w.store, db, nil, projections.Options{BatchSize: 4}, audit.NewTrail())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	head := w.head()
	require.Eventually(t, func() bool {
		reached, err := r.WaitFor(w.ctx, audit.TrailName, head, time.Second)
		return err == nil && reached
	}, generous, time.Millisecond)
	fresh, err := projections.ProjectionHash(w.ctx, db, audit.TrailName)
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, err)
	assert.Equal(t, incremental, fresh)
}

// TestLinksFollowStreamsAClientOwns covers streams other than sessions: an
// account registered for a client is the client's stream from then on, and
// an event in some other stream that names a client touches only that
// event.
func TestLinksFollowStreamsAClientOwns(t *testing.T) {
	ctx := context.Background()
	registry, err := commands.NewRegistry()
	require.NoError(t, err)
	clock := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	store := memory.New(eventstore.Options{Types: registry, Clock: func() time.Time { return clock }})
	t.Cleanup(func() { _ = store.Close() })
	put := func(stream eventstore.StreamID, e domain.Event) int64 {
		name, v, data, err := registry.Encode(e)
		require.NoError(t, err)
		res, err := store.Append(ctx, stream, eventstore.AnyVersion, []eventstore.NewEvent{{Type: name, SchemaVersion: v, Data: data,
			Metadata: eventstore.Metadata{ActorID: "sys", ActorRole: "system_admin", OccurredAt: clock}}})
		require.NoError(t, err)
		return res.LastPosition()
	}
	account := eventstore.NewStreamID(commands.StreamAccount, "acc1")
	registered := put(account, identity.AccountRegistered{UserID: "u1", Username: "kim", Role: domain.RoleClient, ClientID: "k9", PasswordHash: "x", RegisteredBy: "sys"})
	changed := put(account, identity.AccountPasswordChanged{UserID: "u1", PasswordHash: "y", ChangedBy: "u1"})
	providerAccount := eventstore.NewStreamID(commands.StreamAccount, "acc2")
	put(providerAccount, identity.AccountRegistered{UserID: "u2", Username: "dr", Role: domain.RoleProvider, ProviderID: "p9", PasswordHash: "x", RegisteredBy: "sys"})
	// Not an event this stream would get, but the trail must not assume.
	named := put(providerAccount, care.SessionMessagePosted{SessionID: "s9", ClientID: "k8", MessageID: "m1", AuthorID: "p9", AuthorRole: domain.RoleProvider, Text: "x"})
	last := put(providerAccount, identity.AccountPasswordChanged{UserID: "u2", PasswordHash: "y", ChangedBy: "u2"})

	db, err := projections.OpenDB(ctx, readModelsAt(t, "read.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	r, err := projections.NewRunner(store, db, nil, audit.NewTrail())
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, func() bool {
		reached, err := r.WaitFor(ctx, audit.TrailName, last, time.Second)
		return err == nil && reached
	}, generous, time.Millisecond)

	k9, err := audit.ClientTimeline(ctx, db, store, "k9", time.Time{}, time.Time{}, audit.Page{})
	require.NoError(t, err)
	assert.Equal(t, []int64{registered, changed}, positionsOf(k9.Entries), "the password change has no client id but is in the client's account")
	k8, err := audit.ClientTimeline(ctx, db, store, "k8", time.Time{}, time.Time{}, audit.Page{})
	require.NoError(t, err)
	assert.Equal(t, []int64{named}, positionsOf(k8.Entries), "an event naming a client touches them; its stream stays not theirs")
	assert.Equal(t, "message:m1", k8.Entries[0].Subject)

	// The trail is an index of this log: another store cannot answer it.
	other := memory.New(eventstore.Options{Types: registry})
	t.Cleanup(func() { _ = other.Close() })
	_, err = audit.ClientTimeline(ctx, db, other, "k9", time.Time{}, time.Time{}, audit.Page{})
	assert.ErrorContains(t, err, "the event store does not hold the event at 1 that links account-acc1")
	_, err = audit.ClientTimeline(ctx, db, other, "k8", time.Time{}, time.Time{}, audit.Page{})
	assert.ErrorContains(t, err, "the event store holds 0 of the 1 events the trail links")

	tt := audit.NewTimeTravel(store, registry)
	scanned, err := tt.ClientTimeline(ctx, "k9", clock)
	require.NoError(t, err)
	assert.Equal(t, k9.Entries, scanned)
}
