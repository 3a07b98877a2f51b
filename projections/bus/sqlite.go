package bus

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/careflow/careflow/eventstore/sqlite"
)

// OpenSQLite opens (creating it if needed) a SQLite file for the relay's
// checkpoints or a consumer's inbox: WAL, synchronous=FULL so a recorded
// checkpoint or inbox row survives power loss, and BEGIN IMMEDIATE so a
// transaction takes the write lock up front instead of failing half way.
func OpenSQLite(ctx context.Context, path string) (*sql.DB, error) {
	// Several connections: the relay, the consumers, timers and webhooks each
	// run transactions of their own.
	db, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{MaxConns: 16})
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	return db, nil
}

// Dialect is the SQL flavour of a database the inbox or checkpoints live in.
type Dialect int

const (
	// SQLite via modernc.org/sqlite (driver "sqlite").
	SQLite Dialect = iota
	// PostgreSQL via pgx's database/sql driver ("pgx").
	PostgreSQL
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case PostgreSQL:
		return "postgresql"
	default:
		return fmt.Sprintf("Dialect(%d)", int(d))
	}
}

func (d Dialect) validate() error {
	if d != SQLite && d != PostgreSQL {
		return fmt.Errorf("bus: unknown SQL dialect %s", d)
	}
	return nil
}

// bind rewrites '?' placeholders into the dialect's form. Queries here
// hold no '?' inside literals.
func (d Dialect) bind(query string) string {
	if d != PostgreSQL {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
