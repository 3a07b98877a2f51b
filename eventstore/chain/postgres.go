package chain

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// chainLockKey is the advisory lock that serialises schema creation and
// appends to the chain across processes. Arbitrary but fixed: "cfchain".
const chainLockKey int64 = 0x6366636861696e

// postgresSchema creates the chain's tables in the events' database. Like
// the events, they refuse UPDATE, DELETE and TRUNCATE.
const postgresSchema = `
CREATE TABLE IF NOT EXISTS event_chain (
	position bigint PRIMARY KEY,
	event_id uuid   NOT NULL,
	digest   bytea  NOT NULL CHECK (length(digest) = 32),
	hash     bytea  NOT NULL CHECK (length(hash) = 32)
);
CREATE TABLE IF NOT EXISTS event_chain_checkpoints (
	id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	position  bigint      NOT NULL,
	hash      bytea       NOT NULL CHECK (length(hash) = 32),
	signed_at timestamptz NOT NULL,
	key_id    text        NOT NULL,
	signature bytea       NOT NULL
);
CREATE OR REPLACE FUNCTION event_chain_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;
CREATE OR REPLACE TRIGGER event_chain_no_update BEFORE UPDATE OR DELETE ON event_chain
	FOR EACH ROW EXECUTE FUNCTION event_chain_append_only();
CREATE OR REPLACE TRIGGER event_chain_no_truncate BEFORE TRUNCATE ON event_chain
	FOR EACH STATEMENT EXECUTE FUNCTION event_chain_append_only();
CREATE OR REPLACE TRIGGER event_chain_checkpoints_no_update BEFORE UPDATE OR DELETE ON event_chain_checkpoints
	FOR EACH ROW EXECUTE FUNCTION event_chain_append_only();
CREATE OR REPLACE TRIGGER event_chain_checkpoints_no_truncate BEFORE TRUNCATE ON event_chain_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION event_chain_append_only();
`

// PostgresTable keeps the chain in the PostgreSQL database of the events.
type PostgresTable struct {
	pool *pgxpool.Pool
}

var _ Table = (*PostgresTable)(nil)

// OpenPostgres connects to the events' database at url (the postgres
// store's Config.URL) with a small pool of its own and creates the chain
// tables if needed.
func OpenPostgres(ctx context.Context, url string) (*PostgresTable, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return nil, fmt.Errorf("chain: database URL: %w", err)
	}
	pc.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("chain: connect: %w", err)
	}
	t := &PostgresTable{pool: pool}
	if err := t.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return t, nil
}

func (t *PostgresTable) migrate(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, chainLockKey); err != nil {
			return err
		}
		// No arguments: the simple protocol runs several statements.
		_, err := tx.Exec(ctx, postgresSchema)
		return err
	})
	if err != nil {
		return fmt.Errorf("chain: create tables: %w", err)
	}
	return nil
}

const postgresHeadSQL = `SELECT position, event_id, digest, hash FROM event_chain ORDER BY position DESC LIMIT 1`

func scanPostgresLink(row pgx.Row) (Link, error) {
	var (
		l            Link
		id           uuid.UUID
		digest, hash []byte
	)
	if err := row.Scan(&l.Position, &id, &digest, &hash); err != nil {
		return Link{}, err
	}
	if len(digest) != len(l.Digest) || len(hash) != len(l.Hash) {
		return Link{}, fmt.Errorf("chain: link at %d: digest or hash is not 32 bytes", l.Position)
	}
	l.EventID = id
	copy(l.Digest[:], digest)
	copy(l.Hash[:], hash)
	return l, nil
}

func (t *PostgresTable) Head(ctx context.Context) (Link, error) {
	l, err := scanPostgresLink(t.pool.QueryRow(ctx, postgresHeadSQL))
	if errors.Is(err, pgx.ErrNoRows) {
		return GenesisLink, nil
	}
	if err != nil {
		return Link{}, fmt.Errorf("chain: read the head: %w", err)
	}
	return l, nil
}

func (t *PostgresTable) Append(ctx context.Context, head Link, links []Link) error {
	positions := make([]int64, len(links))
	ids := make([]uuid.UUID, len(links))
	digests := make([][]byte, len(links))
	hashes := make([][]byte, len(links))
	for i, l := range links {
		positions[i], ids[i] = l.Position, l.EventID
		digests[i], hashes[i] = l.Digest[:], l.Hash[:]
	}
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		// Appends take turns, so the head read below stays the head until
		// this transaction ends.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, chainLockKey); err != nil {
			return err
		}
		current, err := scanPostgresLink(tx.QueryRow(ctx, postgresHeadSQL))
		if errors.Is(err, pgx.ErrNoRows) {
			current, err = GenesisLink, nil
		}
		if err != nil {
			return err
		}
		if current != head {
			return ErrHeadMoved
		}
		_, err = tx.Exec(ctx, `INSERT INTO event_chain (position, event_id, digest, hash)
			SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bytea[], $4::bytea[])`,
			positions, ids, digests, hashes)
		return err
	})
	if errors.Is(err, ErrHeadMoved) {
		return ErrHeadMoved
	}
	if err != nil {
		return fmt.Errorf("chain: append links: %w", err)
	}
	return nil
}

func (t *PostgresTable) Links(ctx context.Context, after int64, limit int) ([]Link, error) {
	rows, err := t.pool.Query(ctx,
		`SELECT position, event_id, digest, hash FROM event_chain WHERE position > $1 ORDER BY position LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("chain: read links: %w", err)
	}
	defer rows.Close()
	var out []Link
	for rows.Next() {
		l, err := scanPostgresLink(rows)
		if err != nil {
			return nil, fmt.Errorf("chain: read links: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chain: read links: %w", err)
	}
	return out, nil
}

func (t *PostgresTable) SaveCheckpoint(ctx context.Context, c Checkpoint) error {
	_, err := t.pool.Exec(ctx, `INSERT INTO event_chain_checkpoints (position, hash, signed_at, key_id, signature)
		VALUES ($1, $2, $3, $4, $5)`, c.Position, c.Hash[:], c.SignedAt, c.KeyID, c.Signature)
	if err != nil {
		return fmt.Errorf("chain: save checkpoint: %w", err)
	}
	return nil
}

func (t *PostgresTable) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	rows, err := t.pool.Query(ctx,
		`SELECT position, hash, signed_at, key_id, signature FROM event_chain_checkpoints ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("chain: read checkpoints: %w", err)
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var (
			c    Checkpoint
			hash []byte
		)
		if err := rows.Scan(&c.Position, &hash, &c.SignedAt, &c.KeyID, &c.Signature); err != nil {
			return nil, fmt.Errorf("chain: read checkpoints: %w", err)
		}
		if len(hash) != len(c.Hash) {
			return nil, fmt.Errorf("chain: checkpoint at %d: hash is not 32 bytes", c.Position)
		}
		copy(c.Hash[:], hash)
		c.SignedAt = c.SignedAt.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chain: read checkpoints: %w", err)
	}
	return out, nil
}

func (t *PostgresTable) Close() error {
	t.pool.Close()
	return nil
}
