package projections

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
)

// Parsing SQL costs about as much as running it for the small statements a
// projection issues per event. The runner puts a statement cache for the
// batch's transaction into the ctx it passes to Apply; Exec, Query and
// QueryRow prepare each distinct query once per batch through it, so a
// rebuild parses a statement once per few hundred events instead of once
// per event. Outside the runner they fall back to the plain tx methods.
//
// The statements run under a context without cancellation (statementContext):
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
	// direct, on SQLite, runs Exec on the driver connection itself.
	direct *directExec
}

func withStmtCache(ctx context.Context, tx *sql.Tx) context.Context {
	return context.WithValue(ctx, stmtCacheKey{}, &stmtCache{tx: tx, stmts: map[string]*sql.Stmt{}})
}

// withDirectExec is withStmtCache for a transaction begun on conn with
// ctx: Exec then runs its statements straight on conn's driver connection
// (directExec). end must be called once the transaction has ended.
func withDirectExec(ctx context.Context, tx *sql.Tx, conn *sql.Conn) (applyCtx context.Context, end func() error) {
	d := &directExec{conn: conn, txCtx: ctx, stmts: map[string]driver.Stmt{}}
	cache := &stmtCache{tx: tx, stmts: map[string]*sql.Stmt{}, direct: d}
	return context.WithValue(ctx, stmtCacheKey{}, cache), d.end
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

// directExec runs a batch's Exec statements on the driver connection of
// its transaction instead of through database/sql's Stmt, which copies
// and converts every statement's arguments into a new slice: for the
// millions of statements of a rebuild that was the largest allocation of
// the process, about a seventh of its bytes (docs/performance.md, session
// 12). The driver statements are prepared once per transaction, as
// cachedStmt's are, and closed by end.
type directExec struct {
	conn *sql.Conn
	// txCtx is the context the transaction was begun with: once it ends,
	// database/sql rolls the transaction back, and a statement run on the
	// connection after that would run outside it.
	txCtx context.Context
	stmts map[string]driver.Stmt
	args  []driver.NamedValue // reused by every statement
	ended bool
}

// errTxEnded: a statement of a batch whose transaction has ended.
var errTxEnded = errors.New("projections: the batch's transaction has ended")

func (d *directExec) exec(query string, args []any) (res driver.Result, err error) {
	err = d.conn.Raw(func(dc any) error {
		// Checked under the connection's lock, which database/sql's
		// rollback of a transaction whose context ended also takes: a
		// statement that gets past this runs inside the transaction.
		if d.ended {
			return errTxEnded
		}
		if err := d.txCtx.Err(); err != nil {
			return err
		}
		st, err := d.prepared(dc, query)
		if err != nil {
			return err
		}
		values := d.args[:0]
		defer func() {
			clear(values) // lets the arguments go
			d.args = values[:0]
		}()
		for i, a := range args {
			v, err := driverValue(a)
			if err != nil {
				return fmt.Errorf("argument %d: %w", i+1, err)
			}
			values = append(values, driver.NamedValue{Ordinal: i + 1, Value: v})
		}
		// Without cancellation: see statementContext.
		res, err = st.(driver.StmtExecContext).ExecContext(context.Background(), values)
		return err
	})
	return res, err
}

func (d *directExec) prepared(dc any, query string) (driver.Stmt, error) {
	if st, ok := d.stmts[query]; ok {
		return st, nil
	}
	prep, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("projections: driver connection %T cannot prepare statements", dc)
	}
	st, err := prep.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	if _, ok := st.(driver.StmtExecContext); !ok {
		_ = st.Close()
		return nil, fmt.Errorf("projections: driver statement %T cannot run with a context", st)
	}
	d.stmts[query] = st
	return st, nil
}

// end closes the statements once the transaction has ended.
func (d *directExec) end() error {
	return d.conn.Raw(func(any) error {
		d.ended = true
		var errs []error
		for _, st := range d.stmts {
			errs = append(errs, st.Close())
		}
		clear(d.stmts)
		return errors.Join(errs...)
	})
}

// driverValue converts an argument as database/sql does for a driver
// without a NamedValueChecker (SQLite's), without reflection for the
// types the projections bind.
func driverValue(a any) (driver.Value, error) {
	switch v := a.(type) {
	case nil, string, int64, []byte, bool, float64, time.Time:
		return v, nil
	case int:
		return int64(v), nil
	}
	return driver.DefaultParameterConverter.ConvertValue(a)
}

// statementContext returns the context for a statement of Apply: ctx's
// values without its cancellation (see above). If ctx has already ended,
// it returns ctx's error instead.
func statementContext(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

// Exec runs a statement in Apply's transaction, preparing it once per batch
// (on SQLite, on the driver connection itself: directExec).
func Exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if cache, ok := ctx.Value(stmtCacheKey{}).(*stmtCache); ok && cache.tx == tx && cache.direct != nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return cache.direct.exec(query, args)
	}
	st, err := cachedStmt(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return tx.ExecContext(ctx, query, args...)
	}
	sctx, err := statementContext(ctx)
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
	sctx, err := statementContext(ctx)
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
