package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/careflow/careflow/api"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/chain"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/eventstore/keyring"
	"github.com/careflow/careflow/eventstore/postgres"
	"github.com/careflow/careflow/eventstore/sqlite"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/reactions"
	"github.com/careflow/careflow/projections/views"
)

// app is what every careflow command that touches data opens: the event
// store, the codec of every domain event, and the read-model database with
// a runner for every projection.
type app struct {
	log   *slog.Logger
	cfg   Config
	store eventstore.Store
	codec *codec.Registry
	// keys seals PHI under per-client data keys and destroys them when a
	// client is forgotten.
	keys       *keyring.Keyring
	keysCloser io.Closer
	deps       commands.Deps
	accounts   *commands.Accounts
	views      *projections.DB
	runner     *projections.Runner
	chain      chain.Table
	metrics    *serviceMetrics
	// viewsPath is the read-model database: a file path or a PostgreSQL
	// URL (print it with describeLocation).
	viewsPath string
}

// openApp opens the store and the read-model database. It does not start
// the projections: serve does that once it holds the lock.
func openApp(ctx context.Context, cfg Config, log *slog.Logger) (*app, error) {
	plain, err := commands.NewRegistry()
	if err != nil {
		return nil, err
	}
	store, err := openStore(ctx, cfg, plain) // the registry as the catalogue of types
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	keys, keysCloser, err := openKeyring(ctx, cfg, log)
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("open the keyring: %w", err)
	}
	// Every event the service writes has its PHI sealed under the client's
	// data key; every event it reads is opened (or redacted) with it.
	reg := plain.WithSealer(keys)
	metrics := newServiceMetrics()
	store = measuredStore{Store: store, m: metrics}
	a := &app{log: log, cfg: cfg, store: store, codec: reg, keys: keys, keysCloser: keysCloser, metrics: metrics}
	a.deps = commands.Deps{Store: store, Codec: reg, Clock: time.Now, NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) },
		Streams: commands.NewStreamCache(0)}
	hasher, err := identity.NewHasher(identity.DefaultArgon2Params())
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	a.accounts = commands.NewAccounts(a.deps, hasher)
	if a.views, a.viewsPath, err = openViews(ctx, cfg); err != nil {
		_ = a.Close()
		return nil, err
	}
	all, err := allProjections(reg, keys)
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	if a.runner, err = projections.NewRunnerWithOptions(store, a.views, log,
		projections.Options{LagObserver: metrics}, all...); err != nil {
		_ = a.Close()
		return nil, err
	}
	metrics.watchBacklog(a.runner)
	loc, _ := parseStoreURL(cfg.StoreURL) // validated with the config
	if a.chain, err = chain.Open(ctx, loc.Kind, cmp.Or(loc.Path, loc.URL)); err != nil {
		_ = a.Close()
		return nil, fmt.Errorf("open the event chain: %w", err)
	}
	return a, nil
}

// newAPI builds the HTTP API over the app. The caller closes the returned
// closer (the refresh-token store) after the server has stopped.
func (a *app) newAPI(ctx context.Context, rx *reactions.Reactions) (*api.Server, io.Closer, error) {
	secretPath, err := a.cfg.besideStore("-auth.secret")
	if err != nil {
		return nil, nil, err
	}
	secret, err := authSecret(a.cfg.AuthSecret, secretPath)
	if err != nil {
		return nil, nil, err
	}
	refresh, accessLog, err := openSideStores(ctx, a.cfg)
	if err != nil {
		return nil, nil, err
	}
	closers := closerFunc(func() error { return errors.Join(refresh.Close(), accessLog.Close()) })
	org := commands.NewOrganization(a.deps).WithShredder(a.keys)
	httpMetrics, err := api.NewMetrics(a.metrics.reg)
	if err != nil {
		_ = closers.Close()
		return nil, nil, err
	}
	srv, err := api.NewServer(api.Config{
		Codec:          a.codec,
		Organization:   org,
		Metrics:        httpMetrics,
		Projections:    a.runner,
		Store:          a.store,
		Logger:         a.log,
		Accounts:       a.accounts,
		Refresh:        refresh,
		BehindTLSProxy: a.cfg.BehindTLSProxy,
		Tokens:         api.TokenConfig{Secret: secret, Issuer: a.cfg.AuthIssuer, Audience: a.cfg.AuthAudience},
		OIDC: api.OIDCConfig{Issuer: a.cfg.OIDCIssuer, JWKSURL: a.cfg.OIDCJWKSURL, Audience: a.cfg.OIDCAudience,
			UsernameClaim: a.cfg.OIDCUsernameClaim},
		Care: api.CareConfig{
			Commands:   commands.NewCare(a.deps, org),
			Directory:  org,
			Views:      a.views,
			Freshness:  a.runner,
			TimeTravel: audit.NewTimeTravel(a.store, a.codec),
			AccessLog:  accessLog,
		},
		Reactions: api.ReactionsConfig{
			Notifications: rx.Notifications(),
			Webhooks:      rx.Webhooks(),
		},
	})
	if err != nil {
		_ = closers.Close()
		return nil, nil, err
	}
	return srv, closers, nil
}

// closerFunc adapts a function to io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// bootstrapAdmin creates the first system administrator from the
// configuration when that account does not exist yet. Its command id is
// fixed per username, so every start after the first writes nothing.
func (a *app) bootstrapAdmin(ctx context.Context) error {
	if a.cfg.AdminUsername == "" {
		return nil
	}
	m := commands.Meta{
		Actor:     domain.Actor{ID: "careflow-bootstrap", Role: domain.RoleSystemAdmin},
		CommandID: "bootstrap-admin:" + strings.ToLower(a.cfg.AdminUsername),
	}
	_, err := a.accounts.RegisterAccount(ctx, m, commands.RegisterAccount{
		Username: a.cfg.AdminUsername, Password: a.cfg.AdminPassword, Role: domain.RoleSystemAdmin,
	})
	if errors.Is(err, &domain.Error{Slug: "username-taken"}) {
		a.log.Warn("admin_username is taken by an account created otherwise; not changing it", "username", a.cfg.AdminUsername)
		return nil
	}
	if err != nil {
		return fmt.Errorf("create the system administrator %q: %w", a.cfg.AdminUsername, err)
	}
	return nil
}

// newChainer makes the chainer that keeps the tamper-evident chain, signing
// checkpoints when a key is configured.
func (a *app) newChainer() (*chain.Chainer, error) {
	opts := chain.ChainerOptions{Logger: a.log}
	if a.cfg.ChainKeyFile != "" {
		key, err := chain.LoadPrivateKey(a.cfg.ChainKeyFile)
		if err != nil {
			return nil, fmt.Errorf("chain_key_file: %w", err)
		}
		opts.Key = key
	}
	return chain.NewChainer(a.store, a.chain, opts)
}

// allProjections lists every read model the service keeps; the views seal
// their PHI columns with sealer (the data keyring).
func allProjections(reg *codec.Registry, sealer eventstore.Sealer) ([]projections.Projection, error) {
	phi, err := views.All(reg, sealer)
	if err != nil {
		return nil, err
	}
	return append(phi, audit.NewTrail(), api.NewAssignmentIndex()), nil
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
	case "postgres":
		return postgres.Open(ctx, postgres.Config{URL: loc.URL, Migrate: cfg.StoreMigrate,
			AllowAsyncCommit: cfg.StoreAllowAsyncCommit}, eventstore.Options{Types: types})
	}
	return nil, fmt.Errorf("store %q is not supported", cfg.StoreURL)
}

// Close closes the read models, then the store (whose writer first
// finishes the group it is committing). Stop the runner before.
func (a *app) Close() error {
	var errs []error
	if a.chain != nil {
		errs = append(errs, a.chain.Close())
	}
	if a.views != nil {
		errs = append(errs, a.views.Close())
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
	}
	if a.keysCloser != nil {
		errs = append(errs, a.keysCloser.Close())
	}
	return errors.Join(errs...)
}
