package views_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/views"
	"github.com/careflow/careflow/projections/views/viewstest"
)

// syntheticLog appends a care history shaped like production to store:
// clinics of 10 providers, clients with teams of two, and per client
// weekly sessions with a PHQ-9 and a GAD-7 that are started, completed,
// given feedback and discussed, with messages, discussion, a note and the
// close. It returns the number of events.
func syntheticLog(tb testing.TB, store eventstore.Store, reg *codec.Registry, clients, sessionsPerClient int) int {
	tb.Helper()
	ctx := context.Background()
	count := 0
	appendAll := func(stream eventstore.StreamID, events ...domain.Event) {
		news := make([]eventstore.NewEvent, len(events))
		for i, e := range events {
			name, version, data, err := reg.Encode(e)
			require.NoError(tb, err)
			news[i] = eventstore.NewEvent{Type: name, SchemaVersion: version, Data: data}
		}
		_, err := store.Append(ctx, stream, eventstore.AnyVersion, news)
		require.NoError(tb, err)
		count += len(events)
	}
	phq, _ := books.BuiltInBook(books.PHQ9ID)
	gad, _ := books.BuiltInBook(books.GAD7ID)
	answer := func(b books.Book, v int) []books.Answer {
		var out []books.Answer
		for _, it := range b.Items() {
			out = append(out, books.Answer{ItemID: it.ID, Value: v})
		}
		return out
	}
	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	const providersPerClinic = 10
	for c := 0; c < clients; c++ {
		clinic := fmt.Sprintf("clinic-%d", c/200)
		if c%200 == 0 {
			appendAll(eventstore.NewStreamID("clinic", clinic), organization.ClinicCreated{ClinicID: clinic, InstituteID: "i", Name: clinic})
			for p := 0; p < providersPerClinic; p++ {
				id := fmt.Sprintf("%s-p%d", clinic, p)
				appendAll(eventstore.NewStreamID("provider", id), organization.ProviderRegistered{ProviderID: id, DisplayName: "Dr " + id})
				appendAll(eventstore.NewStreamID("clinic", clinic), organization.ClinicProviderJoined{ClinicID: clinic, ProviderID: id})
			}
		}
		client := fmt.Sprintf("client-%d", c)
		p1 := fmt.Sprintf("%s-p%d", clinic, c%providersPerClinic)
		p2 := fmt.Sprintf("%s-p%d", clinic, (c+1)%providersPerClinic)
		appendAll(eventstore.NewStreamID("client", client), organization.ClientRegistered{
			ClientID: client, ClinicID: clinic, DisplayName: "Client " + client, CareTeam: []string{p1, p2}, RegisteredBy: p1,
		})
		for s := 0; s < sessionsPerClient; s++ {
			id := fmt.Sprintf("%s-s%d", client, s)
			from := start.Add(time.Duration(s) * 7 * 24 * time.Hour)
			to := from.Add(7 * 24 * time.Hour)
			at := func(h int) time.Time { return from.Add(time.Duration(h) * time.Hour) }
			a1, a2 := id+"-a1", id+"-a2"
			risk := (c+s)%7 == 0
			phqAnswers := answer(phq, 1)
			if risk {
				phqAnswers[8].Value = 2
			}
			var flags []books.Flag
			if risk {
				flags = []books.Flag{{Kind: "risk", ItemID: "9", Urgent: true, Reason: "item 9"}}
			}
			appendAll(eventstore.NewStreamID(care.StreamType, id),
				care.SessionScheduled{SessionID: id, ClinicID: clinic, ClientID: client, ProviderID: p1, ScheduledBy: p1,
					Title: "Weekly", Start: from, End: to, Series: &care.SeriesRef{ID: client, Index: s + 1, Count: sessionsPerClient}, At: at(-24)},
				care.AssignmentGiven{SessionID: id, ClientID: client, AssignmentID: a1, BookID: books.PHQ9ID, BookVersion: 1,
					BookKind: books.KindQuestionnaire, BookTitle: "PHQ-9", Due: to, By: p1, At: at(-24)},
				care.AssignmentGiven{SessionID: id, ClientID: client, AssignmentID: a2, BookID: books.GAD7ID, BookVersion: 1,
					BookKind: books.KindQuestionnaire, BookTitle: "GAD-7", Due: to, By: p1, At: at(-24)},
			)
			appendAll(eventstore.NewStreamID(care.StreamType, id),
				care.SessionActivated{SessionID: id, ClientID: client, At: at(0)},
				care.AssignmentStarted{SessionID: id, ClientID: client, AssignmentID: a1, At: at(2)},
				care.AssignmentCompleted{SessionID: id, ClientID: client, ProviderID: p1, AssignmentID: a1, BookID: books.PHQ9ID,
					BookVersion: 1, Answers: phqAnswers, Scored: true, Total: 9 + oneIf(risk), Severity: "mild", Flags: flags, Urgent: risk, At: at(3)},
				care.SessionMessagePosted{SessionID: id, ClientID: client, MessageID: id + "-m1", AuthorID: client,
					AuthorRole: domain.RoleClient, Text: "How do I do the breathing exercise?", At: at(4)},
				care.AssignmentCompleted{SessionID: id, ClientID: client, ProviderID: p1, AssignmentID: a2, BookID: books.GAD7ID,
					BookVersion: 1, Answers: answer(gad, 1), Scored: true, Total: 7, Severity: "mild", At: at(5)},
				care.AssignmentFeedbackGiven{SessionID: id, ClientID: client, AssignmentID: a1, FeedbackID: id + "-f1", By: p1,
					Text: "Thank you for filling this in; your mood looks steadier.", At: at(20)},
				care.AssignmentFeedbackGiven{SessionID: id, ClientID: client, AssignmentID: a2, FeedbackID: id + "-f2", By: p2,
					Text: "Anxiety is mild this week.", At: at(21)},
				care.AssignmentCommentPosted{SessionID: id, ClientID: client, AssignmentID: a1, FeedbackID: id + "-f1",
					CommentID: id + "-c1", AuthorID: client, AuthorRole: domain.RoleClient, Text: "What should I try next?", At: at(22)},
				care.AssignmentCommentPosted{SessionID: id, ClientID: client, AssignmentID: a1, FeedbackID: id + "-f1",
					CommentID: id + "-c2", AuthorID: p2, AuthorRole: domain.RoleProvider, Text: "Keep the sleep diary.", At: at(23)},
				care.SessionMessagePosted{SessionID: id, ClientID: client, MessageID: id + "-m2", AuthorID: p1,
					AuthorRole: domain.RoleProvider, Text: "Breathe in for four, out for six.", At: at(24)},
				care.SessionDiscussionPosted{SessionID: id, ClientID: client, PostID: id + "-d1", AuthorID: p1,
					Text: "Progressing; keep the current plan.", At: at(25)},
				care.SessionNoteWritten{SessionID: id, ClientID: client, NoteID: id + "-n1", AuthorID: p2,
					Text: "Engaged and on time.", At: at(26)},
				care.SessionClosed{SessionID: id, ClientID: client, By: p1, At: at(160)},
			)
		}
	}
	return count
}

func oneIf(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkRebuild rebuilds the views from a synthetic log into a fresh
// database and reports events per second of the log: "all" runs the five
// together as production does (they share the one writer connection),
// the others one view alone. Run with -cpu 2 for the 2-core target.
func BenchmarkRebuild(b *testing.B) {
	reg, err := commands.NewRegistry()
	require.NoError(b, err)
	store := memory.New(eventstore.Options{Types: reg})
	defer store.Close()
	events := syntheticLog(b, store, reg, 1000, 6)
	all, err := views.All(reg, viewstest.NewSealer())
	require.NoError(b, err)
	b.Run("all", func(b *testing.B) { benchRebuild(b, store, events, all...) })
	// The floor: five projections that write nothing, i.e. what the runner
	// itself costs to feed five projections the log.
	b.Run("five_noops", func(b *testing.B) {
		var noops []projections.Projection
		for i := range 5 {
			noops = append(noops, noop{name: fmt.Sprintf("noop_%d", i)})
		}
		benchRebuild(b, store, events, noops...)
	})
	alone, err := views.All(reg, viewstest.NewSealer())
	require.NoError(b, err)
	for _, p := range alone {
		b.Run(p.Name(), func(b *testing.B) { benchRebuild(b, store, events, p) })
	}
}

// noop is a projection that ignores every event.
type noop struct{ name string }

func (p noop) Name() string     { return p.name }
func (noop) Version() int       { return 1 }
func (p noop) Tables() []string { return []string{p.name + "_rows"} }
func (p noop) Schema(t projections.TableNames) []string {
	return []string{`CREATE TABLE ` + t.Of(p.name+"_rows") + ` (id TEXT PRIMARY KEY)`}
}
func (noop) Apply(context.Context, *sql.Tx, projections.TableNames, eventstore.RecordedEvent) error {
	return nil
}

func benchRebuild(b *testing.B, store eventstore.Store, events int, ps ...projections.Projection) {
	ctx := context.Background()
	head, err := store.HeadPosition(ctx)
	require.NoError(b, err)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db, err := projections.OpenDB(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("views-%d.db", i)))
		require.NoError(b, err)
		runner, err := projections.NewRunner(store, db, nil, ps...)
		require.NoError(b, err)
		require.NoError(b, runner.Prepare(ctx))
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		b.StartTimer()
		began := time.Now()
		go func() { done <- runner.Run(runCtx) }()
		for _, p := range ps {
			for {
				reached, err := runner.WaitFor(ctx, p.Name(), head, time.Minute)
				require.NoError(b, err)
				if reached {
					break
				}
				time.Sleep(time.Millisecond) // Run has not started yet
			}
		}
		total += time.Since(began)
		b.StopTimer()
		cancel()
		require.NoError(b, <-done)
		require.NoError(b, db.Close())
		b.StartTimer()
	}
	b.ReportMetric(float64(events)*float64(b.N)/total.Seconds(), "events/s")
}
