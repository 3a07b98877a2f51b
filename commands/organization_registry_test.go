package commands_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/domain/plans"
)

func TestOrganizationEventsAreRegistered(t *testing.T) {
	codec, err := commands.NewRegistry()
	require.NoError(t, err)
	var all []domain.Event
	all = append(all, organization.Events()...)
	all = append(all, books.Events()...)
	all = append(all, plans.Events()...)
	for _, e := range all {
		name, err := codec.Name(e)
		require.NoError(t, err, "%T", e)
		assert.Equal(t, e.EventType(), name)
	}
}

func TestOrganizationEventsRoundTrip(t *testing.T) {
	codec, err := commands.NewRegistry()
	require.NoError(t, err)
	events := []domain.Event{
		organization.ClientRegistered{ClientID: "k", ClinicID: "c", DisplayName: "Sam", CareTeam: []string{"p1", "p2"}, RegisteredBy: "a"},
		organization.ClinicStaffAdded{ClinicID: "c", UserID: "u", Role: domain.RoleAuditor},
		books.BookRevised{BookID: "b", ClinicID: "c", Version: 2, Spec: books.PHQ9Spec(), RevisedBy: "p"},
		plans.DesignPlanCreated{PlanID: "x", ClinicID: "c", Title: "T", Weeks: []plans.Week{{Number: 1, Homework: []string{"phq-9"}}}, CreatedBy: "p"},
	}
	for _, e := range events {
		name, v, data, err := codec.Encode(e)
		require.NoError(t, err)
		back, err := codec.Decode(name, v, data)
		require.NoError(t, err)
		assert.Equal(t, e, back)
	}
}
