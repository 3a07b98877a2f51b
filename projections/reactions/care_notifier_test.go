package reactions

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/projections/notify"
)

func TestCompletionNotifiesEveryProviderOnTheCareTeam(t *testing.T) {
	w := newWorld(t)
	session := w.schedule()
	assignment := w.assignmentOf(session)
	w.clock.Set(careStart)
	w.feed()
	w.tick()
	w.completePHQ9(session, assignment, 0)
	w.feed()

	for _, p := range []string{w.p1.ID, w.p2.ID} {
		got := w.notificationsOf(p)
		require.Len(t, got, 1, p)
		n := got[0]
		assert.Equal(t, notify.KindAssignmentCompleted, n.Kind)
		assert.False(t, n.Urgent, "no flag, no urgency")
		assert.Empty(t, n.Flags)
		assert.Equal(t, w.k1.ID, n.ClientID)
		assert.Equal(t, session, n.SessionID)
		assert.Equal(t, assignment, n.AssignmentID)
		assert.Equal(t, "phq-9", n.BookID)
		assert.Equal(t, w.clinic, n.ClinicID)
	}
	assert.Empty(t, w.notificationsOf(w.p3.ID), "p3 is not on the care team")
}

func TestItem9RiskFlagNotifiesTheTeamUrgentlyAndAtOnce(t *testing.T) {
	w := newWorld(t)
	session := w.schedule()
	assignment := w.assignmentOf(session)
	w.clock.Set(careStart)
	w.feed()
	w.tick()
	w.completePHQ9(session, assignment, 2)
	w.feed()

	for _, p := range []string{w.p1.ID, w.p2.ID} {
		got := w.notificationsOf(p)
		require.Len(t, got, 1)
		assert.True(t, got[0].Urgent)
		assert.Equal(t, []string{"risk"}, got[0].Flags)
		summary := got[0].Summary()
		assert.Contains(t, summary, "urgent risk flag")
		for _, phi := range []string{"PHI-SECRET", secretTitle} {
			assert.NotContains(t, summary, phi)
		}
	}

	// Delivery: urgent ones go first, each once.
	n, err := w.r.Pump().DeliverPending(w.ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	delivered := w.deliverer.all()
	require.Len(t, delivered, 2)
	for _, d := range delivered {
		assert.True(t, d.Urgent)
	}
}

func TestARedeliveredCompletionNotifiesOnce(t *testing.T) {
	w := newWorld(t)
	session := w.schedule()
	assignment := w.assignmentOf(session)
	w.clock.Set(careStart)
	w.feed()
	w.tick()
	w.completePHQ9(session, assignment, 1)
	before := w.fed
	w.feed()
	w.fed = before // the broker hands the same events over again
	w.feed()

	assert.Len(t, w.notificationsOf(w.p1.ID), 1)
	assert.Len(t, w.notificationsOf(w.p2.ID), 1)
	completed := w.eventsOf(session, (care.AssignmentCompleted{}).EventType())
	require.Len(t, completed, 1)
	seen, err := w.r.Inbox().Seen(w.ctx, ConsumerCareNotifier, completed[0].ID.String())
	require.NoError(t, err)
	assert.True(t, seen, "the inbox recorded the completion")
}

func TestNotificationsCarryNoPHI(t *testing.T) {
	w := newWorld(t)
	session := w.schedule(1)
	assignment := w.assignmentOf(session)
	w.clock.Set(careStart)
	w.feed()
	w.tick()
	w.clock.Set(careEnd.Add(-day))
	w.tick()
	w.completePHQ9(session, assignment, 3)
	w.feed()

	rows, err := w.db.QueryContext(w.ctx, `SELECT * FROM notifications`)
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	count := 0
	for rows.Next() {
		values := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		for i, v := range values {
			if s, ok := v.(string); ok {
				assert.False(t, strings.Contains(s, "PHI-SECRET"), "column %s holds PHI: %q", cols[i], s)
			}
		}
		count++
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, 3, count, "a reminder for the client and a completion for each of two providers")
}
