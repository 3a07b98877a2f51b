package notify

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
)

var t0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openStore(t *testing.T, ctx context.Context) *Store {
	t.Helper()
	db, err := openTestDB(ctx, testDBLocation(t, "notify.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	s, err := NewStore(ctx, db)
	require.NoError(t, err)
	return s
}

func completion(recipient, cause string, at time.Time, urgent bool) Notification {
	n := Notification{
		ID: DeriveID(KindAssignmentCompleted, recipient, cause), RecipientID: recipient, Kind: KindAssignmentCompleted,
		Urgent: urgent, ClinicID: "clinic-1", ClientID: "client-1", SessionID: "session-1", AssignmentID: "assignment-1",
		BookID: "phq-9", EventID: cause, CreatedAt: at,
	}
	if urgent {
		n.Flags = []string{"risk"}
	}
	return n
}

func TestAddIsIdempotentByID(t *testing.T) {
	ctx := testContext(t)
	s := openStore(t, ctx)
	n := completion("p1", "event-1", t0, true)

	added, err := s.Add(ctx, s.DB(), n)
	require.NoError(t, err)
	assert.True(t, added)
	added, err = s.Add(ctx, s.DB(), n)
	require.NoError(t, err)
	assert.False(t, added, "the same cause adds nothing the second time")

	page, err := s.List(ctx, "p1", ListOptions{})
	require.NoError(t, err)
	require.Len(t, page.Notifications, 1)
	got := page.Notifications[0]
	assert.Equal(t, n.ID, got.ID)
	assert.Equal(t, KindAssignmentCompleted, got.Kind)
	assert.True(t, got.Urgent)
	assert.Equal(t, []string{"risk"}, got.Flags)
	assert.Equal(t, "phq-9", got.BookID)
	assert.Equal(t, t0, got.CreatedAt)
	assert.False(t, got.Read())
}

func TestAddRejectsIncompleteNotifications(t *testing.T) {
	ctx := testContext(t)
	s := openStore(t, ctx)
	for name, n := range map[string]Notification{
		"no id":        {RecipientID: "p1", Kind: KindAssignmentCompleted, CreatedAt: t0},
		"no recipient": {ID: "n1", Kind: KindAssignmentCompleted, CreatedAt: t0},
		"unknown kind": {ID: "n1", RecipientID: "p1", Kind: "gossip", CreatedAt: t0},
		"no time":      {ID: "n1", RecipientID: "p1", Kind: KindAssignmentCompleted},
		"comma flag":   {ID: "n1", RecipientID: "p1", Kind: KindAssignmentCompleted, CreatedAt: t0, Flags: []string{"a,b"}},
	} {
		_, err := s.Add(ctx, s.DB(), n)
		assert.Error(t, err, name)
	}
}

func TestListPagesNewestFirstAndFiltersUnread(t *testing.T) {
	ctx := testContext(t)
	s := openStore(t, ctx)
	var ids []string
	for i := range 5 {
		n := completion("p1", "event-"+string(rune('a'+i)), t0.Add(time.Duration(i)*time.Minute), false)
		ids = append(ids, n.ID)
		_, err := s.Add(ctx, s.DB(), n)
		require.NoError(t, err)
	}
	_, err := s.Add(ctx, s.DB(), completion("p2", "event-a", t0, false))
	require.NoError(t, err)

	first, err := s.List(ctx, "p1", ListOptions{Limit: 2})
	require.NoError(t, err)
	require.Len(t, first.Notifications, 2)
	assert.Equal(t, []string{ids[4], ids[3]}, []string{first.Notifications[0].ID, first.Notifications[1].ID})
	require.NotEmpty(t, first.Next)
	second, err := s.List(ctx, "p1", ListOptions{Limit: 2, After: first.Next})
	require.NoError(t, err)
	assert.Equal(t, []string{ids[2], ids[1]}, []string{second.Notifications[0].ID, second.Notifications[1].ID})
	third, err := s.List(ctx, "p1", ListOptions{Limit: 2, After: second.Next})
	require.NoError(t, err)
	require.Len(t, third.Notifications, 1)
	assert.Equal(t, ids[0], third.Notifications[0].ID)
	assert.Empty(t, third.Next)

	_, err = s.MarkRead(ctx, "p1", ids[4], t0.Add(time.Hour))
	require.NoError(t, err)
	unread, err := s.List(ctx, "p1", ListOptions{UnreadOnly: true})
	require.NoError(t, err)
	assert.Len(t, unread.Notifications, 4)
	count, err := s.Unread(ctx, "p1")
	require.NoError(t, err)
	assert.Equal(t, 4, count)

	_, err = s.List(ctx, "p1", ListOptions{After: "garbage"})
	assert.Equal(t, domain.KindValidation, domain.KindOf(err))
	_, err = s.List(ctx, "p1", ListOptions{Limit: MaxListLimit + 1})
	assert.Equal(t, domain.KindValidation, domain.KindOf(err))
}

func TestMarkReadKeepsTheFirstTimeAndHidesOtherRecipients(t *testing.T) {
	ctx := testContext(t)
	s := openStore(t, ctx)
	n := completion("p1", "event-1", t0, false)
	_, err := s.Add(ctx, s.DB(), n)
	require.NoError(t, err)

	read, err := s.MarkRead(ctx, "p1", n.ID, t0.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, t0.Add(time.Hour), read.ReadAt)
	again, err := s.MarkRead(ctx, "p1", n.ID, t0.Add(2*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, t0.Add(time.Hour), again.ReadAt)

	_, err = s.MarkRead(ctx, "p2", n.ID, t0)
	assert.ErrorIs(t, err, &domain.Error{Slug: "notification-not-found"})
	_, err = s.Get(ctx, "p2", n.ID)
	assert.ErrorIs(t, err, &domain.Error{Slug: "notification-not-found"})
}

func TestMarkAllReadMarksOnlyTheRecipientsUpToATime(t *testing.T) {
	ctx := testContext(t)
	s := openStore(t, ctx)
	for i, n := range []Notification{
		completion("p1", "e1", t0, false),
		completion("p1", "e2", t0.Add(time.Minute), false),
		completion("p1", "e3", t0.Add(2*time.Minute), false),
		completion("p2", "e1", t0, false),
	} {
		_, err := s.Add(ctx, s.DB(), n)
		require.NoError(t, err, i)
	}
	marked, err := s.MarkAllRead(ctx, "p1", t0.Add(time.Minute), t0.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, int64(2), marked)
	unread, err := s.Unread(ctx, "p1")
	require.NoError(t, err)
	assert.Equal(t, 1, unread, "the one created after the given time stays unread")
	unread, err = s.Unread(ctx, "p2")
	require.NoError(t, err)
	assert.Equal(t, 1, unread, "another recipient's are untouched")
}

func TestSummaryNamesIdsAndKindsOnly(t *testing.T) {
	n := completion("p1", "event-1", t0, true)
	assert.Equal(t, "client client-1 completed phq-9 (assignment assignment-1, session session-1) — urgent risk flag", n.Summary())
	r := Notification{Kind: KindAssignmentReminder, BookID: "gad-7", AssignmentID: "a1", SessionID: "s1", Due: t0}
	assert.Equal(t, "gad-7 is due 2026-11-22T09:00:00Z (assignment a1, session s1)", r.Summary())
	w := Notification{Kind: KindWebhookDisabled, WebhookID: "w1", ClinicID: "c1"}
	assert.Contains(t, w.Summary(), "webhook endpoint w1 of clinic c1 was disabled")
}

// recordingDeliverer remembers what it delivered and fails while failing
// is set.
type recordingDeliverer struct {
	mu        sync.Mutex
	failing   bool
	delivered []Notification
}

func (d *recordingDeliverer) Deliver(_ context.Context, n Notification) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failing {
		return errors.New("mail server down")
	}
	d.delivered = append(d.delivered, n)
	return nil
}

func TestPumpDeliversUrgentFirstAndRetriesFailures(t *testing.T) {
	ctx := testContext(t)
	s := openStore(t, ctx)
	plain := completion("p1", "event-1", t0, false)
	urgent := completion("p1", "event-2", t0.Add(time.Minute), true)
	for _, n := range []Notification{plain, urgent} {
		_, err := s.Add(ctx, s.DB(), n)
		require.NoError(t, err)
	}
	d := &recordingDeliverer{failing: true}
	pump, err := NewPump(s, d, func() time.Time { return t0.Add(time.Hour) }, nil)
	require.NoError(t, err)

	n, err := pump.DeliverPending(ctx)
	require.Error(t, err)
	assert.Zero(t, n)
	pending, err := s.Undelivered(ctx, 10)
	require.NoError(t, err)
	assert.Len(t, pending, 2, "a failed delivery stays pending")

	d.failing = false
	n, err = pump.DeliverPending(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	require.Len(t, d.delivered, 2)
	assert.Equal(t, urgent.ID, d.delivered[0].ID, "urgent first")
	assert.Equal(t, plain.ID, d.delivered[1].ID)

	n, err = pump.DeliverPending(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing is delivered twice")
	got, err := s.Get(ctx, "p1", urgent.ID)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(time.Hour), got.DeliveredAt)
}
