package api

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/careflow/careflow/eventstore/sqlite"
	"github.com/careflow/careflow/projections/pgsql"
)

// AccessRecord is one read of protected health information: who read
// what, when and why. It names objects by id only, never their content.
type AccessRecord struct {
	// Seq orders the log; the store assigns it.
	Seq       int64     `json:"seq"`
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	UserID    string    `json:"userId"`
	ActorID   string    `json:"actorId"`
	Role      string    `json:"role"`
	Method    string    `json:"method"`
	Route     string    `json:"route"`
	RequestID string    `json:"requestId,omitempty"`
	// Purpose is the caller's X-Careflow-Purpose, when sent.
	Purpose  string `json:"purpose,omitempty"`
	ClinicID string `json:"clinicId,omitempty"`
	// ClientIDs are the clients whose information the answer held.
	ClientIDs []string `json:"clientIds"`
	// Objects names what was read: {"sessionId": "...", ...}.
	Objects map[string]string `json:"objects"`
	// Basis is why the reader was allowed (BasisSelf, BasisCareTeam,
	// BasisClinicRole, BasisEmergency, BasisSystemAdmin); empty on records
	// made before it was kept.
	Basis string `json:"basis,omitempty"`
	// BreakGlass marks a read under an emergency access grant, named by
	// EmergencyGrantID with its EmergencyReason.
	BreakGlass       bool   `json:"breakGlass"`
	EmergencyGrantID string `json:"emergencyGrantId,omitempty"`
	EmergencyReason  string `json:"emergencyReason,omitempty"`
}

// AccessLog is the durable log of PHI reads, kept apart from the clinical
// events: it grows with every read and holds no domain facts.
// Implementations must make a record durable before Record returns, and
// never change or drop a record.
type AccessLog interface {
	Record(ctx context.Context, rec AccessRecord) error
	// ForClient lists the reads of clientID's information with Seq above
	// after, oldest first, at most limit of them.
	ForClient(ctx context.Context, clientID string, after int64, limit int) ([]AccessRecord, error)
	// Disclosures is ForClient restricted to reads at or after since by
	// anyone but the client and their care team (Basis other than
	// BasisSelf and BasisCareTeam; for records without a basis, readers
	// other than clients and providers).
	Disclosures(ctx context.Context, clientID string, since time.Time, after int64, limit int) ([]AccessRecord, error)
}

// SQLiteAccessLog is an AccessLog in its own SQLite file (WAL,
// synchronous=FULL: a record is on disk before the read is answered).
// Records that arrive together are committed together (group commit: one
// transaction and one fsync for all waiting reads), because every read of
// PHI waits for its record.
//
// A record is durable as one row that names its clients (access_records.
// clients). The per-client index that listings use (access_client_ranges)
// is written behind, in batches, by the same writer: at most indexEvery
// after a record, or once indexBatch records wait, and always before a
// listing is answered, so a listing sees every record acknowledged before
// it. Writing the index in the read's own commit cost a b-tree page per
// client per group, about half of a read's server CPU under load
// (docs/performance.md). After a crash the index resumes from its
// checkpoint (access_index_state), written in the same transaction as its
// rows.
//
// The SQL is plain enough for a PostgreSQL implementation to follow.
type SQLiteAccessLog struct {
	db       *sql.DB
	requests chan *recordRequest
	// indexNow asks the writer to bring the client index up to date.
	indexNow chan chan error
	stopped  chan struct{}
	closeMu  sync.Mutex
	closed   bool
	opts     accessLogOptions
	// deferIndex: the client index is written behind (SQLite). On
	// PostgreSQL it is written with each record: several servers may share
	// the log there, and an identity's numbers can commit out of order, so
	// a checkpoint by sequence number could pass over a record.
	deferIndex bool
	// Owned by the writer: the insert prepared on db, and the records
	// committed and not yet indexed, in seq order, so that the index need
	// not read and decode them again (that was most of its cost).
	prepared *sql.Stmt
	pending  []indexEntry
}

// accessLogOptions pace the client index; tests shorten or stretch them.
type accessLogOptions struct {
	indexEvery time.Duration
	indexBatch int
}

func (o *accessLogOptions) setDefaults() {
	if o.indexEvery <= 0 {
		o.indexEvery = 250 * time.Millisecond
	}
	if o.indexBatch <= 0 {
		o.indexBatch = 128
	}
}

var _ AccessLog = (*SQLiteAccessLog)(nil)

// maxRecordGroup bounds how many records one transaction commits.
const maxRecordGroup = 256

type recordRequest struct {
	rec       AccessRecord
	objects   string
	clientIDs []string   // sorted, once each
	clients   string     // clientIDs as the row keeps them (encodeClients)
	done      chan error // buffered: the writer never blocks on it
	seq       int64      // set by the writer (SQLite)
}

// indexEntry is a committed record the client index has not reached yet.
type indexEntry struct {
	seq     int64
	clients []string
}

// maxPendingEntries bounds the records the writer remembers for the
// index; past it (the index keeps failing) it forgets them and indexes
// from the database.
const maxPendingEntries = 1 << 16

// encodeClients is how a record names its clients in its row: a JSON
// array, or "" for none.
func encodeClients(clients []string) string {
	if len(clients) == 0 {
		return ""
	}
	raw, _ := json.Marshal(clients) // strings always encode
	return string(raw)
}

// accessRecordsSchema is the log itself, the same on both databases.
const accessRecordsSchema = `
CREATE TABLE IF NOT EXISTS access_records (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	id         TEXT NOT NULL UNIQUE,
	at         BIGINT NOT NULL,
	user_id    TEXT NOT NULL,
	actor_id   TEXT NOT NULL,
	role       TEXT NOT NULL,
	method     TEXT NOT NULL,
	route      TEXT NOT NULL,
	request_id TEXT NOT NULL,
	purpose    TEXT NOT NULL,
	clinic_id  TEXT NOT NULL,
	objects    TEXT NOT NULL
)`

// sqliteClientIndexSchema is SQLite's client index, written behind the
// records (see SQLiteAccessLog): for each batch of records indexed, one
// row per client naming the first and last record of the batch that hold
// the client. A listing reads the records of its client's ranges and
// keeps those whose clients column names the client. An inbox read names
// every client on the page, so a row per client and record (PostgreSQL's
// index) cost a b-tree insert per client per read; a range per batch
// costs one per client per batch.
const sqliteClientIndexSchema = `
CREATE TABLE IF NOT EXISTS access_client_ranges (
	client_id TEXT NOT NULL,
	first_seq INTEGER NOT NULL,
	last_seq  INTEGER NOT NULL,
	PRIMARY KEY (client_id, first_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_index_state (
	id              INTEGER PRIMARY KEY CHECK (id = 1),
	indexed_through INTEGER NOT NULL
)`

// postgresClientIndexSchema is PostgreSQL's client index: a row per client
// and record, written with the record.
const postgresClientIndexSchema = `
CREATE TABLE IF NOT EXISTS access_record_clients (
	seq       BIGINT NOT NULL REFERENCES access_records(seq),
	client_id TEXT NOT NULL,
	PRIMARY KEY (client_id, seq)
)`

// OpenSQLiteAccessLog opens (creating if needed) the access log at path.
func OpenSQLiteAccessLog(ctx context.Context, path string) (*SQLiteAccessLog, error) {
	return openSQLiteAccessLog(ctx, path, accessLogOptions{})
}

func openSQLiteAccessLog(ctx context.Context, path string, opts accessLogOptions) (*SQLiteAccessLog, error) {
	// One connection: SQLite serializes writes anyway, and one connection
	// avoids busy retries under bursts of reads.
	db, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{ForeignKeys: true})
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	if _, err := db.ExecContext(ctx, accessRecordsSchema+";"+sqliteClientIndexSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("access log: schema: %w", err)
	}
	if err := upgradeAccessLog(ctx, db); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := moveToClientRanges(ctx, db); err != nil {
		_ = db.Close()
		return nil, err
	}
	return startAccessLog(ctx, db, true, opts)
}

// startAccessLog brings the client index up to date (a crash may have
// left records it has not reached) and starts the writer.
func startAccessLog(ctx context.Context, db *sql.DB, deferIndex bool, opts accessLogOptions) (*SQLiteAccessLog, error) {
	opts.setDefaults()
	l := &SQLiteAccessLog{db: db, requests: make(chan *recordRequest, 4*maxRecordGroup),
		indexNow: make(chan chan error), stopped: make(chan struct{}), opts: opts, deferIndex: deferIndex}
	if deferIndex {
		if err := l.indexPending(ctx); err != nil {
			return nil, errors.Join(err, db.Close())
		}
	}
	go l.write()
	return l, nil
}

// Close commits the records already handed in and indexes them, then
// closes the database.
func (l *SQLiteAccessLog) Close() error {
	l.closeMu.Lock()
	if !l.closed {
		l.closed = true
		close(l.requests)
	}
	l.closeMu.Unlock()
	<-l.stopped
	return l.db.Close()
}

// Record implements AccessLog: it returns once the record, naming its
// clients, is committed.
func (l *SQLiteAccessLog) Record(ctx context.Context, rec AccessRecord) error {
	if rec.ID == "" || rec.At.IsZero() || rec.ActorID == "" || rec.Route == "" {
		return errors.New("access log: a record needs an id, a time, an actor and a route")
	}
	objects := rec.Objects
	if objects == nil {
		objects = map[string]string{}
	}
	rawObjects, err := json.Marshal(objects)
	if err != nil {
		return fmt.Errorf("access log: objects: %w", err)
	}
	clients := slices.Clone(rec.ClientIDs)
	slices.Sort(clients)
	clients = slices.DeleteFunc(slices.Compact(clients), func(c string) bool { return c == "" })
	req := &recordRequest{rec: rec, objects: string(rawObjects), clientIDs: clients, clients: encodeClients(clients),
		done: make(chan error, 1)}

	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return errors.New("access log: closed")
	}
	select {
	case l.requests <- req:
		l.closeMu.Unlock()
	case <-ctx.Done():
		l.closeMu.Unlock()
		return ctx.Err()
	}
	// Once handed in, the record is written whatever happens to ctx: the
	// caller must not answer before knowing it is on disk.
	return <-req.done
}

// write is the group-commit loop: it takes every record waiting (up to
// maxRecordGroup) and commits them in one transaction. Between groups it
// writes the client index (see SQLiteAccessLog).
func (l *SQLiteAccessLog) write() {
	defer close(l.stopped)
	defer func() {
		if l.prepared != nil {
			_ = l.prepared.Close()
		}
	}()
	group := make([]*recordRequest, 0, maxRecordGroup)
	var due <-chan time.Time // set while records wait for the index
	for {
		select {
		case first, ok := <-l.requests:
			if !ok {
				// Closing: index what is left. A failure here is
				// repaired on the next open.
				if l.deferIndex {
					_ = l.indexPending(context.Background())
				}
				return
			}
			group = append(group[:0], first)
		fill:
			for len(group) < maxRecordGroup {
				select {
				case r, ok := <-l.requests:
					if !ok {
						break fill
					}
					group = append(group, r)
				default:
					break fill
				}
			}
			l.commit(group)
			// A batch per indexBatch records committed, so that the
			// index keeps up however large the groups get.
			for len(l.pending) >= l.opts.indexBatch {
				if !l.indexSome() {
					break
				}
			}
		case done := <-l.indexNow:
			done <- l.indexPending(context.Background())
		case <-due:
			due = nil
			l.indexSome()
		}
		switch {
		case len(l.pending) == 0:
			due = nil
		case due == nil:
			due = time.After(l.opts.indexEvery)
		}
	}
}

func (l *SQLiteAccessLog) commit(group []*recordRequest) {
	// Records are made by the service itself and almost never fail: the
	// group goes in as it is, and only when one insert fails is it done
	// again record by record, each in a savepoint, so that one bad record
	// fails alone.
	if err := l.commitAll(group); err == nil {
		if l.deferIndex {
			for _, r := range group {
				l.remember(r)
			}
		}
		for _, r := range group {
			r.done <- nil
		}
		return
	}
	l.commitIsolating(group)
}

// commitAll commits every record of group in one transaction, or none.
func (l *SQLiteAccessLog) commitAll(group []*recordRequest) error {
	ctx := context.Background()
	// Before the transaction: on SQLite it holds the one connection.
	if l.deferIndex {
		if err := l.prepareInsert(ctx); err != nil {
			return err
		}
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	var ins *sql.Stmt
	if l.prepared != nil {
		ins = tx.StmtContext(ctx, l.prepared)
		defer func() { _ = ins.Close() }()
	}
	for _, r := range group {
		if err := l.insertRecord(ctx, tx, ins, r); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// commitIsolating commits group with one savepoint a record: each record
// gets its own result.
func (l *SQLiteAccessLog) commitIsolating(group []*recordRequest) {
	ctx := context.Background()
	fail := func(err error) {
		for _, r := range group {
			r.done <- err
		}
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("access log: begin: %w", err))
		return
	}
	results := make([]error, len(group))
	for i, r := range group {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT access_record`); err != nil {
			_ = tx.Rollback()
			fail(fmt.Errorf("access log: savepoint: %w", err))
			return
		}
		results[i] = l.insertRecord(ctx, tx, nil, r)
		if results[i] != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO access_record`); err != nil {
				_ = tx.Rollback()
				fail(fmt.Errorf("access log: rollback to savepoint: %w", err))
				return
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE access_record`); err != nil {
			_ = tx.Rollback()
			fail(fmt.Errorf("access log: release savepoint: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("access log: commit: %w", err))
		return
	}
	for i, r := range group {
		if results[i] == nil && l.deferIndex {
			l.remember(r)
		}
		r.done <- results[i]
	}
}

// remember keeps a committed record for the index. Past
// maxPendingEntries (the index keeps failing) the writer forgets them all
// and the index reads them from the database.
func (l *SQLiteAccessLog) remember(r *recordRequest) {
	if len(l.pending) >= maxPendingEntries {
		l.pending = nil
	}
	l.pending = append(l.pending, indexEntry{seq: r.seq, clients: r.clientIDs})
}

// pendingAfter returns the remembered records that follow through
// without a gap, at most indexBatch; none when memory does not hold the
// record right after through (after a restart, or around records another
// process wrote), and the index then reads the database.
func (l *SQLiteAccessLog) pendingAfter(through int64) []indexEntry {
	i := l.pendingFrom(through + 1)
	if i == len(l.pending) || l.pending[i].seq != through+1 {
		return nil
	}
	j := i + 1
	for j < len(l.pending) && j-i < l.opts.indexBatch && l.pending[j].seq == l.pending[j-1].seq+1 {
		j++
	}
	return l.pending[i:j]
}

// forget drops the remembered records up to seq: indexed.
func (l *SQLiteAccessLog) forget(seq int64) {
	l.pending = append(l.pending[:0], l.pending[l.pendingFrom(seq+1):]...)
}

// pendingFrom is the index of the first remembered record at or after seq.
func (l *SQLiteAccessLog) pendingFrom(seq int64) int {
	i, _ := slices.BinarySearchFunc(l.pending, seq, func(e indexEntry, seq int64) int { return cmp.Compare(e.seq, seq) })
	return i
}

// indexSome writes one batch of the client index and says whether it
// indexed anything. One batch at a time, between groups of records: reads
// wait for their records, and a large catch-up in one go held them up for
// its whole length. A failure is tried again with the next batch (and
// reported by the next listing).
func (l *SQLiteAccessLog) indexSome() bool {
	n, err := l.indexBatch(context.Background())
	return err == nil && n > 0
}

// indexPending writes the client index of every record it has not
// reached, in batches of indexBatch records at most, each with its
// checkpoint in one transaction, until a batch finds nothing (a short
// batch may have stopped at a record another process wrote). Only the
// writer (or the opener, before it starts) calls it.
func (l *SQLiteAccessLog) indexPending(ctx context.Context) error {
	for {
		n, err := l.indexBatch(ctx)
		if err != nil {
			return fmt.Errorf("access log: index: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}

// indexBatch indexes the next indexBatch records at most and says how
// many it read: one range per client they name.
func (l *SQLiteAccessLog) indexBatch(ctx context.Context) (int, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	var through int64
	if err := tx.QueryRowContext(ctx, `SELECT indexed_through FROM access_index_state WHERE id = 1`).Scan(&through); err != nil {
		return 0, err
	}
	l.forget(through)
	entries := l.pendingAfter(through)
	if entries == nil {
		if entries, err = l.readUnindexed(ctx, tx, through); err != nil {
			return 0, err
		}
	}
	if len(entries) == 0 {
		return 0, nil
	}
	type span struct{ first, last int64 }
	spans := map[string]span{}
	for _, e := range entries {
		for _, id := range e.clients {
			sp, ok := spans[id]
			if !ok {
				sp.first = e.seq
			}
			sp.last = e.seq
			spans[id] = sp
		}
	}
	last := entries[len(entries)-1].seq
	ins, err := tx.PrepareContext(ctx, `INSERT INTO access_client_ranges (client_id, first_seq, last_seq) VALUES (?, ?, ?)`)
	if err != nil {
		return 0, err
	}
	defer func() { _ = ins.Close() }()
	for _, client := range slices.Sorted(maps.Keys(spans)) {
		sp := spans[client]
		if _, err := ins.ExecContext(ctx, client, sp.first, sp.last); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE access_index_state SET indexed_through = ? WHERE id = 1`, last); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	l.forget(last)
	return len(entries), nil
}

// readUnindexed reads the next indexBatch records after through from the
// database, with their clients.
func (l *SQLiteAccessLog) readUnindexed(ctx context.Context, tx *sql.Tx, through int64) ([]indexEntry, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, clients FROM access_records WHERE seq > ? ORDER BY seq LIMIT ?`,
		through, l.opts.indexBatch)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var entries []indexEntry
	for rows.Next() {
		var (
			e       indexEntry
			clients string
		)
		if err := rows.Scan(&e.seq, &clients); err != nil {
			return nil, err
		}
		if clients != "" {
			if err := json.Unmarshal([]byte(clients), &e.clients); err != nil {
				return nil, fmt.Errorf("record %d: clients: %w", e.seq, err)
			}
		}
		entries = append(entries, e)
	}
	return entries, rows.Err()
}

// catchUpIndex has the writer index every record acknowledged so far.
func (l *SQLiteAccessLog) catchUpIndex(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case l.indexNow <- done:
	case <-l.stopped:
		return errors.New("access log: closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

const insertRecordSQL = `INSERT INTO access_records (id, at, user_id, actor_id, role, method, route,
	request_id, purpose, clinic_id, objects, basis, grant_id, grant_reason, clients)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// prepareInsert prepares the insert on the database once (only the writer
// calls it): preparing it in every group's transaction parsed it anew
// each time.
func (l *SQLiteAccessLog) prepareInsert(ctx context.Context) error {
	if l.prepared != nil {
		return nil
	}
	stmt, err := l.db.PrepareContext(ctx, insertRecordSQL)
	if err != nil {
		return err
	}
	l.prepared = stmt
	return nil
}

// insertRecord writes one record in tx, through ins (the prepared insert,
// or nil). A log that indexes as it writes also writes the record's
// clients.
func (l *SQLiteAccessLog) insertRecord(ctx context.Context, tx *sql.Tx, ins *sql.Stmt, r *recordRequest) error {
	rec := r.rec
	args := []any{rec.ID, rec.At.UTC().UnixNano(), rec.UserID, rec.ActorID, rec.Role, rec.Method, rec.Route,
		rec.RequestID, rec.Purpose, rec.ClinicID, r.objects, rec.Basis, rec.EmergencyGrantID, rec.EmergencyReason, r.clients}
	if l.deferIndex {
		var (
			res sql.Result
			err error
		)
		if ins != nil {
			res, err = ins.ExecContext(ctx, args...)
		} else {
			res, err = tx.ExecContext(ctx, insertRecordSQL, args...)
		}
		if err == nil {
			r.seq, err = res.LastInsertId()
		}
		if err != nil {
			return fmt.Errorf("access log: insert: %w", err)
		}
		return nil
	}
	// RETURNING rather than LastInsertId, which PostgreSQL's driver lacks.
	var seq int64
	if err := tx.QueryRowContext(ctx, insertRecordSQL+` RETURNING seq`, args...).Scan(&seq); err != nil {
		return fmt.Errorf("access log: insert: %w", err)
	}
	for _, c := range r.clientIDs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO access_record_clients (seq, client_id) VALUES (?, ?)`, seq, c); err != nil {
			return fmt.Errorf("access log: insert client: %w", err)
		}
	}
	return nil
}

// ForClient implements AccessLog.
func (l *SQLiteAccessLog) ForClient(ctx context.Context, clientID string, after int64, limit int) ([]AccessRecord, error) {
	return l.list(ctx, clientID, "", nil, after, limit)
}

// Disclosures implements AccessLog.
func (l *SQLiteAccessLog) Disclosures(ctx context.Context, clientID string, since time.Time, after int64, limit int) ([]AccessRecord, error) {
	return l.list(ctx, clientID, ` AND r.at >= ? AND r.basis NOT IN ('self', 'care_team')
		AND NOT (r.basis = '' AND r.role IN ('client', 'provider'))`, []any{since.UTC().UnixNano()}, after, limit)
}

// list reads clientID's records above after, with the extra condition.
func (l *SQLiteAccessLog) list(ctx context.Context, clientID, where string, args []any, after int64, limit int) ([]AccessRecord, error) {
	if limit < 1 {
		return nil, errors.New("access log: limit must be positive")
	}
	if l.deferIndex {
		if err := l.catchUpIndex(ctx); err != nil {
			return nil, err
		}
	}
	query, params := rangesQuery(where), []any{clientID, clientID, after, after, after, clientID}
	if !l.deferIndex {
		query, params = `SELECT r.seq, r.id, r.at, r.user_id, r.actor_id, r.role, r.method, r.route,
			r.request_id, r.purpose, r.clinic_id, r.objects, r.basis, r.grant_id, r.grant_reason
			FROM access_record_clients c JOIN access_records r ON r.seq = c.seq
			WHERE c.client_id = ? AND c.seq > ?`+where+` ORDER BY c.seq LIMIT ?`, []any{clientID, after}
	}
	params = append(append(params, args...), limit)
	rows, err := l.db.QueryContext(ctx, query, params...)
	if err != nil {
		return nil, fmt.Errorf("access log: list: %w", err)
	}
	out := []AccessRecord{}
	for rows.Next() {
		var (
			rec     AccessRecord
			at      int64
			objects string
		)
		if err := rows.Scan(&rec.Seq, &rec.ID, &at, &rec.UserID, &rec.ActorID, &rec.Role, &rec.Method, &rec.Route,
			&rec.RequestID, &rec.Purpose, &rec.ClinicID, &objects, &rec.Basis, &rec.EmergencyGrantID, &rec.EmergencyReason); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("access log: list: %w", err)
		}
		rec.At = time.Unix(0, at).UTC()
		rec.BreakGlass = rec.Basis == BasisEmergency
		if err := json.Unmarshal([]byte(objects), &rec.Objects); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("access log: record %d: %w", rec.Seq, err)
		}
		out = append(out, rec)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("access log: list: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("access log: list: %w", err)
	}
	// A record can name clients of other clinics (a provider's inbox spans
	// their clinics): a listing for one client names only that client.
	for i := range out {
		out[i].ClientIDs = []string{clientID}
	}
	return out, nil
}

// rangesQuery lists a client's records from SQLite's client ranges, with
// the extra condition where. It starts at the range holding the first
// record after "after" (ranges of a client never overlap), and orders by
// range, then record: the order of the index and of the rowid, so SQLite
// sorts nothing, and the same as by record since the ranges are
// ascending. A record naming no clients keeps an empty string, which
// json_each refuses (NULLIF turns it into NULL, which json_each reads as
// empty), and may lie inside a range. Parameters:
// client, client, after, after, after, client, where's, limit.
func rangesQuery(where string) string {
	return `SELECT r.seq, r.id, r.at, r.user_id, r.actor_id, r.role, r.method, r.route,
		r.request_id, r.purpose, r.clinic_id, r.objects, r.basis, r.grant_id, r.grant_reason
		FROM access_client_ranges c JOIN access_records r ON r.seq BETWEEN c.first_seq AND c.last_seq
		WHERE c.client_id = ?
			AND c.first_seq >= COALESCE((SELECT MAX(first_seq) FROM access_client_ranges
				WHERE client_id = ? AND first_seq <= ?), 0)
			AND c.last_seq > ? AND r.seq > ?
			AND EXISTS (SELECT 1 FROM json_each(NULLIF(r.clients, '')) WHERE json_each.value = ?)` + where + `
		ORDER BY c.first_seq, r.seq LIMIT ?`
}

// upgradeAccessLog adds the columns later versions keep to a log made by
// an earlier one (records written before keep them empty).
func upgradeAccessLog(ctx context.Context, db *sql.DB) error {
	have := map[string]bool{}
	columns := `SELECT name FROM pragma_table_info('access_records')`
	if pgsql.Is(db) {
		columns = `SELECT column_name::text FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = 'access_records'`
	}
	rows, err := db.QueryContext(ctx, columns)
	if err != nil {
		return fmt.Errorf("access log: read schema: %w", err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			_ = rows.Close()
			return fmt.Errorf("access log: read schema: %w", err)
		}
		have[name] = true
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("access log: read schema: %w", err)
	}
	for _, col := range []string{"basis", "grant_id", "grant_reason", "clients"} {
		if have[col] {
			continue
		}
		// IF NOT EXISTS on PostgreSQL: servers sharing the log may start
		// together (SQLite has no such clause, and one process opens it).
		add := `ALTER TABLE access_records ADD COLUMN `
		if pgsql.Is(db) {
			add += `IF NOT EXISTS `
		}
		if _, err := db.ExecContext(ctx, add+col+` TEXT NOT NULL DEFAULT ''`); err != nil {
			return fmt.Errorf("access log: add column %s: %w", col, err)
		}
	}
	return nil
}

// moveToClientRanges brings a SQLite log to the client ranges, in one
// transaction. A log made before them indexed each record's clients in
// access_record_clients, a row per client and record: each such row
// becomes a range of one record, the record's clients column is filled
// from them, the table is dropped, and the index starts after the last
// record. A new log starts from the beginning.
//
// The table back beside the ranges means an older build wrote to a moved
// log (a rollback, then forward again): its records get their clients
// column from the table too, and the index is rebuilt from the first
// record, since ranges and checkpoint may no longer fit the records.
func moveToClientRanges(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("access log: move to client ranges: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var old, moved int
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'access_record_clients'),
		(SELECT COUNT(*) FROM access_index_state)`).Scan(&old, &moved); err != nil {
		return fmt.Errorf("access log: move to client ranges: %w", err)
	}
	// WHERE true: SQLite needs it before ON CONFLICT in INSERT ... SELECT.
	steps := []string{`INSERT INTO access_index_state (id, indexed_through)
		SELECT 1, COALESCE(MAX(seq), 0) FROM access_records WHERE true ON CONFLICT (id) DO NOTHING`}
	fill := `WITH named AS (SELECT seq, json_group_array(client_id) AS clients
			FROM (SELECT seq, client_id FROM access_record_clients ORDER BY seq, client_id) GROUP BY seq)
		UPDATE access_records SET clients = named.clients FROM named
		WHERE access_records.seq = named.seq AND access_records.clients = ''`
	switch {
	case old > 0 && moved > 0:
		steps = []string{fill, `DROP TABLE access_record_clients`, `DELETE FROM access_client_ranges`,
			`UPDATE access_index_state SET indexed_through = 0`}
	case old > 0:
		steps = []string{
			fill,
			`INSERT INTO access_client_ranges (client_id, first_seq, last_seq)
				SELECT client_id, seq, seq FROM access_record_clients`,
			`DROP TABLE access_record_clients`,
			`INSERT INTO access_index_state (id, indexed_through) SELECT 1, COALESCE(MAX(seq), 0) FROM access_records`,
		}
	}
	for _, stmt := range steps {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("access log: move to client ranges: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("access log: move to client ranges: %w", err)
	}
	return nil
}
