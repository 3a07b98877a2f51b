package commands_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

func TestGrantEmergencyAccess(t *testing.T) {
	for _, a := range []domain.Actor{orgCA1, orgIA1, orgSys} {
		t.Run(string(a.Role), func(t *testing.T) {
			w := newOrgWorld(t)
			v := w.version(commands.StreamClient, "k1")
			m := orgMeta(a)
			m.CommandID = "break-glass-1"
			got, err := w.org.GrantEmergencyAccess(w.ctx, m, commands.GrantEmergencyAccess{ClientID: "k1", Reason: "crisis", Duration: 15 * time.Minute})
			require.NoError(t, err)
			assert.NotEmpty(t, got.GrantID)
			assert.Equal(t, orgFixedClock.Add(15*time.Minute), got.ExpiresAt)
			assert.Equal(t, []domain.Event{organization.ClientEmergencyAccessGranted{
				ClientID: "k1", ClinicID: "c1", GrantID: got.GrantID, GrantedTo: a.ID, GrantedToRole: a.Role,
				Reason: "crisis", GrantedAt: orgFixedClock, ExpiresAt: orgFixedClock.Add(15 * time.Minute),
			}}, w.eventsSince(commands.StreamClient, "k1", v))

			facts, err := w.org.ClientFacts(w.ctx, "k1")
			require.NoError(t, err)
			g, ok := facts.ActiveGrant(a.ID, orgFixedClock.Add(time.Minute))
			require.True(t, ok)
			assert.Equal(t, got.GrantID, g.ID)
			_, ok = facts.ActiveGrant(a.ID, orgFixedClock.Add(15*time.Minute))
			assert.False(t, ok, "expired")
			_, ok = facts.ActiveGrant("someone-else", orgFixedClock)
			assert.False(t, ok)

			// A retry names the same grant and writes nothing more.
			again, err := w.org.GrantEmergencyAccess(w.ctx, m, commands.GrantEmergencyAccess{ClientID: "k1", Reason: "crisis", Duration: 15 * time.Minute})
			require.NoError(t, err)
			assert.True(t, again.Duplicate)
			assert.Equal(t, got.GrantID, again.GrantID)
			assert.Len(t, w.eventsSince(commands.StreamClient, "k1", v), 1)
		})
	}
}

func TestGrantEmergencyAccessDefaultsToAnHour(t *testing.T) {
	w := newOrgWorld(t)
	got, err := w.org.GrantEmergencyAccess(w.ctx, orgMeta(orgCA1), commands.GrantEmergencyAccess{ClientID: "k1", Reason: "crisis"})
	require.NoError(t, err)
	assert.Equal(t, orgFixedClock.Add(time.Hour), got.ExpiresAt)
}

func TestGrantEmergencyAccessRefusals(t *testing.T) {
	w := newOrgWorld(t)
	before := w.head()
	grant := func(a domain.Actor, cmd commands.GrantEmergencyAccess) error {
		_, err := w.org.GrantEmergencyAccess(w.ctx, orgMeta(a), cmd)
		return err
	}
	ok := commands.GrantEmergencyAccess{ClientID: "k1", Reason: "crisis"}
	for _, a := range []domain.Actor{orgP1, orgClient, orgAuditor1} {
		w.requireRefused(grant(a, ok), before, domain.KindForbidden, "forbidden")
	}
	w.requireRefused(grant(orgCA2, ok), before, domain.KindNotFound, "client-not-found")
	w.requireRefused(grant(orgIA2, ok), before, domain.KindNotFound, "client-not-found")
	w.requireRefused(grant(orgCA1, commands.GrantEmergencyAccess{ClientID: "nobody", Reason: "x"}), before, domain.KindNotFound, "client-not-found")
	err := grant(orgCA1, commands.GrantEmergencyAccess{ClientID: "k1", Reason: " "})
	w.requireRefused(err, before, domain.KindValidation, "invalid-emergency-access")
	requireField(t, err, "reason")
	err = grant(orgCA1, commands.GrantEmergencyAccess{ClientID: "k1", Reason: "x", Duration: 25 * time.Hour})
	w.requireRefused(err, before, domain.KindValidation, "invalid-emergency-access")
	requireField(t, err, "minutes")
}
