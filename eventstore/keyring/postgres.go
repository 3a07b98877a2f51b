package keyring

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// keysLockKey serialises creating the keys table across processes.
// Arbitrary but fixed: "cfkeys".
const keysLockKey int64 = 0x63666b657973

// postgresSchema is the keys table: destroyed_at NULL while the key lives,
// wrapped NULL once it is destroyed.
const postgresSchema = `
CREATE TABLE IF NOT EXISTS careflow_data_keys (
	subject      text        COLLATE "C" PRIMARY KEY,
	key_id       text        NOT NULL,
	kek_id       text        NOT NULL,
	wrapped      bytea,
	created_at   timestamptz NOT NULL,
	destroyed_at timestamptz,
	CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
)`

// PostgresBackend keeps the keys in table careflow_data_keys of a
// PostgreSQL database (usually the events' database).
type PostgresBackend struct {
	pool *pgxpool.Pool
}

var _ Backend = (*PostgresBackend)(nil)

// OpenPostgres connects to the database at url with a small pool of its
// own and creates the keys table if needed. Its sessions commit with
// synchronous_commit=on whatever the server's default: a key that a
// crash could lose would take everything sealed under it along.
func OpenPostgres(ctx context.Context, url string) (*PostgresBackend, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return nil, fmt.Errorf("keyring: database URL: %w", err)
	}
	pc.MaxConns = 4
	pc.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("keyring: connect: %w", err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, keysLockKey); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, postgresSchema)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("keyring: create the keys table: %w", err)
	}
	return &PostgresBackend{pool: pool}, nil
}

func nullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func (p *PostgresBackend) Get(ctx context.Context, subject string) (Record, error) {
	r := Record{Subject: subject}
	var destroyed *time.Time
	err := p.pool.QueryRow(ctx, `SELECT key_id, kek_id, wrapped, created_at, destroyed_at
		FROM careflow_data_keys WHERE subject = $1`, subject).Scan(&r.KeyID, &r.KEKID, &r.Wrapped, &r.CreatedAt, &destroyed)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, errNotFound
	}
	if err != nil {
		return Record{}, err
	}
	r.CreatedAt, r.DestroyedAt = r.CreatedAt.UTC(), nullTime(destroyed)
	return r, nil
}

func (p *PostgresBackend) InsertIfAbsent(ctx context.Context, r Record) (bool, error) {
	tag, err := p.pool.Exec(ctx, `INSERT INTO careflow_data_keys (subject, key_id, kek_id, wrapped, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subject) DO NOTHING`,
		r.Subject, r.KeyID, r.KEKID, r.Wrapped, r.CreatedAt)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func (p *PostgresBackend) Destroy(ctx context.Context, subject string, at time.Time) error {
	_, err := p.pool.Exec(ctx, `INSERT INTO careflow_data_keys (subject, key_id, kek_id, wrapped, created_at, destroyed_at)
		VALUES ($1, '', '', NULL, $2, $2)
		ON CONFLICT (subject) DO UPDATE SET wrapped = NULL, destroyed_at = excluded.destroyed_at
		WHERE careflow_data_keys.destroyed_at IS NULL`, subject, at)
	return err
}

func (p *PostgresBackend) Rewrap(ctx context.Context, subject, oldKEKID, newKEKID string, wrapped []byte) (bool, error) {
	tag, err := p.pool.Exec(ctx, `UPDATE careflow_data_keys SET kek_id = $1, wrapped = $2
		WHERE subject = $3 AND kek_id = $4 AND destroyed_at IS NULL`, newKEKID, wrapped, subject, oldKEKID)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func (p *PostgresBackend) NotWrappedUnder(ctx context.Context, kekID, after string, limit int) ([]Record, error) {
	// subject is COLLATE "C": the byte order of SQLite and Go, whatever
	// the database's collation.
	rows, err := p.pool.Query(ctx, `SELECT subject, key_id, kek_id, wrapped, created_at
		FROM careflow_data_keys WHERE destroyed_at IS NULL AND kek_id <> $1 AND subject > $2
		ORDER BY subject LIMIT $3`, kekID, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		if err := rows.Scan(&r.Subject, &r.KeyID, &r.KEKID, &r.Wrapped, &r.CreatedAt); err != nil {
			return nil, err
		}
		r.CreatedAt = r.CreatedAt.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

func (p *PostgresBackend) Counts(ctx context.Context) ([]KEKCount, error) {
	rows, err := p.pool.Query(ctx, `SELECT CASE WHEN destroyed_at IS NULL THEN kek_id ELSE '' END, destroyed_at IS NOT NULL, COUNT(*)
		FROM careflow_data_keys GROUP BY 1, 2`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KEKCount
	for rows.Next() {
		var (
			c KEKCount
			n int64
		)
		if err := rows.Scan(&c.KEKID, &c.Destroyed, &n); err != nil {
			return nil, err
		}
		c.Keys = int(n)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sortCounts(out)
	return out, nil
}

func (p *PostgresBackend) Close() error {
	p.pool.Close()
	return nil
}
