package api

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/bus"
	"github.com/careflow/careflow/projections/notify"
	"github.com/careflow/careflow/projections/reactions"
)

// reactionsWorld is the care world (see careWorld) served with the real
// reactions over a temporary SQLite database. The bus is not run: feed
// hands the committed events to the care notifier and the webhook
// consumer through their inbox handlers, as the bus would.
type reactionsWorld struct {
	*careWorld
	reg      *codec.Registry
	db       *sql.DB
	rx       *reactions.Reactions
	notifier *reactions.CareNotifier
	fed      int64
}

func newReactionsWorld(t *testing.T) *reactionsWorld {
	t.Helper()
	w := &reactionsWorld{careWorld: newCareWorld(t)}
	ctx := w.ctx
	var err error
	w.reg, err = commands.NewRegistry()
	require.NoError(t, err)
	w.db, err = reactions.OpenDB(ctx, filepath.Join(t.TempDir(), "reactions.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.db.Close() })
	w.rx, err = reactions.New(ctx, reactions.Config{
		DB: w.db, Store: w.store, Codec: w.reg, Care: w.care, Clients: w.org, Staff: w.org,
		Deliverer: notify.LogDeliverer{Logger: slog.New(slog.DiscardHandler)}, Clock: w.clock.Now,
		Jitter:                      func(time.Duration) time.Duration { return 0 },
		WebhookAllowInternalTargets: true, // the receivers run on 127.0.0.1
	})
	require.NoError(t, err)
	w.notifier, err = reactions.NewCareNotifier(w.reg, w.org, w.rx.Notifications(), nil, nil)
	require.NoError(t, err)

	// The same server as the care world's, with the reactions wired in.
	deps := commands.Deps{Store: w.store, Codec: w.reg, Clock: w.clock.Now, NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }}
	hasher, err := identity.NewHasher(identity.TestArgon2Params())
	require.NoError(t, err)
	w.server, err = NewServer(Config{
		Store: w.store, Accounts: commands.NewAccounts(deps, hasher), Refresh: NewMemoryRefreshTokens(w.clock.Now),
		Tokens: testTokenConfig(w.clock.Now), Clock: w.clock.Now,
		Care: CareConfig{
			Commands: w.care, Directory: w.org, Views: w.careWorld.db, Freshness: w.runner,
			TimeTravel: audit.NewTimeTravel(w.store, w.reg), AccessLog: w.access, MaxWait: careWaitBound,
		},
		Reactions: ReactionsConfig{Notifications: w.rx.Notifications(), Webhooks: w.rx.Webhooks()},
	})
	require.NoError(t, err)
	return w
}

// feed hands every event committed since the last feed to the care
// notifier and the webhook consumer.
func (w *reactionsWorld) feed() {
	w.t.Helper()
	events, err := w.store.ReadAll(w.ctx, w.fed, 10_000)
	require.NoError(w.t, err)
	notifier := w.notifier.Handler(w.rx.Inbox())
	hooks := w.rx.Webhooks().Handler(w.rx.Inbox())
	for _, e := range events {
		for _, h := range []message.NoPublishHandlerFunc{notifier, hooks} {
			_, msg, err := bus.ToMessage(e)
			require.NoError(w.t, err)
			msg.SetContext(w.ctx)
			require.NoError(w.t, h(msg))
		}
		w.fed = e.Position
	}
}

// completeK1Assignment has p1 schedule a PHQ-9 session for k1 and k1
// answer it (item 9 above zero: urgent), through the API; it returns the
// session and assignment ids.
func (w *reactionsWorld) completeK1Assignment() (string, string) {
	w.t.Helper()
	sched, _ := w.scheduleForK1(1)
	s1 := sched.Sessions[0].ID
	assignments := w.assignmentsOf(s1)
	require.Len(w.t, assignments, 1)
	w.clock.Advance(25 * time.Hour)
	w.activate(s1)
	w.ok(http.StatusOK, nil, w.k1, "POST", "/v1/assignments/"+assignments[0]+"/start", nil)
	w.ok(http.StatusOK, nil, w.k1, "POST", "/v1/assignments/"+assignments[0]+"/responses", map[string]any{"answers": phq9(1, 2)})
	return s1, assignments[0]
}

func (w *reactionsWorld) notifications(a domain.Actor, query string) notificationPage {
	w.t.Helper()
	var page notificationPage
	w.ok(http.StatusOK, &page, a, "GET", "/v1/me/notifications"+query, nil)
	return page
}

func TestNotificationsOfACompletedAssignment(t *testing.T) {
	w := newReactionsWorld(t)
	s1, a1 := w.completeK1Assignment()
	w.feed()

	// Both providers on k1's team are notified, urgently, by ids only.
	for _, p := range []domain.Actor{w.p1, w.p2} {
		rec := w.ok(http.StatusOK, nil, p, "GET", "/v1/me/notifications", nil)
		assert.NotContains(t, rec.Body.String(), "Kim Secretname", "no PHI in a notification")
		assert.NotContains(t, rec.Body.String(), "Mood check", "no PHI in a notification")
		var page notificationPage
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
		require.Len(t, page.Items, 1, p.ID)
		n := page.Items[0]
		assert.Equal(t, string(notify.KindAssignmentCompleted), n.Kind)
		assert.True(t, n.Urgent)
		assert.Equal(t, []string{"risk"}, n.Flags)
		assert.Equal(t, w.k1.ID, n.ClientID)
		assert.Equal(t, s1, n.SessionID)
		assert.Equal(t, a1, n.AssignmentID)
		assert.Equal(t, w.clinic1, n.ClinicID)
		assert.False(t, n.Read)
		assert.Nil(t, n.ReadAt)
		assert.Contains(t, n.Summary, "urgent")
		assert.Equal(t, 1, page.Unread)
		assert.Empty(t, page.NextCursor)
	}
	// Nobody else: not the provider off the team, not the client, not an
	// admin.
	for _, a := range []domain.Actor{w.p3, w.k1, w.admin1, w.p4} {
		page := w.notifications(a, "")
		assert.Empty(t, page.Items, a.ID)
		assert.Zero(t, page.Unread, a.ID)
	}

	// p1 reads theirs; p2's stays unread.
	p1Note := w.notifications(w.p1, "").Items[0]
	p2Note := w.notifications(w.p2, "").Items[0]
	require.NotEqual(t, p1Note.ID, p2Note.ID)
	readAt := w.clock.Now()
	var marked notificationView
	w.ok(http.StatusOK, &marked, w.p1, "POST", "/v1/me/notifications/"+p1Note.ID+"/read", nil)
	assert.True(t, marked.Read)
	require.NotNil(t, marked.ReadAt)
	assert.True(t, readAt.Equal(*marked.ReadAt))
	assert.Empty(t, w.notifications(w.p1, "?unread=true").Items)
	assert.Len(t, w.notifications(w.p1, "?unread=false").Items, 1)
	assert.Zero(t, w.notifications(w.p1, "").Unread)
	assert.Len(t, w.notifications(w.p2, "?unread=true").Items, 1)

	// Marking it again keeps the first time.
	w.clock.Advance(time.Hour)
	w.ok(http.StatusOK, &marked, w.p1, "POST", "/v1/me/notifications/"+p1Note.ID+"/read", nil)
	assert.True(t, readAt.Equal(*marked.ReadAt))

	// Another user's notification does not exist for the caller: the
	// client cannot read or even probe the provider's.
	for _, a := range []domain.Actor{w.p2, w.k1, w.p3, w.admin1} {
		p := requireProblem(t, w.do(a, "POST", "/v1/me/notifications/"+p1Note.ID+"/read", nil), http.StatusNotFound, SlugNotFound)
		assert.Equal(t, "notification-not-found", p.Code)
	}
	requireProblem(t, w.do(w.p1, "POST", "/v1/me/notifications/no-such-id/read", nil), http.StatusNotFound, SlugNotFound)
	assert.Len(t, w.notifications(w.p2, "?unread=true").Items, 1, "p2's notification is untouched by the others")

	// Without a token: 401.
	requireProblem(t, w.do(anonymous, "GET", "/v1/me/notifications", nil), http.StatusUnauthorized, SlugUnauthorized)
	requireProblem(t, w.do(anonymous, "POST", "/v1/me/notifications/read", nil), http.StatusUnauthorized, SlugUnauthorized)
}

// addNotes adds n reminders for recipient through the store, one a minute
// apart, and returns their ids oldest first.
func (w *reactionsWorld) addNotes(recipient string, n int) []string {
	w.t.Helper()
	base := w.clock.Now()
	var ids []string
	for i := range n {
		id := notify.DeriveID(notify.KindAssignmentReminder, recipient, fmt.Sprintf("timer-%d", i))
		added, err := w.rx.Notifications().Add(w.ctx, w.db, notify.Notification{
			ID: id, RecipientID: recipient, Kind: notify.KindAssignmentReminder, ClinicID: w.clinic1,
			ClientID: recipient, SessionID: "s-1", AssignmentID: fmt.Sprintf("a-%d", i), BookID: "phq-9",
			ReminderDays: 1, Due: base.Add(48 * time.Hour), CreatedAt: base.Add(time.Duration(i) * time.Minute),
		})
		require.NoError(w.t, err)
		require.True(w.t, added)
		ids = append(ids, id)
	}
	return ids
}

func TestNotificationsPageAndMarkAllRead(t *testing.T) {
	w := newReactionsWorld(t)
	ids := w.addNotes(w.k1.ID, 5)
	w.addNotes(w.k2.ID, 1)

	// Pages of two, newest first, with no repeats and no gaps.
	var seen []string
	var last notificationView
	query := "?limit=2"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5, "paging must end")
		page := w.notifications(w.k1, query)
		assert.Equal(t, 5, page.Unread)
		assert.LessOrEqual(t, len(page.Items), 2)
		for _, n := range page.Items {
			seen = append(seen, n.ID)
			last = n
			assert.Equal(t, string(notify.KindAssignmentReminder), n.Kind)
			require.NotNil(t, n.Due)
			assert.Equal(t, 1, n.ReminderDays)
		}
		if page.NextCursor == "" {
			break
		}
		query = "?limit=2&cursor=" + url.QueryEscape(page.NextCursor)
	}
	assert.Equal(t, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, seen)
	assert.Equal(t, ids[0], last.ID)

	// Mark all read through the third: the two newer ones stay unread.
	third := w.notifications(w.k1, "").Items[2]
	require.Equal(t, ids[2], third.ID)
	var ans markedAnswer
	w.ok(http.StatusOK, &ans, w.k1, "POST", "/v1/me/notifications/read?through="+url.QueryEscape(third.CreatedAt.Format(time.RFC3339Nano)), nil)
	assert.Equal(t, markedAnswer{Marked: 3, Unread: 2}, ans)
	unread := w.notifications(w.k1, "?unread=true")
	require.Len(t, unread.Items, 2)
	assert.Equal(t, []string{ids[4], ids[3]}, []string{unread.Items[0].ID, unread.Items[1].ID})

	// Without through: everything up to now, and only the caller's own.
	w.clock.Advance(10 * time.Minute)
	w.ok(http.StatusOK, &ans, w.k1, "POST", "/v1/me/notifications/read", nil)
	assert.Equal(t, markedAnswer{Marked: 2, Unread: 0}, ans)
	assert.Equal(t, 1, w.notifications(w.k2, "").Unread, "another user's notifications stay unread")

	// Malformed requests.
	requireProblem(t, w.do(w.k1, "GET", "/v1/me/notifications?unread=maybe", nil), http.StatusBadRequest, SlugInvalidRequest)
	requireProblem(t, w.do(w.k1, "GET", "/v1/me/notifications?limit=0", nil), http.StatusBadRequest, SlugInvalidRequest)
	requireProblem(t, w.do(w.k1, "GET", "/v1/me/notifications?cursor=not-ours", nil), http.StatusBadRequest, SlugInvalidRequest)
	requireProblem(t, w.do(w.k1, "POST", "/v1/me/notifications/read?through=yesterday", nil), http.StatusBadRequest, SlugInvalidRequest)
	// A cursor of this server's format that the listing did not make.
	p := requireProblem(t, w.do(w.k1, "GET", "/v1/me/notifications?cursor="+EncodeCursor("garbage"), nil), StatusValidation, SlugValidation)
	assert.Equal(t, "cursor-invalid", p.Code)
	require.Len(t, p.Errors, 1)
	assert.Equal(t, "cursor", p.Errors[0].Field)
}

func TestReactionRoutesWithoutReactionsAnswer503(t *testing.T) {
	f := newFixture(t)
	tok := newTestTokens(t, f.clock)
	for _, req := range []struct{ method, path string }{
		{"GET", "/v1/me/notifications"},
		{"POST", "/v1/me/notifications/n-1/read"},
		{"POST", "/v1/me/notifications/read"},
		{"GET", "/v1/clinics/c1/webhooks"},
		{"DELETE", "/v1/clinics/c1/webhooks/w-1"},
	} {
		rec := f.do(req.method, req.path, nil, "Authorization", tokenFor(t, tok, domain.RoleClinicAdmin, "c1"))
		p := requireProblem(t, rec, http.StatusServiceUnavailable, SlugUnavailable)
		assert.Equal(t, "reactions-not-configured", p.Code, req.path)
	}
}

func TestReactionsConfigNeedsBothParts(t *testing.T) {
	w := newReactionsWorld(t)
	for _, rc := range []ReactionsConfig{
		{Notifications: w.rx.Notifications()},
		{Webhooks: w.rx.Webhooks()},
	} {
		_, err := NewServer(Config{
			Store: w.store, Accounts: stubAccounts{}, Refresh: NewMemoryRefreshTokens(w.clock.Now),
			Tokens: testTokenConfig(w.clock.Now), Reactions: rc,
		})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "api: Reactions.")
	}
}

// stubAccounts satisfies AccountService for configuration tests that never
// sign in.
type stubAccounts struct{ AccountService }
