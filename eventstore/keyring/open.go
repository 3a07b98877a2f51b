package keyring

import (
	"context"
	"strings"
)

// Open opens the keyring whose keys live at location: a postgres:// (or
// postgresql://) URL for PostgreSQL, otherwise a SQLite file path (a
// sqlite:// prefix is accepted). cfg.Backend is set to that backend.
func Open(ctx context.Context, location string, cfg Config) (*Keyring, error) {
	var (
		b   Backend
		err error
	)
	switch {
	case strings.HasPrefix(location, "postgres://"), strings.HasPrefix(location, "postgresql://"):
		b, err = OpenPostgres(ctx, location)
	default:
		b, err = OpenSQLite(ctx, strings.TrimPrefix(location, "sqlite://"))
	}
	if err != nil {
		return nil, err
	}
	cfg.Backend = b
	k, err := New(cfg)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return k, nil
}
