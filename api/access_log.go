package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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
// transaction and one fsync for all waiting reads, each record in its own
// savepoint), because every read of PHI waits for its record.
// The SQL is plain enough for a PostgreSQL implementation to follow.
type SQLiteAccessLog struct {
	db       *sql.DB
	requests chan *recordRequest
	stopped  chan struct{}
	closeMu  sync.Mutex
	closed   bool
	// prepared are the inserts prepared on db, by the writer alone.
	prepared *recordInserts
}

var _ AccessLog = (*SQLiteAccessLog)(nil)

// maxRecordGroup bounds how many records one transaction commits.
const maxRecordGroup = 256

type recordRequest struct {
	rec     AccessRecord
	objects string
	clients []string
	done    chan error // buffered: the writer never blocks on it
}

const accessLogSchema = `
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
);
CREATE TABLE IF NOT EXISTS access_record_clients ` + accessRecordClientsTable + `;
`

// accessRecordClientsTable is access_record_clients' definition: WITHOUT
// ROWID on SQLite, so each row is written to one b-tree (its key) instead
// of two (a rowid table and the key's index).
const accessRecordClientsTable = `(
	seq       BIGINT NOT NULL REFERENCES access_records(seq),
	client_id TEXT NOT NULL,
	PRIMARY KEY (client_id, seq)
) WITHOUT ROWID`

// OpenSQLiteAccessLog opens (creating if needed) the access log at path.
func OpenSQLiteAccessLog(ctx context.Context, path string) (*SQLiteAccessLog, error) {
	// One connection: SQLite serializes writes anyway, and one connection
	// avoids busy retries under bursts of reads.
	db, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{ForeignKeys: true})
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	if _, err := db.ExecContext(ctx, accessLogSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("access log: schema: %w", err)
	}
	if err := upgradeAccessLog(ctx, db); err != nil {
		_ = db.Close()
		return nil, err
	}
	l := &SQLiteAccessLog{db: db, requests: make(chan *recordRequest, 4*maxRecordGroup), stopped: make(chan struct{})}
	go l.write()
	return l, nil
}

// Close commits the records already handed in, then closes the database.
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

// Record implements AccessLog: it returns once the record and its clients
// are committed.
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
	req := &recordRequest{rec: rec, objects: string(rawObjects), clients: clients, done: make(chan error, 1)}

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
// maxRecordGroup) and commits them in one transaction.
func (l *SQLiteAccessLog) write() {
	defer close(l.stopped)
	defer func() {
		if l.prepared != nil {
			l.prepared.close()
		}
	}()
	group := make([]*recordRequest, 0, maxRecordGroup)
	for first := range l.requests {
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
	}
}

func (l *SQLiteAccessLog) commit(group []*recordRequest) {
	// Records are made by the service itself and almost never fail: the
	// group goes in as it is, and only when one insert fails is it done
	// again record by record, each in a savepoint, so that one bad record
	// fails alone.
	if err := l.commitAll(group); err == nil {
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
	if err := l.prepareInserts(ctx); err != nil {
		return err
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	ins := recordInserts{record: tx.StmtContext(ctx, l.prepared.record), client: tx.StmtContext(ctx, l.prepared.client)}
	defer ins.close()
	for _, r := range group {
		if err := ins.insert(ctx, r); err != nil {
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
		results[i] = insertRecord(ctx, tx, r)
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
		r.done <- results[i]
	}
}

// insertRecord writes one record and its clients.
// recordInserts are the two inserts of a record.
type recordInserts struct {
	record, client *sql.Stmt
}

const (
	insertRecordSQL = `INSERT INTO access_records (id, at, user_id, actor_id, role, method, route,
		request_id, purpose, clinic_id, objects, basis, grant_id, grant_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING seq`
	insertRecordClientSQL = `INSERT INTO access_record_clients (seq, client_id) VALUES (?, ?)`
)

// prepareInserts prepares the inserts on the database once (only the
// writer calls it): preparing them in every group's transaction parsed
// them anew each time.
func (l *SQLiteAccessLog) prepareInserts(ctx context.Context) error {
	if l.prepared != nil {
		return nil
	}
	record, err := l.db.PrepareContext(ctx, insertRecordSQL)
	if err != nil {
		return err
	}
	client, err := l.db.PrepareContext(ctx, insertRecordClientSQL)
	if err != nil {
		_ = record.Close()
		return err
	}
	l.prepared = &recordInserts{record: record, client: client}
	return nil
}

func (s recordInserts) close() {
	_ = s.record.Close()
	_ = s.client.Close()
}

func (s recordInserts) insert(ctx context.Context, r *recordRequest) error {
	rec := r.rec
	var seq int64
	if err := s.record.QueryRowContext(ctx, rec.ID, rec.At.UTC().UnixNano(), rec.UserID, rec.ActorID, rec.Role, rec.Method, rec.Route,
		rec.RequestID, rec.Purpose, rec.ClinicID, r.objects, rec.Basis, rec.EmergencyGrantID, rec.EmergencyReason).Scan(&seq); err != nil {
		return fmt.Errorf("access log: insert: %w", err)
	}
	for _, c := range r.clients {
		if _, err := s.client.ExecContext(ctx, seq, c); err != nil {
			return fmt.Errorf("access log: insert client: %w", err)
		}
	}
	return nil
}

func insertRecord(ctx context.Context, tx *sql.Tx, r *recordRequest) error {
	rec := r.rec
	// RETURNING rather than LastInsertId, which PostgreSQL's driver lacks.
	var seq int64
	err := tx.QueryRowContext(ctx, insertRecordSQL,
		rec.ID, rec.At.UTC().UnixNano(), rec.UserID, rec.ActorID, rec.Role, rec.Method, rec.Route,
		rec.RequestID, rec.Purpose, rec.ClinicID, r.objects, rec.Basis, rec.EmergencyGrantID, rec.EmergencyReason).Scan(&seq)
	if err != nil {
		return fmt.Errorf("access log: insert: %w", err)
	}
	for _, c := range r.clients {
		if _, err := tx.ExecContext(ctx, insertRecordClientSQL, seq, c); err != nil {
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
	rows, err := l.db.QueryContext(ctx, `SELECT r.seq, r.id, r.at, r.user_id, r.actor_id, r.role, r.method, r.route,
		r.request_id, r.purpose, r.clinic_id, r.objects, r.basis, r.grant_id, r.grant_reason
		FROM access_record_clients c JOIN access_records r ON r.seq = c.seq
		WHERE c.client_id = ? AND c.seq > ?`+where+` ORDER BY c.seq LIMIT ?`,
		append(append([]any{clientID, after}, args...), limit)...)
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
	for _, col := range []string{"basis", "grant_id", "grant_reason"} {
		if have[col] {
			continue
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE access_records ADD COLUMN `+col+` TEXT NOT NULL DEFAULT ''`); err != nil {
			return fmt.Errorf("access log: add column %s: %w", col, err)
		}
	}
	if pgsql.Is(db) {
		return nil
	}
	return withoutRowidClients(ctx, db)
}

// withoutRowidClients rebuilds a SQLite log's access_record_clients made
// before it was WITHOUT ROWID, keeping every row, in one transaction.
func withoutRowidClients(ctx context.Context, db *sql.DB) error {
	var def string
	err := db.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'access_record_clients'`).Scan(&def)
	if err != nil {
		return fmt.Errorf("access log: read schema: %w", err)
	}
	if strings.Contains(def, "WITHOUT ROWID") {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("access log: rebuild access_record_clients: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range []string{
		`CREATE TABLE access_record_clients_rebuilt ` + accessRecordClientsTable,
		`INSERT INTO access_record_clients_rebuilt (seq, client_id) SELECT seq, client_id FROM access_record_clients`,
		`DROP TABLE access_record_clients`,
		`ALTER TABLE access_record_clients_rebuilt RENAME TO access_record_clients`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("access log: rebuild access_record_clients: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("access log: rebuild access_record_clients: %w", err)
	}
	return nil
}
