package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/careflow/careflow/projections/pgsql"
)

// OpenPostgresRefreshTokens keeps the refresh tokens in the PostgreSQL
// database at url (tables of their own, beside the event store's), with
// the same code and schema as the SQLite store: the statements are
// portable, pgsql adapts the table definitions and the placeholders.
//
// Rotation relies, as on SQLite, on one connection serializing this
// process's token transactions, so a token is consumed once even under
// concurrent refreshes; one careflow process serves a database at a time
// (it holds the read models' advisory lock).
func OpenPostgresRefreshTokens(ctx context.Context, url string, clock func() time.Time) (*SQLiteRefreshTokens, error) {
	if clock == nil {
		clock = time.Now
	}
	db, err := pgsql.Open(url)
	if err != nil {
		return nil, fmt.Errorf("refresh tokens: %w", err)
	}
	db.SetMaxOpenConns(1)
	for _, stmt := range strings.Split(refreshSchema, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := db.ExecContext(ctx, pgsql.DDL(db, stmt)); err != nil {
			return nil, errors.Join(fmt.Errorf("refresh tokens: schema: %w", err), db.Close())
		}
	}
	return &SQLiteRefreshTokens{db: db, clock: clock}, nil
}
