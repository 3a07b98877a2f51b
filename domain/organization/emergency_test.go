package organization_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

var breakGlassAt = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func TestGrantEmergencyAccess(t *testing.T) {
	// Given a registered client
	c := registered()
	admin := domain.Actor{ID: "a1", Role: domain.RoleClinicAdmin}

	// When an admin breaks the glass for 30 minutes
	require.NoError(t, c.GrantEmergencyAccess("g1", admin, "  crisis call, care team unreachable ", 30*time.Minute, breakGlassAt))

	// Then the grant is recorded with its reason and expiry
	want := organization.ClientEmergencyAccessGranted{ClientID: "k1", ClinicID: "c1", GrantID: "g1", GrantedTo: "a1",
		GrantedToRole: domain.RoleClinicAdmin, Reason: "crisis call, care team unreachable",
		GrantedAt: breakGlassAt, ExpiresAt: breakGlassAt.Add(30 * time.Minute)}
	assert.Equal(t, []domain.Event{want}, c.Pending())
	grants := c.EmergencyGrants()
	require.Len(t, grants, 1)
	assert.Equal(t, "a1", grants[0].ActorID)
	assert.True(t, grants[0].ActiveAt(breakGlassAt.Add(29*time.Minute)))
	assert.False(t, grants[0].ActiveAt(breakGlassAt.Add(30*time.Minute)), "expired")
	assert.False(t, grants[0].ActiveAt(breakGlassAt.Add(-time.Second)), "not yet")

	// And a replay of the event rebuilds the same grant
	replayed := registered(want)
	assert.Equal(t, grants, replayed.EmergencyGrants())
}

func TestGrantEmergencyAccessOnDischargedClient(t *testing.T) {
	c := registered(organization.ClientDeactivated{ClientID: "k1", ClinicID: "c1", By: "a1"})
	require.NoError(t, c.GrantEmergencyAccess("g1", domain.Actor{ID: "a1", Role: domain.RoleClinicAdmin}, "relapse", time.Hour, breakGlassAt))
	assert.Len(t, c.Pending(), 1)
}

func TestGrantEmergencyAccessRules(t *testing.T) {
	admin := domain.Actor{ID: "a1", Role: domain.RoleClinicAdmin}
	cases := map[string]struct {
		reason string
		d      time.Duration
		actor  domain.Actor
		field  string
	}{
		"no reason":        {"  ", time.Hour, admin, "reason"},
		"reason too long":  {strings.Repeat("x", 1001), time.Hour, admin, "reason"},
		"zero minutes":     {"r", 0, admin, "minutes"},
		"over a day":       {"r", 24*time.Hour + time.Minute, admin, "minutes"},
		"not whole minute": {"r", 90 * time.Second, admin, "minutes"},
		"no actor":         {"r", time.Hour, domain.Actor{}, "grantedTo"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := registered()
			err := c.GrantEmergencyAccess("g1", tc.actor, tc.reason, tc.d, breakGlassAt)
			require.Error(t, err)
			assert.Equal(t, domain.KindValidation, domain.KindOf(err))
			var verrs domain.ValidationErrors
			require.ErrorAs(t, err, &verrs)
			assert.Equal(t, tc.field, verrs[0].Field)
			assert.Equal(t, "invalid-emergency-access", verrs[0].Slug)
			assert.Empty(t, c.Pending())
		})
	}
	err := organization.NewClient().GrantEmergencyAccess("g1", admin, "r", time.Hour, breakGlassAt)
	assert.Equal(t, domain.KindNotFound, domain.KindOf(err))
}
