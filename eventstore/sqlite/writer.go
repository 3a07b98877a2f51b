package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
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

	begin, commit, rollback          *sql.Stmt
	savepoint, release, rollbackTo   *sql.Stmt
	streamVersion, byCommand, insert *sql.Stmt
	all                              []*sql.Stmt
}

func newWriter(ctx context.Context, db *sql.DB) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: writer connection: %w", err)
	}
	w := &writer{conn: conn}
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
	// ORDER BY ... LIMIT 1 is one index seek; COALESCE(MAX()) would walk
	// the stream.
	w.streamVersion = prepare(`SELECT version FROM events WHERE stream_type = ? AND stream_id = ? ORDER BY version DESC LIMIT 1`)
	w.byCommand = prepare(`SELECT ` + eventColumns + ` FROM events
		WHERE stream_type = ? AND stream_id = ? AND command_id = ? AND command_id <> '' ORDER BY version`)
	w.insert = prepare(`INSERT INTO events (event_id, stream_type, stream_id, version, type, schema_version, data,
		actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, occurred_at, recorded_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
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

var probeBatches int
var probeCommit, probeTx time.Duration

// errTxBroken marks a failure after which the transaction as a whole
// cannot go on (SQLite may already have rolled it back).
var errTxBroken = errors.New("sqlite: transaction broken")

// runWriter is the group-commit loop: it takes every request waiting (up
// to MaxBatch), commits them in one transaction and answers them. It ends
// when Close has closed the queue and the queue is drained.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	batch := make([]*appendRequest, 0, s.cfg.MaxBatch)
	for {
		first, ok := <-s.requests
		if !ok {
			return
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < s.cfg.MaxBatch {
			select {
			case r, ok := <-s.requests:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commitBatch(batch)
		clear(batch)
	}
}

// commitBatch runs one transaction for the batch. Each request gets its own
// savepoint, so a conflict or error rolls back that request alone. Nobody
// is told "success" before COMMIT has returned.
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
	probeBatches++
	t0 := time.Now()
	defer func() { probeTx += time.Since(t0) }()
	recordedAt := s.opts.Clock().UnixNano()
	if _, err := w.exec(w.begin); err != nil {
		failAll(fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	outcomes := make([]appendOutcome, len(live))
	wrote := false
	for i, r := range live {
		res, err := w.appendOne(r, recordedAt)
		if errors.Is(err, errTxBroken) {
			_, _ = w.exec(w.rollback)
			failAll(err)
			return
		}
		outcomes[i] = appendOutcome{result: res, err: err}
		wrote = wrote || (err == nil && !res.Duplicate)
	}
	t1 := time.Now()
	_, err := w.exec(w.commit)
	probeCommit += time.Since(t1)
	if err != nil {
		_, _ = w.exec(w.rollback)
		failAll(fmt.Errorf("sqlite: commit: %w", err))
		return
	}
	if wrote {
		s.signal.Broadcast()
	}
	for i, r := range live {
		r.answer(outcomes[i].result, outcomes[i].err)
	}
}

// appendOne runs one request inside its own savepoint.
func (w *writer) appendOne(r *appendRequest, recordedAt int64) (eventstore.AppendResult, error) {
	if _, err := w.exec(w.savepoint); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("%w: savepoint: %w", errTxBroken, err)
	}
	res, err := w.appendInSavepoint(r, recordedAt)
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

func (w *writer) appendInSavepoint(r *appendRequest, recordedAt int64) (eventstore.AppendResult, error) {
	ctx := context.Background()
	if r.commandID != "" {
		rows, err := w.byCommand.QueryContext(ctx, r.stream.Type, r.stream.ID, r.commandID)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("sqlite: look up command %s: %w", r.commandID, err)
		}
		prior, err := scanEvents(rows, 0)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("sqlite: look up command %s: %w", r.commandID, err)
		}
		if len(prior) > 0 {
			return eventstore.AppendResult{
				Stream:    r.stream,
				Version:   prior[len(prior)-1].Version,
				Events:    prior,
				Duplicate: true,
			}, nil
		}
	}

	var current int64
	err := w.streamVersion.QueryRowContext(ctx, r.stream.Type, r.stream.ID).Scan(&current)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return eventstore.AppendResult{}, fmt.Errorf("sqlite: read version of %s: %w", r.stream, err)
	}
	if err := eventstore.CheckExpected(r.stream, r.expected, current); err != nil {
		return eventstore.AppendResult{}, err
	}

	recorded := decodeTime(sql.NullInt64{Int64: recordedAt, Valid: true})
	result := eventstore.AppendResult{
		Stream:  r.stream,
		Version: current + int64(len(r.events)),
		Events:  make([]eventstore.RecordedEvent, len(r.events)),
	}
	for i, e := range r.events {
		version := current + int64(i) + 1
		md := e.Metadata
		res, err := w.exec(w.insert, r.ids[i], r.stream.Type, r.stream.ID, version, e.Type, e.SchemaVersion,
			[]byte(e.Data), md.ActorID, md.ActorRole, md.CommandID, md.CorrelationID, md.CausationID,
			md.ClinicID, r.occurredAt[i], recordedAt)
		if err != nil {
			return eventstore.AppendResult{}, insertError(r, i, err)
		}
		position, err := res.LastInsertId()
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("sqlite: position of event %d: %w", i, err)
		}
		occurred, _ := r.occurredAt[i].(int64)
		md.OccurredAt = decodeTime(sql.NullInt64{Int64: occurred, Valid: r.occurredAt[i] != nil})
		result.Events[i] = eventstore.RecordedEvent{
			ID:            e.ID,
			Stream:        r.stream,
			Version:       version,
			Position:      position,
			Type:          e.Type,
			SchemaVersion: e.SchemaVersion,
			Data:          slices.Clone(e.Data),
			Metadata:      md,
			RecordedAt:    recorded,
		}
	}
	return result, nil
}

// insertError explains a failed INSERT; a reused event id is the caller's
// mistake, anything else is the database's.
func insertError(r *appendRequest, i int, err error) error {
	var se *msqlite.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE && strings.Contains(se.Error(), "events.event_id") {
		return fmt.Errorf("%w: event %d (%s): event id %s is already stored", eventstore.ErrInvalidEvent, i, r.events[i].Type, r.ids[i])
	}
	return fmt.Errorf("sqlite: append to %s: %w", r.stream, err)
}
