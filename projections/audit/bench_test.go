package audit_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/audit"
)

// benchLog is a log of clients, each with sessions full of messages,
// written straight to a memory store, with the audit trail caught up.
type benchLog struct {
	store    eventstore.Store
	db       *projections.DB
	runner   *projections.Runner
	tt       *audit.TimeTravel
	head     int64
	end      time.Time
	client   string
	session  string
	perTrail int // events on one client's timeline
}

func newBenchLog(b *testing.B, clients, sessions, messages int) *benchLog {
	b.Helper()
	ctx := context.Background()
	registry, err := commands.NewRegistry()
	require.NoError(b, err)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store := memory.New(eventstore.Options{Types: registry, Clock: func() time.Time { return now }})
	b.Cleanup(func() { _ = store.Close() })
	put := func(stream eventstore.StreamID, events ...domain.Event) {
		var batch []eventstore.NewEvent
		for _, e := range events {
			name, v, data, err := registry.Encode(e)
			require.NoError(b, err)
			batch = append(batch, eventstore.NewEvent{Type: name, SchemaVersion: v, Data: data,
				Metadata: eventstore.Metadata{ActorID: "p1", ActorRole: "provider", CommandID: fmt.Sprint(now.UnixNano()), OccurredAt: now}})
		}
		_, err := store.Append(ctx, stream, eventstore.AnyVersion, batch)
		require.NoError(b, err)
		now = now.Add(time.Second)
	}
	l := &benchLog{store: store, tt: audit.NewTimeTravel(store, registry)}
	for c := range clients {
		client := fmt.Sprintf("k%d", c)
		put(eventstore.NewStreamID(commands.StreamClient, client),
			organization.ClientRegistered{ClientID: client, ClinicID: "c1", DisplayName: "x", CareTeam: []string{"p1"}, RegisteredBy: "p1"})
		for s := range sessions {
			session := fmt.Sprintf("%s-s%d", client, s)
			stream := eventstore.NewStreamID(care.StreamType, session)
			put(stream, care.SessionScheduled{SessionID: session, ClinicID: "c1", ClientID: client, ProviderID: "p1",
				ScheduledBy: "p1", Title: "Week", Start: now, End: now.Add(time.Hour), At: now})
			for m := range messages {
				put(stream, care.SessionMessagePosted{SessionID: session, ClientID: client, MessageID: fmt.Sprint(m),
					AuthorID: "p1", AuthorRole: domain.RoleProvider, Text: "hello", At: now})
			}
			l.session = session
		}
		l.client = client
	}
	l.perTrail = 1 + sessions*(1+messages)
	l.end = now
	l.head, err = store.HeadPosition(ctx)
	require.NoError(b, err)

	l.db, err = projections.OpenDB(ctx, filepath.Join(b.TempDir(), "read.db"))
	require.NoError(b, err)
	b.Cleanup(func() { _ = l.db.Close() })
	l.runner, err = projections.NewRunner(store, l.db, nil, audit.NewTrail())
	require.NoError(b, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.runner.Run(runCtx) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	require.Eventually(b, func() bool {
		reached, err := l.runner.WaitFor(ctx, audit.TrailName, l.head, time.Second)
		return err == nil && reached
	}, 5*time.Minute, time.Millisecond)
	return l
}

// BenchmarkTrailRebuild rebuilds the audit trail of a 10k-event log.
func BenchmarkTrailRebuild(b *testing.B) {
	l := newBenchLog(b, 100, 5, 19)
	ctx := context.Background()
	for b.Loop() {
		require.NoError(b, l.runner.Rebuild(ctx, audit.TrailName))
	}
	b.ReportMetric(float64(l.head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkClientTimeline reads one page of a client's timeline from the
// read model.
func BenchmarkClientTimeline(b *testing.B) {
	l := newBenchLog(b, 100, 5, 19)
	ctx := context.Background()
	for b.Loop() {
		page, err := audit.ClientTimeline(ctx, l.db, l.store, l.client, time.Time{}, time.Time{}, audit.Page{Limit: 100})
		require.NoError(b, err)
		require.Len(b, page.Entries, 100)
	}
}

// BenchmarkClientTimelineAsOf rebuilds a client's timeline by scanning the
// whole 10k-event log.
func BenchmarkClientTimelineAsOf(b *testing.B) {
	l := newBenchLog(b, 100, 5, 19)
	ctx := context.Background()
	for b.Loop() {
		entries, err := l.tt.ClientTimeline(ctx, l.client, l.end)
		require.NoError(b, err)
		require.Len(b, entries, l.perTrail)
	}
}

// BenchmarkSessionAsOf rebuilds one 20-event session as of the end.
func BenchmarkSessionAsOf(b *testing.B) {
	l := newBenchLog(b, 100, 5, 19)
	ctx := context.Background()
	for b.Loop() {
		s, err := l.tt.Session(ctx, l.session, l.end)
		require.NoError(b, err)
		require.Equal(b, 19, s.Session.Messages)
	}
}
