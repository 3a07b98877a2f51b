package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
)

// KeyShredder destroys a subject's data key (eventstore/keyring does).
type KeyShredder interface {
	Destroy(ctx context.Context, subject string, at time.Time) error
}

// ForgetClient erases a client by crypto-shredding: the erasure is
// recorded on the client's stream, then the client's data key is
// destroyed, so every PHI field sealed under it reads as redacted from then
// on while the events themselves stay. A system admin, or an institute
// admin of the client's institute, may; a reason is required.
type ForgetClient struct {
	ClientID string
	Reason   string
}

// ForgetClient handles ForgetClient. The key is destroyed after the event
// is stored, never before: a crash in between leaves a recorded erasure
// whose key still exists, which a retry of the command (the same command
// id) or the shredding reaction finishes; the other order could lose PHI
// with no record of why.
func (o *Organization) ForgetClient(ctx context.Context, m Meta, cmd ForgetClient) (Result, error) {
	const what = "forget a client"
	if o.shredder == nil {
		return Result{}, fmt.Errorf("commands: forget client: no key shredder configured")
	}
	if err := requireRole(m.Actor, what, domain.RoleSystemAdmin, domain.RoleInstituteAdmin); err != nil {
		return Result{}, err
	}
	client, err := o.loadClient(ctx, cmd.ClientID)
	if err != nil {
		return Result{}, err
	}
	clinic, err := o.loadClinic(ctx, client.ClinicID())
	if err != nil {
		return Result{}, err
	}
	if err := o.inClinic(ctx, m.Actor, clinic); err != nil {
		return Result{}, clientNotFound(cmd.ClientID)
	}
	m = o.d.prepared(m)
	res, _, err := execute(ctx, o.d, eventstore.NewStreamID(StreamClient, cmd.ClientID), clinic.ID(), m, organization.NewClient,
		func(c *organization.Client) error {
			return c.Forget(cmd.Reason, m.Actor.ID, o.d.Clock())
		})
	if err != nil {
		return Result{}, err
	}
	if err := o.shredder.Destroy(ctx, cmd.ClientID, o.d.Clock()); err != nil {
		return res, fmt.Errorf("commands: the erasure of client %s is recorded but its key is not destroyed yet (retry the command): %w", cmd.ClientID, err)
	}
	// Decoded events of the client's streams may sit in the stream cache
	// with their PHI opened: drop them with the key.
	o.d.Streams.Purge()
	return res, nil
}
