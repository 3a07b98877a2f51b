package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
)

// orgWorld is the organization every handler test starts from:
//
//	institute i1 (admin ia1): clinic c1 with clinic admin ca1, auditor au1,
//	  providers p1, p2 and p3 (p3 inactive); client k1 (team p1); book b1.
//	institute i2 (admin ia2): clinic c2 with clinic admin ca2, provider p4.
//	provider p5 is registered but in no clinic.
type orgWorld struct {
	t     *testing.T
	ctx   context.Context
	store *memory.Store
	deps  commands.Deps
	org   *commands.Organization
}

var (
	orgSys        = domain.Actor{ID: "sys", Role: domain.RoleSystemAdmin}
	orgIA1        = domain.Actor{ID: "ia1", Role: domain.RoleInstituteAdmin}
	orgIA2        = domain.Actor{ID: "ia2", Role: domain.RoleInstituteAdmin}
	orgCA1        = domain.Actor{ID: "ca1", Role: domain.RoleClinicAdmin}
	orgCA2        = domain.Actor{ID: "ca2", Role: domain.RoleClinicAdmin}
	orgAuditor1   = domain.Actor{ID: "au1", Role: domain.RoleAuditor}
	orgP1         = domain.Actor{ID: "p1", Role: domain.RoleProvider}
	orgP2         = domain.Actor{ID: "p2", Role: domain.RoleProvider}
	orgP4         = domain.Actor{ID: "p4", Role: domain.RoleProvider}
	orgClient     = domain.Actor{ID: "k1", Role: domain.RoleClient}
	orgFixedClock = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
)

func orgSpec() books.Spec {
	opts := []books.Option{{Value: 0, Label: "No"}, {Value: 1, Label: "Yes"}}
	return books.Spec{
		Kind: books.KindQuestionnaire, Title: "Check-in",
		Items: []books.Item{{ID: "a", Text: "A?", Options: opts}},
		Bands: []books.Band{{Min: 0, Max: 0, Severity: "none", Label: "None"}, {Min: 1, Max: 1, Severity: "some", Label: "Some"}},
	}
}

func newOrgWorld(t *testing.T) *orgWorld {
	t.Helper()
	codec, err := commands.NewRegistry()
	require.NoError(t, err)
	store := memory.New(eventstore.Options{Types: codec, Clock: func() time.Time { return orgFixedClock }})
	t.Cleanup(func() { _ = store.Close() })
	var seq atomic.Uint64 // handlers run concurrently in some tests
	deps := commands.Deps{
		Store: store, Codec: codec,
		Clock: func() time.Time { return orgFixedClock },
		NewID: func() uuid.UUID {
			n := seq.Add(1)
			var u uuid.UUID
			u[15], u[14] = byte(n), byte(n>>8)
			return u
		},
	}
	w := &orgWorld{t: t, ctx: context.Background(), store: store, deps: deps, org: commands.NewOrganization(deps)}

	w.given(commands.StreamInstitute, "i1",
		organization.InstituteCreated{InstituteID: "i1", Name: "North", CreatedBy: "sys"},
		organization.InstituteAdminAppointed{InstituteID: "i1", UserID: "ia1"})
	w.given(commands.StreamInstitute, "i2",
		organization.InstituteCreated{InstituteID: "i2", Name: "South", CreatedBy: "sys"},
		organization.InstituteAdminAppointed{InstituteID: "i2", UserID: "ia2"})
	for _, p := range []string{"p1", "p2", "p3", "p4", "p5"} {
		w.given(commands.StreamProvider, p, organization.ProviderRegistered{ProviderID: p, DisplayName: "Dr " + p, RegisteredBy: "sys"})
	}
	w.given(commands.StreamProvider, "p3", organization.ProviderDeactivated{ProviderID: "p3"})
	w.given(commands.StreamClinic, "c1",
		organization.ClinicCreated{ClinicID: "c1", InstituteID: "i1", Name: "Main", CreatedBy: "sys"},
		organization.ClinicStaffAdded{ClinicID: "c1", UserID: "ca1", Role: domain.RoleClinicAdmin},
		organization.ClinicStaffAdded{ClinicID: "c1", UserID: "au1", Role: domain.RoleAuditor},
		organization.ClinicProviderJoined{ClinicID: "c1", ProviderID: "p1"},
		organization.ClinicProviderJoined{ClinicID: "c1", ProviderID: "p2"},
		organization.ClinicProviderJoined{ClinicID: "c1", ProviderID: "p3"})
	w.given(commands.StreamClinic, "c2",
		organization.ClinicCreated{ClinicID: "c2", InstituteID: "i2", Name: "Other", CreatedBy: "sys"},
		organization.ClinicStaffAdded{ClinicID: "c2", UserID: "ca2", Role: domain.RoleClinicAdmin},
		organization.ClinicProviderJoined{ClinicID: "c2", ProviderID: "p4"})
	w.given(commands.StreamClient, "k1",
		organization.ClientRegistered{ClientID: "k1", ClinicID: "c1", DisplayName: "Alex", CareTeam: []string{"p1"}, RegisteredBy: "ca1"})
	w.given(commands.StreamBook, "b1", books.BookDefined{BookID: "b1", ClinicID: "c1", Spec: orgSpec(), DefinedBy: "ca1"})
	return w
}

// given appends events to a stream as history.
func (w *orgWorld) given(typ, id string, events ...domain.Event) {
	w.t.Helper()
	var batch []eventstore.NewEvent
	for _, e := range events {
		name, v, data, err := w.deps.Codec.Encode(e)
		require.NoError(w.t, err)
		batch = append(batch, eventstore.NewEvent{Type: name, SchemaVersion: v, Data: data, Metadata: eventstore.Metadata{OccurredAt: orgFixedClock}})
	}
	_, err := w.store.Append(w.ctx, eventstore.NewStreamID(typ, id), eventstore.AnyVersion, batch)
	require.NoError(w.t, err)
}

// version is a stream's current version.
func (w *orgWorld) version(typ, id string) int64 {
	w.t.Helper()
	recs, err := w.store.ReadStream(w.ctx, eventstore.NewStreamID(typ, id), 1)
	require.NoError(w.t, err)
	return int64(len(recs))
}

// eventsSince decodes a stream's events after version from.
func (w *orgWorld) eventsSince(typ, id string, from int64) []domain.Event {
	w.t.Helper()
	recs, err := w.store.ReadStream(w.ctx, eventstore.NewStreamID(typ, id), from+1)
	require.NoError(w.t, err)
	out := []domain.Event{}
	for _, r := range recs {
		v, err := w.deps.Codec.Decode(r.Type, r.SchemaVersion, r.Data)
		require.NoError(w.t, err)
		out = append(out, v.(domain.Event))
	}
	return out
}

// head is the global position of the last event.
func (w *orgWorld) head() int64 {
	w.t.Helper()
	p, err := w.store.HeadPosition(w.ctx)
	require.NoError(w.t, err)
	return p
}

func orgMeta(a domain.Actor) commands.Meta { return commands.Meta{Actor: a} }

// requireRefused checks a refusal's kind and slug and that nothing was
// written.
func (w *orgWorld) requireRefused(err error, before int64, kind domain.Kind, slug string) {
	w.t.Helper()
	require.Error(w.t, err)
	assert.Equal(w.t, kind, domain.KindOf(err), "kind of %v", err)
	assert.Contains(w.t, slugsOf(err), slug, "slug of %v", err)
	assert.Equal(w.t, before, w.head(), "a refused command writes nothing")
}

// requireField checks a validation refusal names field.
func requireField(t *testing.T, err error, field string) {
	t.Helper()
	var fields []string
	var de *domain.Error
	var ve domain.ValidationErrors
	switch {
	case errors.As(err, &ve):
		for _, e := range ve {
			fields = append(fields, e.Field)
		}
	case errors.As(err, &de):
		fields = append(fields, de.Field)
	}
	assert.Contains(t, fields, field, fmt.Sprintf("fields of %v", err))
}

// slugsOf lists the slugs of a domain error or of each error of a
// ValidationErrors (which does not unwrap to its elements).
func slugsOf(err error) []string {
	var ve domain.ValidationErrors
	if errors.As(err, &ve) {
		var out []string
		for _, e := range ve {
			out = append(out, e.Slug)
		}
		return out
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return []string{de.Slug}
	}
	return nil
}
