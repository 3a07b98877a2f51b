package views_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/projections/views"
)

func TestInboxShowsEmergencyAccessToTheCareTeam(t *testing.T) {
	w := newWorld(t)
	g, err := w.org.GrantEmergencyAccess(w.ctx, w.meta(w.sys), commands.GrantEmergencyAccess{ClientID: w.k1.ID, Reason: "crisis line call"})
	require.NoError(t, err)
	w.caughtUp()
	now := w.clock()

	for _, p := range []string{w.p1.ID, w.p2.ID} {
		in, err := views.Inbox(w.ctx, w.db, p, now)
		require.NoError(t, err)
		var found []views.InboxItem
		for _, it := range in.Items {
			if it.Kind == views.KindEmergencyAccess {
				found = append(found, it)
			}
		}
		require.Len(t, found, 1, "care team member %s sees the grant", p)
		assert.Equal(t, g.GrantID, found[0].GrantID)
		assert.Equal(t, w.sys.ID, found[0].GrantedTo)
		assert.Equal(t, w.k1.ID, found[0].ClientID)
		assert.Equal(t, "Kim", found[0].ClientName)
		assert.Equal(t, now.UTC(), found[0].At)
		assert.Equal(t, 1, in.Counts.EmergencyAccess)
	}
	in, err := views.Inbox(w.ctx, w.db, w.p3.ID, now)
	require.NoError(t, err)
	assert.Zero(t, in.Counts.EmergencyAccess, "not on k1's care team")

	// A week later the notice has gone.
	in, err = views.Inbox(w.ctx, w.db, w.p1.ID, now.Add(views.EmergencyAccessNotice+time.Second))
	require.NoError(t, err)
	assert.Zero(t, in.Counts.EmergencyAccess)
	for _, it := range in.Items {
		assert.NotEqual(t, views.KindEmergencyAccess, it.Kind)
	}
}
