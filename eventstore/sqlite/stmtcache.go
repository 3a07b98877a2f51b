package sqlite

import (
	"container/list"
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"
	"sync"
)

// The SQLite driver parses and plans every statement run through
// DB.ExecContext, DB.QueryContext or their Tx twins anew, then throws it
// away; for the short statements careflow runs again and again (a read
// model's queries, an inbox insert, an access record) parsing costs as
// much as running. A cachingConn keeps the statements it ran, per
// connection, least recently used dropped first — as rusqlite's
// prepare_cached and most SQLite bindings do — and runs a query again
// through its prepared statement. A statement still in use (its rows not
// closed) is never shared: a second use prepares a fresh one.

// stmtCacheSize is how many statements each connection keeps.
const stmtCacheSize = 64

// openCaching opens a database/sql pool over the registered "sqlite"
// driver whose connections cache their statements.
func openCaching(dsn string) (*sql.DB, error) {
	probe, err := sql.Open("sqlite", "")
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	_ = probe.Close()
	return sql.OpenDB(cachingConnector{dsn: dsn, drv: drv}), nil
}

type cachingConnector struct {
	dsn string
	drv driver.Driver
}

func (c cachingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cachingConn{inner: conn, byQuery: map[string]*list.Element{}}, nil
}

func (c cachingConnector) Driver() driver.Driver { return c.drv }

type cachedStmt struct {
	query string
	stmt  driver.Stmt
	busy  bool // rows are open on it
	gone  bool // evicted while busy: close when released
}

type cachingConn struct {
	inner   driver.Conn
	mu      sync.Mutex
	byQuery map[string]*list.Element // of *cachedStmt
	lru     list.List                // front: most recently used
}

// acquire returns the cached statement of query, marked busy, preparing
// it if needed; nil when it is busy already (the caller runs query
// uncached).
func (c *cachingConn) acquire(ctx context.Context, query string) (*cachedStmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byQuery[query]; ok {
		cs := el.Value.(*cachedStmt)
		if cs.busy {
			return nil, nil
		}
		c.lru.MoveToFront(el)
		cs.busy = true
		return cs, nil
	}
	prep, ok := c.inner.(driver.ConnPrepareContext)
	if !ok {
		return nil, nil
	}
	st, err := prep.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cs := &cachedStmt{query: query, stmt: st, busy: true}
	c.byQuery[query] = c.lru.PushFront(cs)
	for c.lru.Len() > stmtCacheSize {
		c.evictLocked(c.lru.Back())
	}
	return cs, nil
}

// release frees cs for the next use; a failed statement is dropped, so a
// statement the schema made stale is prepared again.
func (c *cachingConn) release(cs *cachedStmt, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs.busy = false
	if cs.gone {
		_ = cs.stmt.Close()
		return
	}
	if failed {
		if el, ok := c.byQuery[cs.query]; ok {
			c.evictLocked(el)
		}
	}
}

func (c *cachingConn) evictLocked(el *list.Element) {
	cs := el.Value.(*cachedStmt)
	c.lru.Remove(el)
	delete(c.byQuery, cs.query)
	if cs.busy {
		cs.gone = true
		return
	}
	_ = cs.stmt.Close()
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.inner.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	res, err := cs.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	c.release(cs, err != nil)
	return res, err
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.inner.(driver.QueryerContext).QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		c.release(cs, true)
		return nil, err
	}
	return &cachedRows{Rows: rows, release: func() { c.release(cs, false) }}, nil
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) { return c.inner.Prepare(query) }

// PrepareContext lends the connection's cached statement for query when
// it is free, so callers that prepare per transaction do not parse again
// each time: the read models' writers prepare their statements once per
// batch, and a batch following live is an event or two (preparing was 3%
// of the server's CPU under a command load). Closing it gives it back
// instead of finalizing it. A busy one is not shared: the caller gets a
// statement of its own.
func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	cs, err := c.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	}
	return &lentStmt{conn: c, cs: cs}, nil
}

// lentStmt is a cached statement lent by PrepareContext until Close. A
// statement that failed is dropped from the cache when given back, as in
// ExecContext, so one the schema made stale is prepared again.
type lentStmt struct {
	conn   *cachingConn
	cs     *cachedStmt
	failed bool
	closed bool
}

func (s *lentStmt) Close() error {
	if !s.closed {
		s.closed = true
		s.conn.release(s.cs, s.failed)
	}
	return nil
}

func (s *lentStmt) NumInput() int { return s.cs.stmt.NumInput() }

func (s *lentStmt) Exec(args []driver.Value) (driver.Result, error) { //nolint:staticcheck // driver.Stmt needs it
	res, err := s.cs.stmt.Exec(args) //nolint:staticcheck // the driver.Stmt being lent
	s.failed = s.failed || err != nil
	return res, err
}

func (s *lentStmt) Query(args []driver.Value) (driver.Rows, error) { //nolint:staticcheck // driver.Stmt needs it
	rows, err := s.cs.stmt.Query(args) //nolint:staticcheck // the driver.Stmt being lent
	s.failed = s.failed || err != nil
	return rows, err
}

func (s *lentStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	res, err := s.cs.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	s.failed = s.failed || err != nil
	return res, err
}

func (s *lentStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := s.cs.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	s.failed = s.failed || err != nil
	return rows, err
}

func (c *cachingConn) Begin() (driver.Tx, error) { return c.inner.Begin() } //nolint:staticcheck // driver.Conn needs it

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.inner.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *cachingConn) Close() error {
	c.mu.Lock()
	for c.lru.Len() > 0 {
		c.evictLocked(c.lru.Back())
	}
	c.mu.Unlock()
	return c.inner.Close()
}

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// cachedRows gives the statement back when the rows are closed, and passes
// the column type questions through.
type cachedRows struct {
	driver.Rows
	release func()
	closed  bool
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	if !r.closed {
		r.closed = true
		r.release()
	}
	return err
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
