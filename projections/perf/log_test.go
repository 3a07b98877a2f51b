package perf_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/eventstore/sqlite"
)

// logShape sizes the synthetic care history: clinics of providersPerClinic
// providers and clientsPerClinic clients, each client with a care team of
// two and sessionsPerClient weekly sessions.
const (
	providersPerClinic = 10
	clientsPerClinic   = 200
	sessionsPerClient  = 12
	// eventsPerSession is what one session of careLoop writes.
	eventsPerSession = 16
	eventsPerClient  = 1 + sessionsPerClient*eventsPerSession
	// eventsPerClinicSetup: the clinic, and per provider its registration
	// and joining the clinic.
	eventsPerClinicSetup = 1 + 2*providersPerClinic
)

// clientsFor is how many clients make a log of at least n events.
func clientsFor(n int) int {
	perClinic := eventsPerClinicSetup + clientsPerClinic*eventsPerClient
	clinics := n / perClinic
	rest := n - clinics*perClinic
	clients := clinics * clientsPerClinic
	if rest > 0 {
		clients += max((rest-eventsPerClinicSetup+eventsPerClient-1)/eventsPerClient, 1)
	}
	return clients
}

// cachedLog returns the path of a SQLite event store holding the synthetic
// care history of clients clients, building it on first use. The file
// lives in the system temp directory and is reused by later runs (-count,
// other benchmarks, the next `go test`): building a million events takes
// a minute, rebuilding the projections from it is what is measured.
func cachedLog(b testing.TB, reg *codec.Registry, clients int) (path string, head int64) {
	b.Helper()
	path = filepath.Join(os.TempDir(), fmt.Sprintf("careflow-perf-log-v1-%d.db", clients))
	ctx := context.Background()
	if _, err := os.Stat(path); err == nil {
		store, err := sqlite.Open(ctx, sqlite.Config{Path: path}, eventstore.Options{Types: reg})
		require.NoError(b, err)
		head, err = store.HeadPosition(ctx)
		require.NoError(b, errors.Join(err, store.Close()))
		return path, head
	} else if !errors.Is(err, os.ErrNotExist) {
		require.NoError(b, err)
	}
	// Built under another name and renamed once complete, so an
	// interrupted build is never taken for a finished log.
	building := path + fmt.Sprintf(".building-%d", os.Getpid())
	store, err := sqlite.Open(ctx, sqlite.Config{Path: building}, eventstore.Options{Types: reg})
	require.NoError(b, err)
	began := time.Now()
	writeCareHistory(b, store, reg, clients)
	head, err = store.HeadPosition(ctx)
	require.NoError(b, err)
	require.NoError(b, store.Close())
	b.Logf("built %s: %d events in %s", path, head, time.Since(began).Round(time.Millisecond))
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(building + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			require.NoError(b, err)
		}
	}
	require.NoError(b, os.Rename(building, path))
	return path, head
}

// writeCareHistory appends the care history of clients clients to store
// with concurrent appenders, so the store's group commit writes hundreds
// of appends per transaction. Each session is two appends, as the commands
// write it: scheduling with its homework, then a week of care.
func writeCareHistory(b testing.TB, store eventstore.Store, reg *codec.Registry, clients int) {
	b.Helper()
	ctx := context.Background()
	clinics := (clients + clientsPerClinic - 1) / clientsPerClinic
	clinicIDs := make([]string, clinics)
	for c := range clinics {
		clinicIDs[c] = newID()
		admin := writer{actor: "admin-1", role: domain.RoleSystemAdmin, clinic: clinicIDs[c]}
		require.NoError(b, appendEvents(ctx, store, reg, eventstore.NewStreamID(commands.StreamClinic, clinicIDs[c]), admin,
			organization.ClinicCreated{ClinicID: clinicIDs[c], InstituteID: "institute-1", Name: fmt.Sprintf("Clinic %d", c)}))
		for p := range providersPerClinic {
			id := providerID(clinicIDs[c], p)
			require.NoError(b, appendEvents(ctx, store, reg, eventstore.NewStreamID(commands.StreamProvider, id), admin,
				organization.ProviderRegistered{ProviderID: id, DisplayName: fmt.Sprintf("Dr %d-%d", c, p)}))
			require.NoError(b, appendEvents(ctx, store, reg, eventstore.NewStreamID(commands.StreamClinic, clinicIDs[c]), admin,
				organization.ClinicProviderJoined{ClinicID: clinicIDs[c], ProviderID: id}))
		}
	}
	const appenders = 64
	next := make(chan int)
	errs := make(chan error, appenders)
	var wg sync.WaitGroup
	for range appenders {
		wg.Go(func() {
			for c := range next {
				if err := writeClient(ctx, store, reg, clinicIDs[c/clientsPerClinic], c); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for c := range clients {
		select {
		case next <- c:
		case err := <-errs:
			close(next)
			wg.Wait()
			require.NoError(b, err)
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	require.NoError(b, <-errs)
}

func providerID(clinic string, p int) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s-provider-%d", clinic, p)).String()
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// writeClient writes one client's registration and weekly sessions: a
// PHQ-9 and a GAD-7 given, started, completed and answered with feedback,
// comments, messages, discussion, a note and the close.
func writeClient(ctx context.Context, store eventstore.Store, reg *codec.Registry, clinic string, c int) error {
	client := newID()
	p1 := providerID(clinic, c%providersPerClinic)
	p2 := providerID(clinic, (c+1)%providersPerClinic)
	provider := writer{actor: p1, role: domain.RoleProvider, clinic: clinic}
	if err := appendEvents(ctx, store, reg, eventstore.NewStreamID(commands.StreamClient, client), provider, organization.ClientRegistered{
		ClientID: client, ClinicID: clinic, DisplayName: fmt.Sprintf("Client %d", c), CareTeam: []string{p1, p2}, RegisteredBy: p1,
	}); err != nil {
		return err
	}
	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for s := range sessionsPerClient {
		id := newID()
		stream := eventstore.NewStreamID(care.StreamType, id)
		from := start.Add(time.Duration(s) * 7 * 24 * time.Hour)
		to := from.Add(7 * 24 * time.Hour)
		at := func(h int) time.Time { return from.Add(time.Duration(h) * time.Hour) }
		a1, a2 := newID(), newID()
		f1 := newID()
		risk := (c+s)%7 == 0
		phqAnswers := answers(books.PHQ9ID)
		total := 9
		var flags []books.Flag
		if risk {
			phqAnswers[8].Value = 2
			total = 10
			flags = []books.Flag{{Kind: "risk", ItemID: "9", Urgent: true, Reason: "item 9"}}
		}
		if err := appendEvents(ctx, store, reg, stream, provider,
			care.SessionScheduled{SessionID: id, ClinicID: clinic, ClientID: client, ProviderID: p1, ScheduledBy: p1,
				Title: "Weekly check-in", Start: from, End: to, Series: &care.SeriesRef{ID: client, Index: s + 1, Count: sessionsPerClient}, At: at(-24)},
			care.AssignmentGiven{SessionID: id, ClientID: client, AssignmentID: a1, BookID: books.PHQ9ID, BookVersion: 1,
				BookKind: books.KindQuestionnaire, BookTitle: "PHQ-9", Due: to, By: p1, At: at(-24)},
			care.AssignmentGiven{SessionID: id, ClientID: client, AssignmentID: a2, BookID: books.GAD7ID, BookVersion: 1,
				BookKind: books.KindQuestionnaire, BookTitle: "GAD-7", Due: to, By: p1, At: at(-24)},
		); err != nil {
			return err
		}
		if err := appendEvents(ctx, store, reg, stream, provider,
			care.SessionActivated{SessionID: id, ClientID: client, At: at(0)},
			care.AssignmentStarted{SessionID: id, ClientID: client, AssignmentID: a1, At: at(2)},
			care.AssignmentCompleted{SessionID: id, ClientID: client, ProviderID: p1, AssignmentID: a1, BookID: books.PHQ9ID,
				BookVersion: 1, Answers: phqAnswers, Scored: true, Total: total, Severity: "mild", Flags: flags, Urgent: risk, At: at(3)},
			care.SessionMessagePosted{SessionID: id, ClientID: client, MessageID: newID(), AuthorID: client,
				AuthorRole: domain.RoleClient, Text: "How do I do the breathing exercise?", At: at(4)},
			care.AssignmentCompleted{SessionID: id, ClientID: client, ProviderID: p1, AssignmentID: a2, BookID: books.GAD7ID,
				BookVersion: 1, Answers: answers(books.GAD7ID), Scored: true, Total: 7, Severity: "mild", At: at(5)},
			care.AssignmentFeedbackGiven{SessionID: id, ClientID: client, AssignmentID: a1, FeedbackID: f1, By: p1,
				Text: "Thank you for filling this in; your mood looks steadier.", At: at(20)},
			care.AssignmentFeedbackGiven{SessionID: id, ClientID: client, AssignmentID: a2, FeedbackID: newID(), By: p2,
				Text: "Anxiety is mild this week.", At: at(21)},
			care.AssignmentCommentPosted{SessionID: id, ClientID: client, AssignmentID: a1, FeedbackID: f1,
				CommentID: newID(), AuthorID: client, AuthorRole: domain.RoleClient, Text: "What should I try next?", At: at(22)},
			care.AssignmentCommentPosted{SessionID: id, ClientID: client, AssignmentID: a1, FeedbackID: f1,
				CommentID: newID(), AuthorID: p2, AuthorRole: domain.RoleProvider, Text: "Keep the sleep diary.", At: at(23)},
			care.SessionMessagePosted{SessionID: id, ClientID: client, MessageID: newID(), AuthorID: p1,
				AuthorRole: domain.RoleProvider, Text: "Breathe in for four, out for six.", At: at(24)},
			care.SessionDiscussionPosted{SessionID: id, ClientID: client, PostID: newID(), AuthorID: p1,
				Text: "Progressing; keep the current plan.", At: at(25)},
			care.SessionNoteWritten{SessionID: id, ClientID: client, NoteID: newID(), AuthorID: p2,
				Text: "Engaged and on time.", At: at(26)},
			care.SessionClosed{SessionID: id, ClientID: client, By: p1, At: at(160)},
		); err != nil {
			return err
		}
	}
	return nil
}

// answers answers every item of a built-in book with 1.
func answers(bookID string) []books.Answer {
	b, _ := books.BuiltInBook(bookID)
	out := make([]books.Answer, 0, len(b.Items()))
	for _, it := range b.Items() {
		out = append(out, books.Answer{ItemID: it.ID, Value: 1})
	}
	return out
}

// writer is who an append's metadata name, as a command's would.
type writer struct {
	actor  string
	role   domain.Role
	clinic string
}

// appendEvents encodes events with the codec and appends them to stream
// with the metadata a command would give them.
func appendEvents(ctx context.Context, store eventstore.Store, reg *codec.Registry, stream eventstore.StreamID, by writer, events ...domain.Event) error {
	news := make([]eventstore.NewEvent, len(events))
	md := eventstore.Metadata{ActorID: by.actor, ActorRole: string(by.role), CommandID: newID(), ClinicID: by.clinic, OccurredAt: time.Now()}
	md.CorrelationID = md.CommandID
	for i, e := range events {
		name, version, data, err := reg.Encode(e)
		if err != nil {
			return err
		}
		news[i] = eventstore.NewEvent{Type: name, SchemaVersion: version, Data: data, Metadata: md}
	}
	_, err := store.Append(ctx, stream, eventstore.AnyVersion, news)
	return err
}
