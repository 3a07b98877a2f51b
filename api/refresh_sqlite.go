package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/careflow/careflow/eventstore/sqlite"
)

// SQLiteRefreshTokens is a durable RefreshTokens in its own small SQLite
// file (kept next to the event store, never inside it: tokens are not
// events and are deleted when they expire).
type SQLiteRefreshTokens struct {
	db    *sql.DB
	clock func() time.Time
}

var _ RefreshTokens = (*SQLiteRefreshTokens)(nil)

const refreshSchema = `
CREATE TABLE IF NOT EXISTS refresh_tokens (
	token_hash BLOB PRIMARY KEY,
	family     TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	username   TEXT NOT NULL,
	expires_at INTEGER NOT NULL,
	used       INTEGER NOT NULL DEFAULT 0,
	revoked    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens(family);
CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens(user_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_expiry ON refresh_tokens(expires_at);
CREATE TABLE IF NOT EXISTS session_ends (
	user_id  TEXT PRIMARY KEY,
	ended_at INTEGER NOT NULL
) WITHOUT ROWID;
`

// OpenSQLiteRefreshTokens opens (creating if needed) the token database at
// path.
func OpenSQLiteRefreshTokens(ctx context.Context, path string, clock func() time.Time) (*SQLiteRefreshTokens, error) {
	if clock == nil {
		clock = time.Now
	}
	// One connection: rotations are serialized, so a token can be
	// consumed only once even under concurrent refreshes.
	db, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{})
	if err != nil {
		return nil, fmt.Errorf("refresh tokens: %w", err)
	}
	if _, err := db.ExecContext(ctx, refreshSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("refresh tokens: schema: %w", err)
	}
	return &SQLiteRefreshTokens{db: db, clock: clock}, nil
}

// Close closes the database.
func (s *SQLiteRefreshTokens) Close() error { return s.db.Close() }

func (s *SQLiteRefreshTokens) Issue(ctx context.Context, subj RefreshSubject, expires time.Time) (string, error) {
	family, err := randomToken(16)
	if err != nil {
		return "", err
	}
	var token string
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE expires_at <= ?`, s.clock().UnixMilli()); err != nil {
			return err
		}
		token, err = insertRefresh(ctx, tx, family, subj, expires)
		return err
	})
	return token, err
}

func insertRefresh(ctx context.Context, tx *sql.Tx, family string, subj RefreshSubject, expires time.Time) (string, error) {
	token, err := randomToken(refreshTokenBytes)
	if err != nil {
		return "", err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO refresh_tokens (token_hash, family, user_id, username, expires_at) VALUES (?, ?, ?, ?, ?)`,
		hashRefresh(token), family, subj.UserID, subj.Username, expires.UnixMilli())
	return token, err
}

func (s *SQLiteRefreshTokens) Rotate(ctx context.Context, token string) (RefreshSubject, string, time.Time, error) {
	var (
		subj    RefreshSubject
		next    string
		expires time.Time
		reused  string // family to revoke after a reuse
	)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var (
			family        string
			expMs         int64
			used, revoked bool
		)
		err := tx.QueryRowContext(ctx, `SELECT family, user_id, username, expires_at, used, revoked FROM refresh_tokens WHERE token_hash = ?`,
			hashRefresh(token)).Scan(&family, &subj.UserID, &subj.Username, &expMs, &used, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrRefreshInvalid
		}
		if err != nil {
			return err
		}
		expires = time.UnixMilli(expMs)
		if revoked || !s.clock().Before(expires) {
			return ErrRefreshInvalid
		}
		if used {
			reused = family
			return ErrRefreshInvalid
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?`, hashRefresh(token)); err != nil {
			return err
		}
		next, err = insertRefresh(ctx, tx, family, subj, expires)
		return err
	})
	if reused != "" {
		if _, rerr := s.db.ExecContext(ctx, `UPDATE refresh_tokens SET revoked = 1 WHERE family = ?`, reused); rerr != nil {
			return RefreshSubject{}, "", time.Time{}, fmt.Errorf("refresh tokens: revoke reused family: %w", rerr)
		}
	}
	if err != nil {
		return RefreshSubject{}, "", time.Time{}, err
	}
	return subj, next, expires, nil
}

func (s *SQLiteRefreshTokens) Revoke(ctx context.Context, token string) error {
	_, err := s.db.ExecContext(ctx,
		`UPDATE refresh_tokens SET revoked = 1 WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = ?)`, hashRefresh(token))
	return err
}

func (s *SQLiteRefreshTokens) RevokeUser(ctx context.Context, userID string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE refresh_tokens SET revoked = 1 WHERE user_id = ?`, userID)
	return err
}

func (s *SQLiteRefreshTokens) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
