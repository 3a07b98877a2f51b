package projections

import (
	"context"
	"database/sql"
)

// Parsing SQL costs about as much as running it for the small statements a
// projection issues per event. The runner puts a statement cache for the
// batch's transaction into the ctx it passes to Apply; Exec, Query and
// QueryRow prepare each distinct query once per batch through it, so a
// rebuild parses a statement once per few hundred events instead of once
// per event. Outside the runner they fall back to the plain tx methods.
//
// The statements run under a context without cancellation (StatementContext):
// the SQLite driver starts a goroutine per statement to watch a context
// that can be cancelled, which cost a third of a rebuild's CPU. A
// cancelled runner still stops at the next statement: database/sql rolls
// the transaction back when the batch's context ends, and the statements
// after that fail.

type stmtCacheKey struct{}

// stmtCache holds the statements prepared in one transaction; they are
// closed with it.
type stmtCache struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func withStmtCache(ctx context.Context, tx *sql.Tx) context.Context {
	return context.WithValue(ctx, stmtCacheKey{}, &stmtCache{tx: tx, stmts: map[string]*sql.Stmt{}})
}

func cachedStmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	cache, ok := ctx.Value(stmtCacheKey{}).(*stmtCache)
	if !ok || cache.tx != tx {
		return nil, nil
	}
	if st, ok := cache.stmts[query]; ok {
		return st, nil
	}
	st, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cache.stmts[query] = st
	return st, nil
}

// StatementContext returns the context for a statement of Apply: ctx's
// values without its cancellation (see above). If ctx has already ended,
// it returns ctx's error instead.
func StatementContext(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

// Exec runs a statement in Apply's transaction, preparing it once per batch.
func Exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, err := cachedStmt(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return tx.ExecContext(ctx, query, args...)
	}
	sctx, err := StatementContext(ctx)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(sctx, args...)
}

// Query runs a query in Apply's transaction, preparing it once per batch.
func Query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	st, err := cachedStmt(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return tx.QueryContext(ctx, query, args...)
	}
	sctx, err := StatementContext(ctx)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(sctx, args...)
}

// QueryRow runs a one-row query in Apply's transaction, preparing it once
// per batch. A preparation error surfaces from Scan, as with sql.Row.
func QueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	st, err := cachedStmt(ctx, tx, query)
	if err != nil || st == nil || ctx.Err() != nil {
		// Preparing again through the tx reports the same error at Scan,
		// as it does a cancelled ctx.
		return tx.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(context.WithoutCancel(ctx), args...)
}
