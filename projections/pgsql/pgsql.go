// Package pgsql opens PostgreSQL through database/sql (pgx's stdlib driver)
// for code whose SQL is written with SQLite's ? placeholders.
//
// The read models and the side stores share their SQL between SQLite and
// PostgreSQL. Rather than passing every statement through a Rebind call
// (and missing one), the connections of a DB opened here rewrite ? into
// $1, $2, … themselves, in Prepare, Exec and Query. Statements already
// written with $n have no ? outside literals and pass through unchanged;
// one statement must not mix the two styles.
package pgsql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// IsURL says whether location names a PostgreSQL database
// (postgres:// or postgresql://) rather than a file path.
func IsURL(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

// Open returns a pool on the database at url whose statements may use ?
// placeholders. It does not connect: the first use (or PingContext) does.
func Open(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL: keep a password out of logs.
		return nil, errors.New("pgsql: invalid PostgreSQL URL")
	}
	return sql.OpenDB(connector{stdlib.GetConnector(*cfg)}), nil
}

// Rebind turns the ? placeholders of query into $1, $2, … in order. A ?
// inside a string literal, a quoted identifier, a dollar-quoted string or a
// comment is left alone.
func Rebind(query string) string {
	if strings.IndexByte(query, '?') < 0 {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		case c == '\'' || c == '"':
			end := closing(query, i+1, c)
			b.WriteString(query[i:end])
			i = end - 1
			continue
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				end = len(query) - i
			}
			b.WriteString(query[i : i+end])
			i += end - 1
			continue
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			end := strings.Index(query[i+2:], "*/")
			if end < 0 {
				end = len(query) - i
			} else {
				end += 4
			}
			b.WriteString(query[i : i+end])
			i += end - 1
			continue
		case c == '$':
			if tag, ok := dollarTag(query[i:]); ok {
				end := strings.Index(query[i+len(tag):], tag)
				if end < 0 {
					end = len(query) - i
				} else {
					end += 2 * len(tag)
				}
				b.WriteString(query[i : i+end])
				i += end - 1
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// closing returns the index just past the quote that closes the literal
// opened before from; a doubled quote is an escaped one.
func closing(query string, from int, quote byte) int {
	for i := from; i < len(query); i++ {
		if query[i] == quote {
			if i+1 < len(query) && query[i+1] == quote {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(query)
}

// dollarTag reads the opening tag of a dollar-quoted string ($$ or $tag$)
// at the start of s. $1 is a parameter, not a tag.
func dollarTag(s string) (string, bool) {
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '$':
			return s[:i+1], true
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (i > 1 && c >= '0' && c <= '9'):
		default:
			return "", false
		}
	}
	return "", false
}

// connector hands out connections that rebind their statements.
type connector struct{ inner driver.Connector }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return rebindConn{conn}, nil
}

func (c connector) Driver() driver.Driver { return c.inner.Driver() }

// innerConn is what pgx's stdlib connection implements; database/sql finds
// the optional interfaces on rebindConn, which forwards them.
type innerConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.NamedValueChecker
}

type rebindConn struct{ driver.Conn }

var _ innerConn = rebindConn{}

func (c rebindConn) inner() (innerConn, error) {
	ic, ok := c.Conn.(innerConn)
	if !ok {
		return nil, fmt.Errorf("pgsql: driver connection %T lacks a context method", c.Conn)
	}
	return ic, nil
}

func (c rebindConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(Rebind(query))
}

func (c rebindConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	ic, err := c.inner()
	if err != nil {
		return nil, err
	}
	return ic.PrepareContext(ctx, Rebind(query))
}

func (c rebindConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	ic, err := c.inner()
	if err != nil {
		return nil, err
	}
	return ic.BeginTx(ctx, opts)
}

func (c rebindConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ic, err := c.inner()
	if err != nil {
		return nil, err
	}
	return ic.ExecContext(ctx, Rebind(query), args)
}

func (c rebindConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	ic, err := c.inner()
	if err != nil {
		return nil, err
	}
	return ic.QueryContext(ctx, Rebind(query), args)
}

func (c rebindConn) Ping(ctx context.Context) error {
	ic, err := c.inner()
	if err != nil {
		return err
	}
	return ic.Ping(ctx)
}

func (c rebindConn) ResetSession(ctx context.Context) error {
	ic, err := c.inner()
	if err != nil {
		return err
	}
	return ic.ResetSession(ctx)
}

func (c rebindConn) CheckNamedValue(v *driver.NamedValue) error {
	ic, err := c.inner()
	if err != nil {
		return err
	}
	return ic.CheckNamedValue(v)
}

// Is says whether db was opened by Open (or otherwise on pgx's driver),
// for stores that take a *sql.DB and adapt their DDL to it.
func Is(db *sql.DB) bool {
	_, ok := db.Driver().(*stdlib.Driver)
	return ok
}

// TrimTableOptions drops SQLite's table options (STRICT, WITHOUT ROWID)
// from the end of a CREATE TABLE, which PostgreSQL does not know: its
// tables are heaps with a separate primary key index whatever they say.
func TrimTableOptions(stmt string) string {
	stmt = strings.TrimSpace(stmt)
	for _, suffix := range []string{"STRICT", "WITHOUT ROWID"} {
		// SQL keywords are case-insensitive.
		if n := len(stmt) - len(suffix); n >= 0 && strings.EqualFold(stmt[n:], suffix) {
			stmt = strings.TrimSpace(stmt[:n])
		}
	}
	return stmt
}

// DDL adapts a CREATE statement written for SQLite STRICT tables to db:
// unchanged on SQLite; on PostgreSQL without STRICT or WITHOUT ROWID, with
// INTEGER PRIMARY KEY AUTOINCREMENT as an identity column, INTEGER as
// BIGINT (the side stores keep Unix nanoseconds in them) and BLOB as
// BYTEA. The statements it serves use these words only as types.
func DDL(db *sql.DB, stmt string) string {
	if !Is(db) {
		return stmt
	}
	stmt = TrimTableOptions(stmt)
	stmt = strings.ReplaceAll(stmt, "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
	stmt = strings.ReplaceAll(stmt, "INTEGER", "BIGINT")
	return strings.ReplaceAll(stmt, "BLOB", "BYTEA")
}
