package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/careflow/careflow/api"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/pgsql"
)

// openViews opens the read-model database the configuration names (see
// Config.viewsPath): a SQLite file, or a PostgreSQL database, which with
// a PostgreSQL event store and no views_url is the store's own.
func openViews(ctx context.Context, cfg Config) (db *projections.DB, location string, err error) {
	if location, err = cfg.viewsPath(); err != nil {
		return nil, "", err
	}
	if db, err = projections.OpenDB(ctx, location); err != nil {
		return nil, "", fmt.Errorf("open read models at %s: %w", describeLocation(location), err)
	}
	return db, location, nil
}

// reactionsLocation is where the event bus keeps its relay checkpoint and
// the reactions their timers, notifications, webhooks and inbox: the
// PostgreSQL event store's database (tables of their own), or a SQLite
// file beside a SQLite store.
func (c Config) reactionsLocation() (string, error) {
	loc, err := parseStoreURL(c.StoreURL)
	if err != nil {
		return "", err
	}
	if loc.Kind == "postgres" {
		return loc.URL, nil
	}
	return c.besideStore("-reactions.db")
}

// openSideStores opens the refresh tokens and the HIPAA access log: in
// the PostgreSQL event store's database (tables of their own), or in
// SQLite files beside a SQLite store (or in data_dir).
func openSideStores(ctx context.Context, cfg Config) (*api.SQLiteRefreshTokens, *api.SQLiteAccessLog, error) {
	loc, err := parseStoreURL(cfg.StoreURL)
	if err != nil {
		return nil, nil, err
	}
	openRefresh := func() (*api.SQLiteRefreshTokens, error) {
		if loc.Kind == "postgres" {
			return api.OpenPostgresRefreshTokens(ctx, loc.URL, time.Now)
		}
		path, err := cfg.besideStore("-auth.db")
		if err != nil {
			return nil, err
		}
		return api.OpenSQLiteRefreshTokens(ctx, path, time.Now)
	}
	openAccessLog := func() (*api.SQLiteAccessLog, error) {
		if loc.Kind == "postgres" {
			return api.OpenPostgresAccessLog(ctx, loc.URL)
		}
		path, err := cfg.besideStore("-access.db")
		if err != nil {
			return nil, err
		}
		return api.OpenSQLiteAccessLog(ctx, path)
	}
	refresh, err := openRefresh()
	if err != nil {
		return nil, nil, fmt.Errorf("open refresh tokens: %w", err)
	}
	accessLog, err := openAccessLog()
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("open the access log: %w", err), refresh.Close())
	}
	return refresh, accessLog, nil
}

// lockViews admits one process to run the projections: an flock beside a
// SQLite file, a session advisory lock on PostgreSQL. ErrLocked comes back
// as a message naming where the read models are.
func (a *app) lockViews(ctx context.Context) (release func() error, err error) {
	release, err = a.views.Lock(ctx)
	if errors.Is(err, projections.ErrLocked) {
		return nil, fmt.Errorf("%w: %s", err, describeLocation(a.viewsPath))
	}
	return release, err
}

// describeLocation names a read-model location in a message: a file path
// as it is, a PostgreSQL URL without its password.
func describeLocation(location string) string {
	if !pgsql.IsURL(location) {
		return location
	}
	u, err := url.Parse(location)
	if err != nil {
		return "(unparsable PostgreSQL URL)"
	}
	return u.Redacted()
}
