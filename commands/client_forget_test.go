package commands_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/keyring"
)

// countingShredder counts Destroy calls on the way to the keyring.
type countingShredder struct {
	*keyring.Keyring
	calls atomic.Int32
}

func (c *countingShredder) Destroy(ctx context.Context, subject string, at time.Time) error {
	c.calls.Add(1)
	return c.Keyring.Destroy(ctx, subject, at)
}

// sealingOrgWorld is orgWorld whose handlers seal PHI with a keyring and
// may forget clients.
func sealingOrgWorld(t *testing.T) (*orgWorld, *countingShredder) {
	w := newOrgWorld(t)
	keys := &countingShredder{Keyring: newSealingKeyring(t)}
	w.deps.Codec = w.deps.Codec.WithSealer(keys)
	w.org = commands.NewOrganization(w.deps).WithShredder(keys)
	return w, keys
}

func TestForgetClientShredsTheirPHIOnly(t *testing.T) {
	w, keys := sealingOrgWorld(t)
	other, err := w.org.RegisterClient(w.ctx, orgMeta(orgCA1), commands.RegisterClient{ClinicID: "c1", DisplayName: "Robin", CareTeam: []string{"p1"}})
	require.NoError(t, err)
	_, err = w.org.DeactivateClient(w.ctx, orgMeta(orgCA1), commands.DeactivateClient{ClientID: "k1", Reason: "moved to Leeds"})
	require.NoError(t, err)
	v := w.version(commands.StreamClient, "k1")

	res, err := w.org.ForgetClient(w.ctx, orgMeta(orgIA1), commands.ForgetClient{ClientID: "k1", Reason: "erasure request 42"})
	require.NoError(t, err)
	assert.Equal(t, v+1, res.Version)

	assert.Equal(t, []domain.Event{
		organization.ClientDeactivated{ClientID: "k1", ClinicID: "c1", Reason: eventstore.Redacted, By: "ca1"},
		organization.ClientForgotten{ClientID: "k1", ClinicID: "c1", By: "ia1", Reason: "erasure request 42", At: orgFixedClock},
	}, w.eventsSince(commands.StreamClient, "k1", v-1), "the history replays with the PHI redacted")
	_, err = keys.Seal("k1", []byte("x"), nil)
	assert.ErrorIs(t, err, eventstore.ErrKeyDestroyed)

	others := w.eventsSince(commands.StreamClient, other.Stream.ID, 0)
	require.Len(t, others, 1)
	assert.Equal(t, "Robin", others[0].(organization.ClientRegistered).DisplayName, "other clients are untouched")

	_, err = w.org.ReactivateClient(w.ctx, orgMeta(orgCA1), commands.ReactivateClient{ClientID: "k1"})
	w.requireRefused(err, w.head(), domain.KindConflict, "client-forgotten")
}

func TestForgetClientRetryFinishesTheShredding(t *testing.T) {
	w, keys := sealingOrgWorld(t)
	m := orgMeta(orgSys)
	m.CommandID = "forget-k1"
	_, err := w.org.ForgetClient(w.ctx, m, commands.ForgetClient{ClientID: "k1", Reason: "court order"})
	require.NoError(t, err)
	res, err := w.org.ForgetClient(w.ctx, m, commands.ForgetClient{ClientID: "k1", Reason: "court order"})
	require.NoError(t, err)
	assert.True(t, res.Duplicate, "the retry records nothing twice")
	assert.EqualValues(t, 2, keys.calls.Load(), "but destroys the key again (idempotent), finishing an interrupted erasure")
}

func TestForgetClientRefusals(t *testing.T) {
	w, keys := sealingOrgWorld(t)
	before := w.head()
	forget := func(a domain.Actor, client, reason string) error {
		_, err := w.org.ForgetClient(w.ctx, orgMeta(a), commands.ForgetClient{ClientID: client, Reason: reason})
		return err
	}
	w.requireRefused(forget(orgCA1, "k1", "r"), before, domain.KindForbidden, "forbidden")
	w.requireRefused(forget(orgP1, "k1", "r"), before, domain.KindForbidden, "forbidden")
	w.requireRefused(forget(orgClient, "k1", "r"), before, domain.KindForbidden, "forbidden")
	w.requireRefused(forget(orgIA2, "k1", "r"), before, domain.KindNotFound, "client-not-found")
	w.requireRefused(forget(orgSys, "nobody", "r"), before, domain.KindNotFound, "client-not-found")
	w.requireRefused(forget(orgSys, "k1", " "), before, domain.KindValidation, "invalid-erasure")
	assert.Zero(t, keys.calls.Load(), "no key is touched by a refused erasure")

	require.NoError(t, forget(orgSys, "k1", "r"))
	w.requireRefused(forget(orgSys, "k1", "again"), w.head(), domain.KindConflict, "client-forgotten")
}

func TestForgetClientNeedsAShredder(t *testing.T) {
	w := newOrgWorld(t)
	_, err := w.org.ForgetClient(w.ctx, orgMeta(orgSys), commands.ForgetClient{ClientID: "k1", Reason: "r"})
	assert.ErrorContains(t, err, "no key shredder")
}
