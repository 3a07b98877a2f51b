package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/projections/bus"
	"github.com/careflow/careflow/projections/notify"
	"github.com/careflow/careflow/projections/reactions"
)

// eventBus is the integration side of a running service: the relay that
// publishes committed events, the router that feeds the reactions (timers,
// team notifications, webhooks), and the reactions themselves.
type eventBus struct {
	db        *sql.DB
	transport *bus.Transport
	reactions *reactions.Reactions
	router    *message.Router
	stop      context.CancelFunc
	wg        sync.WaitGroup
}

// startEventBus wires and starts the bus. The router runs before the relay
// publishes anything: the in-process transport drops messages nobody
// subscribes to yet.
func (a *app) startEventBus(ctx context.Context) (b *eventBus, err error) {
	location, err := a.cfg.reactionsLocation()
	if err != nil {
		return nil, err
	}
	b = &eventBus{}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if b.db, err = reactions.OpenDB(ctx, location); err != nil {
		return nil, fmt.Errorf("open the reactions database: %w", err)
	}
	deliverer, err := a.deliverer()
	if err != nil {
		return nil, err
	}
	org := commands.NewOrganization(a.deps).WithShredder(a.keys)
	if b.reactions, err = reactions.New(ctx, reactions.Config{
		DB: b.db, Store: a.store, Codec: a.codec,
		Care: commands.NewCare(a.deps, org), Clients: org, Staff: org,
		Keys:      a.keys,
		Deliverer: deliverer, Logger: a.log, WebhookAllowInternalTargets: a.cfg.WebhooksAllowInternal,
	}); err != nil {
		return nil, err
	}
	busCfg := bus.Config{Transport: a.cfg.BusTransport, NATSURL: a.cfg.BusNATSURL, PostgresURL: a.cfg.BusPostgresURL}
	if b.transport, err = bus.NewTransport(ctx, busCfg, nil); err != nil {
		return nil, fmt.Errorf("event bus: %w", err)
	}
	publisher, err := b.transport.NewPublisher()
	if err != nil {
		return nil, err
	}
	if b.router, err = bus.NewRouter(bus.RouterConfig{}, publisher, nil); err != nil {
		return nil, err
	}
	if err = b.reactions.AddHandlers(b.router, b.transport.NewSubscriber); err != nil {
		return nil, err
	}
	checkpoints, err := bus.NewSQLCheckpoints(ctx, b.db, reactions.Dialect(b.db), nil)
	if err != nil {
		return nil, err
	}
	relay, err := bus.NewRelay(bus.RelayConfig{Name: "relay", Store: a.store, Publisher: publisher, Checkpoints: checkpoints})
	if err != nil {
		return nil, err
	}

	runCtx, stop := context.WithCancel(context.Background())
	b.stop = stop
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.router.Run(runCtx); err != nil {
			a.log.Error("event bus router stopped", "err", err)
		}
	}()
	select {
	case <-b.router.Running():
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		return nil, errors.New("event bus router did not start")
	}
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		_ = relay.Serve(runCtx, 100*time.Millisecond, 30*time.Second)
	}()
	go func() {
		defer b.wg.Done()
		if err := b.reactions.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("reactions stopped", "err", err)
		}
	}()
	return b, nil
}

// deliverer takes notifications out of careflow: by mail when a mail
// server is configured, else into the log.
func (a *app) deliverer() (notify.Deliverer, error) {
	if a.cfg.SMTPHost == "" {
		return notify.LogDeliverer{Logger: a.log}, nil
	}
	d, err := notify.NewSMTPDeliverer(notify.SMTPConfig{
		Host: a.cfg.SMTPHost, Port: a.cfg.SMTPPort, From: a.cfg.SMTPFrom,
		Username: a.cfg.SMTPUsername, Password: a.cfg.SMTPPassword, LinkBase: a.cfg.SMTPLinkBase,
	}, notify.StaticAddressBook(a.cfg.SMTPAddresses))
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	return d, nil
}

// Close stops the relay, the reactions and the router, then closes the
// transport and the database.
func (b *eventBus) Close() {
	if b.stop != nil {
		b.stop()
	}
	if b.router != nil {
		_ = b.router.Close()
	}
	b.wg.Wait()
	if b.transport != nil {
		_ = b.transport.Close()
	}
	if b.db != nil {
		_ = b.db.Close()
	}
}
