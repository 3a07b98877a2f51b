package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/eventstore/sqlite"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/views"
)

// app is what every careflow command that touches data opens: the event
// store, the codec of every domain event, and the read-model database with
// a runner for every projection.
type app struct {
	log    *slog.Logger
	store  eventstore.Store
	codec  *codec.Registry
	views  *projections.DB
	runner *projections.Runner
	// viewsPath is the read-model database file (for its process lock).
	viewsPath string
}

// openApp opens the store and the read-model database. It does not start
// the projections: serve does that once it holds the lock.
func openApp(ctx context.Context, cfg Config, log *slog.Logger) (*app, error) {
	reg, err := commands.NewRegistry()
	if err != nil {
		return nil, err
	}
	store, err := openStore(ctx, cfg, reg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	a := &app{log: log, store: store, codec: reg}
	if a.viewsPath, err = cfg.viewsPath(); err != nil {
		_ = a.Close()
		return nil, err
	}
	if a.views, err = projections.OpenDB(ctx, a.viewsPath); err != nil {
		_ = a.Close()
		return nil, fmt.Errorf("open read models: %w", err)
	}
	if a.runner, err = projections.NewRunner(store, a.views, log, allProjections(reg)...); err != nil {
		_ = a.Close()
		return nil, err
	}
	return a, nil
}

// allProjections lists every read model the service keeps.
func allProjections(reg *codec.Registry) []projections.Projection {
	return append(views.All(reg), audit.NewTrail())
}

// openStore opens the event store the configuration names.
func openStore(ctx context.Context, cfg Config, types eventstore.TypeCatalog) (eventstore.Store, error) {
	loc, err := parseStoreURL(cfg.StoreURL)
	if err != nil {
		return nil, err
	}
	switch loc.Kind {
	case "sqlite":
		return sqlite.Open(ctx, sqlite.Config{Path: loc.Path}, eventstore.Options{Types: types})
	}
	return nil, fmt.Errorf("store %q is not supported", cfg.StoreURL)
}

// Close closes the read models, then the store (whose writer first
// finishes the group it is committing). Stop the runner before.
func (a *app) Close() error {
	var errs []error
	if a.views != nil {
		errs = append(errs, a.views.Close())
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
	}
	return errors.Join(errs...)
}
