package bus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// OpenSQLite opens (creating it if needed) a SQLite file for the relay's
// checkpoints or a consumer's inbox: WAL, synchronous=FULL so a recorded
// checkpoint or inbox row survives power loss, and BEGIN IMMEDIATE so a
// transaction takes the write lock up front instead of failing half way.
func OpenSQLite(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("bus: sqlite path %q must be a plain file path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bus: create directory for %s: %w", path, err)
	}
	// Created by hand so the file is its owner's only: inbox rows name
	// events of clinical records.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bus: open %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("bus: open %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("bus: open %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return nil, errors.Join(fmt.Errorf("bus: open %s: %w", path, err), db.Close())
	}
	if mode != "wal" {
		return nil, errors.Join(fmt.Errorf("bus: %s: journal_mode is %q, want wal", path, mode), db.Close())
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
