package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/careflow/careflow/eventstore"
)

// appendRequest is one Append waiting for the writer.
type appendRequest struct {
	ctx       context.Context
	stream    eventstore.StreamID
	expected  eventstore.ExpectedVersion
	commandID string
	events    []eventstore.NewEvent
	// Encoded by the caller's goroutine so the writer does less.
	ids        []string
	occurredAt []any
	done       chan appendOutcome // buffered: the writer never blocks on it
}

type appendOutcome struct {
	result eventstore.AppendResult
	err    error
}

func newAppendRequest(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion,
	commandID string, events []eventstore.NewEvent) (*appendRequest, error) {
	r := &appendRequest{
		ctx: ctx, stream: stream, expected: expected, commandID: commandID, events: events,
		ids:        make([]string, len(events)),
		occurredAt: make([]any, len(events)),
		done:       make(chan appendOutcome, 1),
	}
	for i, e := range events {
		r.ids[i] = e.ID.String()
		at, err := encodeTime(e.Metadata.OccurredAt)
		if err != nil {
			return nil, fmt.Errorf("event %d (%s): %w", i, e.Type, err)
		}
		r.occurredAt[i] = at
	}
	return r, nil
}

func (r *appendRequest) answer(result eventstore.AppendResult, err error) {
	r.done <- appendOutcome{result: result, err: err}
}

// writer owns the single write connection and its prepared statements.
// Only the writer goroutine uses it.
type writer struct {
	conn *sql.Conn
	// txRolledBack is set by SQLite's rollback hook: the transaction ended
	// without COMMIT (our ROLLBACK, or SQLite's own after some errors).
	txRolledBack atomic.Bool

	begin, commit, rollback        *sql.Stmt
	savepoint, release, rollbackTo *sql.Stmt
	check, byCommand, idTaken      *sql.Stmt
	// inserts[k] adds 1<<k rows in one statement.
	inserts [maxInsertShift + 1]*sql.Stmt
	all     []*sql.Stmt
}

// An append's events go in with as few INSERT statements as possible: a
// statement's fixed cost (including AUTOINCREMENT's bookkeeping) is paid
// once per chunk, not per event. Chunks are powers of two up to 64 rows, so
// seven prepared statements cover every size.
const (
	maxInsertShift = 6
	insertColumns  = 15
)

func insertSQL(rows int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (event_id, stream_type, stream_id, version, type, schema_version, data,
		actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, occurred_at, recorded_at) VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	}
	return b.String()
}

// chunkRows is the size of the next INSERT for n remaining rows.
func chunkRows(n int) int {
	return 1 << min(bits.Len(uint(n))-1, maxInsertShift)
}

// The writer's queries. Each is one index seek (TestQueriesUseIndexes).
const (
	// The stream's version and whether the command is already stored, in
	// one round trip. ORDER BY ... LIMIT 1 is one seek; MAX() inside
	// COALESCE would walk the whole stream.
	checkSQL = `SELECT
		COALESCE((SELECT version FROM events WHERE stream_type = ?1 AND stream_id = ?2 ORDER BY version DESC LIMIT 1), 0),
		?3 <> '' AND EXISTS (SELECT 1 FROM events
			WHERE command_id = ?3 AND stream_type = ?1 AND stream_id = ?2 AND command_id <> '')`
	byCommandSQL = `SELECT ` + eventColumns + ` FROM events
		WHERE command_id = ? AND stream_type = ? AND stream_id = ? AND command_id <> '' ORDER BY version`
	idTakenSQL = `SELECT 1 FROM events WHERE event_id = ?`
)

func newWriter(ctx context.Context, db *sql.DB) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: writer connection: %w", err)
	}
	w := &writer{conn: conn}
	err = conn.Raw(func(dc any) error {
		hooks, ok := dc.(msqlite.HookRegisterer)
		if !ok {
			return fmt.Errorf("driver connection %T has no rollback hook", dc)
		}
		hooks.RegisterRollbackHook(func() { w.txRolledBack.Store(true) })
		return nil
	})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("sqlite: writer connection: %w", err)
	}
	prepare := func(query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		if st, err = conn.PrepareContext(ctx, query); err == nil {
			w.all = append(w.all, st)
		}
		return st
	}
	w.begin = prepare(`BEGIN IMMEDIATE`)
	w.commit = prepare(`COMMIT`)
	w.rollback = prepare(`ROLLBACK`)
	w.savepoint = prepare(`SAVEPOINT append_request`)
	w.release = prepare(`RELEASE append_request`)
	w.rollbackTo = prepare(`ROLLBACK TO append_request`)
	w.check = prepare(checkSQL)
	w.byCommand = prepare(byCommandSQL)
	w.idTaken = prepare(idTakenSQL)
	for k := range w.inserts {
		w.inserts[k] = prepare(insertSQL(1 << k))
	}
	if err != nil {
		_ = w.close()
		return nil, fmt.Errorf("sqlite: prepare writer statements: %w", err)
	}
	return w, nil
}

func (w *writer) close() error {
	var errs []error
	for _, st := range w.all {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, w.conn.Close())...)
}

// The writer's statements run under context.Background: a transaction
// holding other requests must not be interrupted by one caller's context.
func (w *writer) exec(st *sql.Stmt, args ...any) (sql.Result, error) {
	return st.ExecContext(context.Background(), args...)
}

// errTxBroken marks a failure after which the transaction as a whole
// cannot go on (SQLite may already have rolled it back).
var errTxBroken = errors.New("sqlite: transaction broken")

// maxGatherWait bounds how long the writer holds a group open for callers
// it expects. A commit (one fsync) takes a millisecond or more; a caller
// that was just answered needs microseconds to come back with its next
// append, so waiting that little for it saves it a commit of its own.
const maxGatherWait = 200 * time.Microsecond

// runWriter is the group-commit loop: it takes every request waiting (up
// to MaxBatch), commits them in one transaction and answers them. It ends
// when Close has closed the queue and the queue is drained.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	batch := make([]*appendRequest, 0, s.cfg.MaxBatch)
	timer := time.NewTimer(maxGatherWait)
	timer.Stop()
	expect := 1
	for {
		first, ok := <-s.requests
		if !ok {
			return
		}
		batch = s.gather(append(batch[:0], first), expect, timer)
		// The callers just answered are the likeliest to come back: expect
		// as many in the next group. A lone caller (expect 1) never waits.
		expect = len(batch)
		s.commitBatch(batch)
		clear(batch)
	}
}

// gather adds to batch what is queued and, while the batch is smaller
// than expect, waits up to maxGatherWait for more.
func (s *Store) gather(batch []*appendRequest, expect int, timer *time.Timer) []*appendRequest {
	expect = min(expect, s.cfg.MaxBatch)
	waiting := false
	defer func() {
		if waiting {
			timer.Stop()
		}
	}()
	for len(batch) < s.cfg.MaxBatch {
		select {
		case r, ok := <-s.requests:
			if !ok {
				return batch
			}
			batch = append(batch, r)
			continue
		default:
		}
		if len(batch) >= expect {
			return batch
		}
		if !waiting {
			timer.Reset(maxGatherWait)
			waiting = true
		}
		select {
		case r, ok := <-s.requests:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		case <-timer.C:
			waiting = false
			return batch
		}
	}
	return batch
}

// commitBatch runs one transaction for the batch. Each request's writes are
// undone on their own when it fails (see appendOne), so a conflict or error
// fails that request alone and the rest of the group still commits. Nobody
// is told "success" before COMMIT has returned: that is the one fsync the
// whole group shares.
func (s *Store) commitBatch(batch []*appendRequest) {
	// A request whose caller gave up before the writer took it is dropped.
	// From here on its context no longer matters: once in a committing
	// transaction, its result stands.
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.answer(eventstore.AppendResult{}, err)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	w := s.writer
	failAll := func(err error) {
		for _, r := range live {
			r.answer(eventstore.AppendResult{}, err)
		}
	}
	recordedAt := s.opts.Clock().UnixNano()
	if _, err := w.exec(w.begin); err != nil {
		// Leave no half-open transaction behind for the next group.
		_, _ = w.exec(w.rollback)
		failAll(fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	w.txRolledBack.Store(false)
	outcomes := make([]appendOutcome, len(live))
	wrote := false
	for i, r := range live {
		res, err := w.appendOne(r, recordedAt)
		if w.txRolledBack.Load() && !errors.Is(err, errTxBroken) {
			// SQLite ended the transaction itself (some errors do): what
			// the group wrote so far is gone, and the next statement would
			// run outside any transaction.
			if err == nil {
				err = errors.New("rolled back by SQLite")
			}
			err = fmt.Errorf("%w: %w", errTxBroken, err)
		}
		if errors.Is(err, errTxBroken) {
			_, _ = w.exec(w.rollback)
			failAll(err)
			return
		}
		outcomes[i] = appendOutcome{result: res, err: err}
		wrote = wrote || (err == nil && !res.Duplicate)
	}
	if _, err := w.exec(w.commit); err != nil {
		_, _ = w.exec(w.rollback)
		err = fmt.Errorf("sqlite: commit: %w", err)
		for i := range outcomes {
			if outcomes[i].err == nil {
				outcomes[i] = appendOutcome{err: err}
			}
		}
		wrote = false
	}
	if wrote {
		// Kept before the wake-up, so a woken subscriber finds them.
		for _, o := range outcomes {
			if o.err == nil && !o.result.Duplicate {
				s.recent.add(o.result.Events)
			}
		}
		s.signal.Broadcast()
	}
	for i, r := range live {
		r.answer(outcomes[i].result, outcomes[i].err)
	}
}

// appendOne runs one request. Its checks only read; its events go in with
// one INSERT when they fit in one (SQLite undoes a failed statement on its
// own), else inside a savepoint of its own. Either way a failed request
// leaves nothing behind and the rest of the group goes on. Only constraint
// violations are a request's own failure: any other error (I/O, disk full)
// may have ended the whole transaction, so it breaks the group.
func (w *writer) appendOne(r *appendRequest, recordedAt int64) (eventstore.AppendResult, error) {
	ctx := context.Background()
	var (
		current   int64
		duplicate bool
	)
	if err := w.check.QueryRowContext(ctx, r.stream.Type, r.stream.ID, r.commandID).Scan(&current, &duplicate); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("%w: check %s: %w", errTxBroken, r.stream, err)
	}
	if duplicate {
		return w.duplicate(r)
	}
	if err := eventstore.CheckExpected(r.stream, r.expected, current); err != nil {
		return eventstore.AppendResult{}, err
	}

	if chunkRows(len(r.events)) == len(r.events) {
		return w.insert(r, current, recordedAt)
	}
	if _, err := w.exec(w.savepoint); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("%w: savepoint: %w", errTxBroken, err)
	}
	res, err := w.insert(r, current, recordedAt)
	if errors.Is(err, errTxBroken) {
		return res, err
	}
	if err != nil {
		if _, rbErr := w.exec(w.rollbackTo); rbErr != nil {
			return eventstore.AppendResult{}, fmt.Errorf("%w: rollback to savepoint after %w: %w", errTxBroken, err, rbErr)
		}
	}
	if _, relErr := w.exec(w.release); relErr != nil {
		return eventstore.AppendResult{}, fmt.Errorf("%w: release savepoint: %w", errTxBroken, relErr)
	}
	return res, err
}

// duplicate answers a repeated command with what its first append stored.
func (w *writer) duplicate(r *appendRequest) (eventstore.AppendResult, error) {
	rows, err := w.byCommand.QueryContext(context.Background(), r.commandID, r.stream.Type, r.stream.ID)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("%w: look up command %s: %w", errTxBroken, r.commandID, err)
	}
	prior, err := scanEvents(rows, 0)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("%w: look up command %s: %w", errTxBroken, r.commandID, err)
	}
	if len(prior) == 0 {
		return eventstore.AppendResult{}, fmt.Errorf("%w: command %s in %s vanished", errTxBroken, r.commandID, r.stream)
	}
	return eventstore.AppendResult{
		Stream:    r.stream,
		Version:   prior[len(prior)-1].Version,
		Events:    prior,
		Duplicate: true,
	}, nil
}

// insert writes the request's events after version current.
func (w *writer) insert(r *appendRequest, current int64, recordedAt int64) (eventstore.AppendResult, error) {
	recorded := decodeTime(sql.NullInt64{Int64: recordedAt, Valid: true})
	result := eventstore.AppendResult{
		Stream:  r.stream,
		Version: current + int64(len(r.events)),
		Events:  make([]eventstore.RecordedEvent, len(r.events)),
	}
	args := make([]any, 0, insertColumns*chunkRows(len(r.events)))
	for start := 0; start < len(r.events); {
		n := chunkRows(len(r.events) - start)
		args = args[:0]
		for i := start; i < start+n; i++ {
			e := &r.events[i]
			md := &e.Metadata
			args = append(args, r.ids[i], r.stream.Type, r.stream.ID, current+int64(i)+1, e.Type, e.SchemaVersion,
				[]byte(e.Data), md.ActorID, md.ActorRole, md.CommandID, md.CorrelationID, md.CausationID,
				md.ClinicID, r.occurredAt[i], recordedAt)
		}
		res, err := w.exec(w.inserts[bits.Len(uint(n))-1], args...)
		if err != nil {
			return eventstore.AppendResult{}, w.insertError(r, start, n, err)
		}
		// The rows of one INSERT get consecutive positions: AUTOINCREMENT
		// takes the largest position ever used plus one for each row in
		// turn, and this connection is the only writer.
		last, err := res.LastInsertId()
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("%w: positions of %s: %w", errTxBroken, r.stream, err)
		}
		for i := start; i < start+n; i++ {
			e := &r.events[i]
			md := e.Metadata
			occurred, _ := r.occurredAt[i].(int64)
			md.OccurredAt = decodeTime(sql.NullInt64{Int64: occurred, Valid: r.occurredAt[i] != nil})
			result.Events[i] = eventstore.RecordedEvent{
				ID:            e.ID,
				Stream:        r.stream,
				Version:       current + int64(i) + 1,
				Position:      last - int64(start+n-1-i),
				Type:          e.Type,
				SchemaVersion: e.SchemaVersion,
				Data:          slices.Clone(e.Data),
				Metadata:      md,
				RecordedAt:    recorded,
			}
		}
		start += n
	}
	return result, nil
}

// insertError explains a failed INSERT of events [start, start+n). A
// reused event id is the caller's mistake; another constraint violation is
// still this request's alone; anything else breaks the group.
func (w *writer) insertError(r *appendRequest, start, n int, err error) error {
	var se *msqlite.Error
	if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_CONSTRAINT {
		return fmt.Errorf("%w: append to %s: %w", errTxBroken, r.stream, err)
	}
	if se.Code() != sqlite3.SQLITE_CONSTRAINT_UNIQUE || !strings.Contains(se.Error(), "events.event_id") {
		return fmt.Errorf("sqlite: append to %s: %w", r.stream, err)
	}
	for i := start; i < start+n; i++ {
		if slices.Contains(r.ids[start:i], r.ids[i]) {
			return fmt.Errorf("%w: event %d (%s): event id %s appears twice", eventstore.ErrInvalidEvent, i, r.events[i].Type, r.ids[i])
		}
		var one int
		if w.idTaken.QueryRowContext(context.Background(), r.ids[i]).Scan(&one) == nil {
			return fmt.Errorf("%w: event %d (%s): event id %s is already stored", eventstore.ErrInvalidEvent, i, r.events[i].Type, r.ids[i])
		}
	}
	return fmt.Errorf("%w: events %d..%d reuse an event id: %w", eventstore.ErrInvalidEvent, start, start+n-1, err)
}
