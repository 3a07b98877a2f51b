package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/eventstore/sqlite"
	"github.com/careflow/careflow/projections"
)

// demoNow is the clock of the demo tests: a Sunday afternoon.
var demoNow = time.Date(2026, 11, 22, 15, 30, 0, 0, time.UTC)

type demoEnv struct {
	deps     commands.Deps
	accounts *commands.Accounts
}

func newDemoEnv(t *testing.T, store eventstore.Store, reg *codec.Registry) demoEnv {
	t.Helper()
	deps := commands.Deps{Store: store, Codec: reg, Clock: func() time.Time { return demoNow }, NewID: uuid.New}
	return demoEnv{deps: deps, accounts: commands.NewAccounts(deps, mustTestHasher(t))}
}

func demoRegistry(t *testing.T) *codec.Registry {
	t.Helper()
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	return reg
}

func memoryDemoEnv(t *testing.T) demoEnv {
	t.Helper()
	reg := demoRegistry(t)
	store := memory.New(eventstore.Options{Types: reg})
	t.Cleanup(func() { _ = store.Close() })
	return newDemoEnv(t, store, reg)
}

func sqliteDemoEnv(t *testing.T) demoEnv {
	t.Helper()
	reg := demoRegistry(t)
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")},
		eventstore.Options{Types: reg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	return newDemoEnv(t, store, reg)
}

func storeHead(t *testing.T, s eventstore.Store) int64 {
	t.Helper()
	p, err := s.HeadPosition(context.Background())
	require.NoError(t, err)
	return p
}

func TestSeedDemoTwiceWritesNothingTheSecondTime(t *testing.T) {
	for name, open := range map[string]func(*testing.T) demoEnv{"memory": memoryDemoEnv, "sqlite": sqliteDemoEnv} {
		t.Run(name, func(t *testing.T) {
			env := open(t)
			ctx := context.Background()

			var first bytes.Buffer
			require.NoError(t, seedDemo(ctx, env.deps, env.accounts, &first))
			seeded := storeHead(t, env.deps.Store)
			require.Positive(t, seeded)
			assert.Contains(t, first.String(), "demo data seeded")
			for _, user := range []string{"demo-admin", "demo-auditor", "demo-provider", "demo-provider2", "demo-client1", "demo-client2", "demo-client3"} {
				assert.Contains(t, first.String(), user)
			}
			assert.Contains(t, first.String(), demoPassword)

			var second bytes.Buffer
			require.NoError(t, seedDemo(ctx, env.deps, env.accounts, &second))
			assert.Equal(t, seeded, storeHead(t, env.deps.Store), "a second seeding writes nothing")
			assert.Contains(t, second.String(), "already present")

			// The ids are the same on every run: they derive from the
			// fixed command ids.
			a, err := plantDemo(ctx, env.deps, env.accounts)
			require.NoError(t, err)
			b, err := plantDemo(ctx, env.deps, env.accounts)
			require.NoError(t, err)
			assert.False(t, a.Written)
			assert.Equal(t, a, b)
			assert.Equal(t, seeded, storeHead(t, env.deps.Store))
		})
	}
}

func TestSeedDemoSecondRunDaysLaterWritesNothing(t *testing.T) {
	env := memoryDemoEnv(t)
	ctx := context.Background()
	first, err := plantDemo(ctx, env.deps, env.accounts)
	require.NoError(t, err)
	require.True(t, first.Written)
	seeded := storeHead(t, env.deps.Store)

	later := env.deps
	later.Clock = func() time.Time { return demoNow.Add(5 * 24 * time.Hour) }
	again, err := plantDemo(ctx, later, commands.NewAccounts(later, mustTestHasher(t)))
	require.NoError(t, err)
	assert.False(t, again.Written)
	assert.Equal(t, first.Clients, again.Clients)
	assert.Equal(t, seeded, storeHead(t, env.deps.Store))
}

func mustTestHasher(t *testing.T) *identity.Hasher {
	t.Helper()
	h, err := identity.NewHasher(identity.TestArgon2Params())
	require.NoError(t, err)
	return h
}

// storedEvents decodes every event in the store.
func storedEvents(t *testing.T, d commands.Deps) []storedEvent {
	t.Helper()
	recs, err := d.Store.ReadAll(context.Background(), 0, 100_000)
	require.NoError(t, err)
	out := make([]storedEvent, 0, len(recs))
	for _, r := range recs {
		v, err := d.Codec.Decode(r.Type, r.SchemaVersion, r.Data)
		require.NoError(t, err)
		out = append(out, storedEvent{rec: r, event: v.(domain.Event)})
	}
	return out
}

type storedEvent struct {
	rec   eventstore.RecordedEvent
	event domain.Event
}

func TestSeedDemoMakesTheCareTheDemoPromises(t *testing.T) {
	env := memoryDemoEnv(t)
	ctx := context.Background()
	data, err := plantDemo(ctx, env.deps, env.accounts)
	require.NoError(t, err)

	require.Len(t, data.Providers, 2)
	require.Len(t, data.Clients, 3)
	require.Len(t, data.Logins, 7)

	// Every account signs in with the demo password and acts as who the
	// printout says.
	for _, l := range data.Logins {
		acc, err := env.accounts.Authenticate(ctx, l.Username, demoPassword)
		require.NoError(t, err, l.Username)
		assert.Equal(t, l.Role, acc.Role(), l.Username)
		assert.Equal(t, l.ActorID, acc.ActorID(), l.Username)
	}

	// Dr Lind is on every care team, so she (and the load harness) can
	// schedule for every client.
	org := commands.NewOrganization(env.deps)
	for _, c := range data.Clients {
		facts, err := org.ClientFacts(ctx, c.ID)
		require.NoError(t, err)
		assert.True(t, facts.OnTeam(data.Providers[0]), c.Name)
		assert.Equal(t, data.ClinicID, facts.ClinicID)
	}
	roles, err := org.ClinicRoles(ctx, data.ClinicID, data.AdminUserID)
	require.NoError(t, err)
	assert.Contains(t, roles, domain.RoleClinicAdmin)
	roles, err = org.ClinicRoles(ctx, data.ClinicID, data.AuditorID)
	require.NoError(t, err)
	assert.Contains(t, roles, domain.RoleAuditor)

	// Four weekly sessions per client; the first is active now.
	for _, c := range data.Clients {
		require.Len(t, c.Sessions, 4, c.Name)
		for i, id := range c.Sessions {
			s, err := commands.Load(ctx, env.deps, eventstore.NewStreamID(care.StreamType, id), care.New)
			require.NoError(t, err)
			v := s.View()
			assert.Equal(t, c.ID, v.ClientID)
			if i == 0 {
				assert.Equal(t, care.StateActive, v.State, c.Name)
				assert.True(t, !v.Start.After(demoNow) && v.End.After(demoNow), "the first session is under way")
			} else {
				assert.Equal(t, care.StateScheduled, v.State, c.Name)
			}
			var bookIDs []string
			for _, a := range v.Assignments {
				bookIDs = append(bookIDs, a.BookID)
			}
			if c.Name == "Sam Rivera" {
				assert.Equal(t, []string{books.PHQ9ID, books.GAD7ID}, bookIDs)
			} else {
				assert.Equal(t, []string{books.PHQ9ID}, bookIDs)
			}
		}
	}

	// The urgent risk, the feedback thread and the messages are stored
	// events, written by the actors they claim.
	var urgent []care.AssignmentCompleted
	var feedback, comments, messages int
	for _, e := range storedEvents(t, env.deps) {
		switch ev := e.event.(type) {
		case care.AssignmentCompleted:
			if ev.Urgent {
				urgent = append(urgent, ev)
				assert.Equal(t, data.UrgentSessionID, e.rec.Stream.ID)
				assert.Equal(t, data.Clients[0].ID, e.rec.Metadata.ActorID)
			}
		case care.AssignmentFeedbackGiven:
			feedback++
			assert.Equal(t, data.Providers[0], ev.By)
		case care.AssignmentCommentPosted:
			comments++
		case care.SessionMessagePosted:
			messages++
		}
		assert.Contains(t, e.rec.Metadata.CommandID, demoCommandPrefix, "every event comes from a demo command")
	}
	require.Len(t, urgent, 1)
	assert.Equal(t, books.PHQ9ID, urgent[0].BookID)
	assert.Equal(t, data.Providers[0], urgent[0].ProviderID, "Dr Lind holds Sam's sessions: the flag reaches her inbox")
	assert.Equal(t, 1, feedback)
	assert.Equal(t, 2, comments)
	assert.Equal(t, 3, messages)
}

func runDemoCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newDemoCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestDemoCommandSeedsTheConfiguredStoreOnce(t *testing.T) {
	t.Chdir(t.TempDir())
	dir := t.TempDir()
	store := "sqlite://" + filepath.Join(dir, "events.db")

	out, err := runDemoCmd(t, "--store", store, "--log-level", "error")
	require.NoError(t, err)
	assert.Contains(t, out, "demo data seeded")
	assert.Contains(t, out, "demo-provider")
	assert.Contains(t, out, "/v1/providers/")

	out, err = runDemoCmd(t, "--store", store, "--log-level", "error")
	require.NoError(t, err)
	assert.Contains(t, out, "already present")
}

func TestDemoCommandRefusesWhileServeHoldsTheStore(t *testing.T) {
	t.Chdir(t.TempDir())
	dir := t.TempDir()
	release, err := projections.Lock(filepath.Join(dir, "events-views.db"))
	require.NoError(t, err)
	defer func() { _ = release() }()

	_, err = runDemoCmd(t, "--store", "sqlite://"+filepath.Join(dir, "events.db"), "--log-level", "error")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "careflow serve is running")
}
