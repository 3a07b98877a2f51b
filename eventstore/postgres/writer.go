package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/careflow/careflow/eventstore"
)

// appendRequest is one Append waiting for an append worker.
type appendRequest struct {
	ctx       context.Context
	stream    eventstore.StreamID
	expected  eventstore.ExpectedVersion
	commandID string
	events    []eventstore.NewEvent
	// Encoded by the caller's goroutine so the worker does less. data is
	// the one copy of the bodies: the statement sends it (as text) and the
	// result hands it out, so the caller's buffers are not kept.
	ids        []pgtype.UUID
	data       [][]byte
	occurredAt []pgtype.Timestamptz
	done       chan appendOutcome // buffered: a worker never blocks on it
}

type appendOutcome struct {
	result eventstore.AppendResult
	err    error
}

func newAppendRequest(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion,
	commandID string, events []eventstore.NewEvent) (*appendRequest, error) {
	r := &appendRequest{
		ctx: ctx, stream: stream, expected: expected, commandID: commandID, events: events,
		ids:        make([]pgtype.UUID, len(events)),
		data:       make([][]byte, len(events)),
		occurredAt: make([]pgtype.Timestamptz, len(events)),
		done:       make(chan appendOutcome, 1),
	}
	for i, e := range events {
		at, err := encodeTime(e.Metadata.OccurredAt)
		if err != nil {
			return nil, fmt.Errorf("event %d (%s): %w", i, e.Type, err)
		}
		r.ids[i] = pgtype.UUID{Bytes: e.ID, Valid: true}
		r.data[i] = slices.Clone(e.Data)
		r.occurredAt[i] = at
	}
	return r, nil
}

func (r *appendRequest) answer(result eventstore.AppendResult, err error) {
	r.done <- appendOutcome{result: result, err: err}
}

// insertEvents is the head of every append statement's insert: the
// columns each statement fills, in the order of its SELECT list.
const insertEvents = `INSERT INTO events (position, event_id, stream_type, stream_id, version, type,
	schema_version, data, actor_id, actor_role, command_id, correlation_id, causation_id, clinic_id, occurred_at,
	recorded_at, first_of_command)`

// xidBase is the first position of the writing transaction. As an
// uncorrelated subquery it runs once per statement, and only when the
// first row is inserted: an append refused for its version or answered as
// a duplicate gets no transaction id, so its commit writes and flushes
// nothing.
const xidBase = `(SELECT pg_current_xact_id()::text::bigint << 16)`

// appendSQL writes a group of appends in one statement, so in one
// transaction with one round trip and one NOTIFY. Each append (a "req")
// gets its stream's current version and whether its command is already
// stored; those that match their expected version and are not duplicates
// are inserted, the others are answered from what the statement returns.
//
// All reads share the statement's snapshot, taken before the transaction id
// is assigned by pg_current_xact_id(): every transaction whose events this
// statement saw therefore has a smaller id, so smaller positions, and a
// stream's versions appear in the global order in version order.
//
// The duplicate check is a scalar subquery with LIMIT 1, not EXISTS: with
// no statistics (a fresh table) PostgreSQL planned that EXISTS as one hashed
// scan of the whole events table per statement, and this statement is
// planned afresh at every run (TestAppendStatementsReadThroughIndexes).
const appendSQL = `
WITH req AS MATERIALIZED (
	SELECT r.idx, r.stream_type, r.stream_id, r.command_id, r.expected,
		COALESCE((SELECT MAX(version) FROM events e
			WHERE e.stream_type = r.stream_type AND e.stream_id = r.stream_id), 0) AS v,
		r.command_id <> '' AND COALESCE((SELECT true FROM events e
			WHERE e.stream_type = r.stream_type AND e.stream_id = r.stream_id
				AND e.command_id = r.command_id AND e.command_id <> '' AND e.first_of_command LIMIT 1), false) AS dup
	FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS r(stream_type, stream_id, command_id, expected, idx)
), ins AS (
	` + insertEvents + `
	SELECT ` + xidBase + ` + e.ord - 1, e.id, req.stream_type, req.stream_id,
		req.v + e.n, e.type, e.sv, e.data::jsonb, e.actor_id, e.actor_role, req.command_id, e.correlation_id,
		e.causation_id, e.clinic_id, e.occurred_at, $5, e.n = 1
	FROM unnest($6::bigint[], $7::bigint[], $8::uuid[], $9::text[], $10::int[], $11::text[], $12::text[],
			$13::text[], $14::text[], $15::text[], $16::text[], $17::timestamptz[])
		WITH ORDINALITY AS e(req, n, id, type, sv, data, actor_id, actor_role, correlation_id, causation_id,
			clinic_id, occurred_at, ord)
		JOIN req ON req.idx = e.req
	WHERE NOT req.dup AND (req.expected < 0 OR req.v = req.expected)
	RETURNING position
), notified AS (
	SELECT pg_notify('` + notifyChannel + `', '') FROM (SELECT 1 FROM ins LIMIT 1) AS one
)
SELECT req.v, req.dup, COALESCE((SELECT MIN(position) >> 16 FROM ins), 0), (SELECT COUNT(*) FROM notified)
FROM req ORDER BY req.idx`

// appendOneSQL is appendSQL for a group of one append, the usual case
// when appends do not overlap: the same checks, insert and NOTIFY in one
// statement, under the same snapshot rule, but with the append's stream,
// command and expected version as plain parameters instead of arrays to
// unnest and join. PostgreSQL plans appendSQL afresh at every run; this one
// it plans once (a generic plan), and a lone append took about half as
// long with it (docs/performance.md). It reads one inserted row for the
// transaction id (every row has the same) instead of aggregating them all,
// and sends the NOTIFY from its last line: about 30 us less per one-event
// append in the probe of docs/performance.md (small and noisy).
//
// A lone append runs a lean statement first (appendLeanExactSQL or
// appendLeanSQL) and this one only when that wrote nothing or failed on a
// unique index, to learn why.
const appendOneSQL = `
WITH cur AS MATERIALIZED (
	SELECT COALESCE((SELECT MAX(version) FROM events
			WHERE stream_type = $1 AND stream_id = $2), 0) AS v,
		$3::text <> '' AND EXISTS (SELECT 1 FROM events
			WHERE stream_type = $1 AND stream_id = $2 AND command_id = $3 AND command_id <> ''
				AND first_of_command) AS dup
), ins AS (
	` + insertEvents + `
	SELECT ` + xidBase + ` + e.ord - 1, e.id, $1, $2, cur.v + e.ord, e.type, e.sv,
		e.data::jsonb, e.actor_id, e.actor_role, $3, e.correlation_id, e.causation_id, e.clinic_id, e.occurred_at, $5,
		e.ord = 1
	FROM cur, ` + loneEvents + `
	WHERE NOT cur.dup AND ($4::bigint < 0 OR cur.v = $4::bigint)
	RETURNING position
)
SELECT cur.v, cur.dup, COALESCE(w.xid, 0), ` + notifyIfWritten + `
FROM cur, (SELECT (SELECT position >> 16 FROM ins LIMIT 1) AS xid) AS w`

// leanAnyInsert is the insert of a lone append to whatever version its
// stream is at (AnyVersion): appendOneSQL's insert on its own, under the
// same snapshot rule, with the same parameters. It does not look the
// command up: a repeated command fails on the index events_command_once,
// and appendAlone then runs appendOneSQL, which answers it as a duplicate.
const leanAnyInsert = `
` + insertEvents + `
SELECT ` + xidBase + ` + e.ord - 1, e.id, $1, $2, cur.v + e.ord, e.type, e.sv,
	e.data::jsonb, e.actor_id, e.actor_role, $3, e.correlation_id, e.causation_id, e.clinic_id, e.occurred_at, $5,
	e.ord = 1
FROM (SELECT COALESCE((SELECT MAX(version) FROM events
		WHERE stream_type = $1 AND stream_id = $2), 0) AS v) AS cur, ` + loneEvents + `
WHERE ($4::bigint < 0 OR cur.v = $4::bigint)`

// leanExactInsert is the insert of a lone append that expects its stream
// at version N ($4; 0 for a new stream), the usual case: it inserts
// versions N+1... if version N is stored (nothing to check when N is 0),
// and leaves the rest to the unique indexes it writes anyway. When the
// stream is past N, version N+1 is taken and the insert fails on
// events_stream_version; a repeated command fails on events_command_once
// (or on the event ids' index first, when it carries its first try's ids:
// leanRefused); when version N is not stored (the stream is behind N) it
// writes nothing.
// Each of those is rare, and appendAlone then runs appendOneSQL, which says
// which it is. Both look-ups before the insert (the stream's highest
// version, and the command) are gone: the highest version is a backward
// index scan under a LIMIT and cost more than finding one exact version
// (docs/performance.md). The snapshot rule holds: version N was committed
// before this statement's snapshot, so by a transaction with a smaller id.
const leanExactInsert = `
` + insertEvents + `
SELECT ` + xidBase + ` + e.ord - 1, e.id, $1, $2, $4::bigint + e.ord, e.type, e.sv,
	e.data::jsonb, e.actor_id, e.actor_role, $3, e.correlation_id, e.causation_id, e.clinic_id, e.occurred_at, $5,
	e.ord = 1
FROM ` + loneEvents + `
WHERE $4::bigint = 0 OR EXISTS (SELECT 1 FROM events
	WHERE stream_type = $1 AND stream_id = $2 AND version = $4::bigint)`

// The lean statements are a lone append's first try: one of the inserts
// above, answering only when it wrote, with the first event's position
// (which carries the transaction id) and version, and sending the NOTIFY.
// No answer is built for an append that wrote nothing: about 20 us less
// server time per append than appendOneSQL (docs/performance.md).
//
// One event answers with its row (RETURNING). Several answer with one row
// aggregated in a CTE: returning every row cost the server about 3 us per
// event, more than the CTE, in batches of 100 (docs/performance.md).
var (
	appendLeanSQL           = leanMany(leanAnyInsert)
	appendLeanExactSQL      = leanMany(leanExactInsert)
	appendLeanEventSQL      = oneEvent(leanAnyInsert + leanReturning)
	appendLeanExactEventSQL = oneEvent(leanExactInsert + leanReturning)
)

const (
	leanReturning = `
RETURNING position, version, ` + leanNotify
	leanNotify = `pg_notify('` + notifyChannel + `', '')`
	// leanManyAnswer: the group of an aggregate over no rows is dropped by
	// HAVING, so an insert that wrote nothing answers with no row and sends
	// no NOTIFY.
	leanManyAnswer = `
SELECT MIN(position), MIN(version), ` + leanNotify + ` FROM ins HAVING COUNT(*) > 0`
)

func leanMany(insert string) string {
	return `WITH ins AS (` + insert + `
RETURNING position, version)` + leanManyAnswer
}

// loneEvents is the events of a lone append, as arrays; loneEvent is the
// one event of a lone append of one, as plain parameters, so the server
// decodes no arrays (25 to 80 us less per append in the probe of
// docs/performance.md).
const (
	loneEvents = `unnest($6::uuid[], $7::text[], $8::int[], $9::text[], $10::text[], $11::text[], $12::text[],
			$13::text[], $14::text[], $15::timestamptz[])
		WITH ORDINALITY AS e(id, type, sv, data, actor_id, actor_role, correlation_id, causation_id, clinic_id,
			occurred_at, ord)`
	loneEvent = `(VALUES ($6::uuid, $7::text, $8::int, $9::text, $10::text, $11::text, $12::text,
			$13::text, $14::text, $15::timestamptz, 1::bigint)) AS e(id, type, sv, data, actor_id, actor_role,
			correlation_id, causation_id, clinic_id, occurred_at, ord)`
)

// notifyIfWritten is appendOneSQL's NOTIFY, sent when the statement wrote.
const notifyIfWritten = `CASE WHEN w.xid IS NOT NULL THEN pg_notify('` + notifyChannel + `', '') END`

// withoutNotify is an append statement without its NOTIFY, for
// Config.NotifyAfterCommit.
func withoutNotify(sql string) string {
	quiet := strings.Replace(sql,
		`SELECT pg_notify('`+notifyChannel+`', '') FROM (SELECT 1 FROM ins LIMIT 1) AS one`,
		`SELECT 1 FROM ins LIMIT 1`, 1)
	quiet = strings.Replace(quiet, notifyIfWritten, `NULL`, 1)
	quiet = strings.Replace(quiet, leanNotify, `NULL`, 1)
	if quiet == sql {
		panic("postgres: append statement without a NOTIFY to remove")
	}
	return quiet
}

// appendOneEventSQL is appendOneSQL for one event.
var appendOneEventSQL = oneEvent(appendOneSQL)

func oneEvent(sql string) string {
	one := strings.Replace(sql, loneEvents, loneEvent, 1)
	if one == sql {
		panic("postgres: append statement without the events of a lone append")
	}
	return one
}

var (
	appendQuietSQL               = withoutNotify(appendSQL)
	appendOneQuietSQL            = withoutNotify(appendOneSQL)
	appendOneEventQuietSQL       = withoutNotify(appendOneEventSQL)
	appendLeanQuietSQL           = withoutNotify(appendLeanSQL)
	appendLeanEventQuietSQL      = withoutNotify(appendLeanEventSQL)
	appendLeanExactQuietSQL      = withoutNotify(appendLeanExactSQL)
	appendLeanExactEventQuietSQL = withoutNotify(appendLeanExactEventSQL)
)

// loneStatements picks a lone append's full and lean statements.
func loneStatements(oneEvent, exact, quiet bool) (sql, lean string) {
	switch {
	case oneEvent && !quiet:
		sql, lean = appendOneEventSQL, appendLeanEventSQL
		if exact {
			lean = appendLeanExactEventSQL
		}
	case oneEvent:
		sql, lean = appendOneEventQuietSQL, appendLeanEventQuietSQL
		if exact {
			lean = appendLeanExactEventQuietSQL
		}
	case !quiet:
		sql, lean = appendOneSQL, appendLeanSQL
		if exact {
			lean = appendLeanExactSQL
		}
	default:
		sql, lean = appendOneQuietSQL, appendLeanQuietSQL
		if exact {
			lean = appendLeanExactQuietSQL
		}
	}
	return sql, lean
}

// notifyAfterCommitSQL announces commits from its own transaction. It
// commits asynchronously: it holds NOTIFY's commit lock only for as long as
// writing its commit record takes, and losing it in a crash loses a wake-up,
// never an event.
const notifyAfterCommitSQL = `BEGIN; SET LOCAL synchronous_commit TO off; ` +
	`SELECT pg_notify('` + notifyChannel + `', ''); COMMIT`

// group is the arguments of one appendSQL.
type group struct {
	reqs []*appendRequest
	// fullOnly: a lone append's lean statement was refused, so the next
	// try runs the full statement.
	fullOnly bool
	// per append
	streamTypes, streamIDs, commandIDs []string
	expected                           []int64
	// per event
	reqIdx, n                                               []int64
	ids                                                     []pgtype.UUID
	types, actors, roles, correlations, causations, clinics []string
	data                                                    [][]byte
	schemaVersions                                          []int32
	occurredAt                                              []pgtype.Timestamptz
	// first[i] is the 0-based ordinal of reqs[i]'s first event.
	first []int
}

func newGroup(reqs []*appendRequest) *group {
	g := &group{reqs: reqs, first: make([]int, len(reqs))}
	events := 0
	for i, r := range reqs {
		g.first[i] = events
		events += len(r.events)
	}
	g.streamTypes, g.streamIDs = make([]string, 0, len(reqs)), make([]string, 0, len(reqs))
	g.commandIDs, g.expected = make([]string, 0, len(reqs)), make([]int64, 0, len(reqs))
	g.reqIdx, g.n, g.ids = make([]int64, 0, events), make([]int64, 0, events), make([]pgtype.UUID, 0, events)
	g.types, g.data, g.actors = make([]string, 0, events), make([][]byte, 0, events), make([]string, 0, events)
	g.roles, g.correlations = make([]string, 0, events), make([]string, 0, events)
	g.causations, g.clinics = make([]string, 0, events), make([]string, 0, events)
	g.schemaVersions, g.occurredAt = make([]int32, 0, events), make([]pgtype.Timestamptz, 0, events)
	for i, r := range reqs {
		g.streamTypes = append(g.streamTypes, r.stream.Type)
		g.streamIDs = append(g.streamIDs, r.stream.ID)
		g.commandIDs = append(g.commandIDs, r.commandID)
		g.expected = append(g.expected, int64(r.expected))
		for j, e := range r.events {
			md := e.Metadata
			g.reqIdx = append(g.reqIdx, int64(i+1))
			g.n = append(g.n, int64(j+1))
			g.ids = append(g.ids, r.ids[j])
			g.types = append(g.types, e.Type)
			g.schemaVersions = append(g.schemaVersions, int32(e.SchemaVersion))
			g.data = append(g.data, r.data[j])
			g.actors = append(g.actors, md.ActorID)
			g.roles = append(g.roles, md.ActorRole)
			g.correlations = append(g.correlations, md.CorrelationID)
			g.causations = append(g.causations, md.CausationID)
			g.clinics = append(g.clinics, md.ClinicID)
			g.occurredAt = append(g.occurredAt, r.occurredAt[j])
		}
	}
	return g
}

func (g *group) args(recordedAt time.Time) []any {
	return []any{g.streamTypes, g.streamIDs, g.commandIDs, g.expected, recordedAt,
		g.reqIdx, g.n, g.ids, g.types, g.schemaVersions, g.data, g.actors, g.roles,
		g.correlations, g.causations, g.clinics, g.occurredAt}
}

// loneGroup is a group of one append. It needs none of the per-append
// and per-event arrays: its statement takes its arguments from r.
func loneGroup(r *appendRequest) *group {
	return &group{reqs: []*appendRequest{r}, first: []int{0}}
}

// statement is the statement that writes g, its arguments, and for a lone
// append the lean statement to try first with the same arguments (empty
// for a group): appendSQL for a group of several appends; for one,
// appendOneSQL and appendLeanExactSQL (appendLeanSQL for AnyVersion), in
// their one-event forms for one event; without the NOTIFY when quiet.
func (g *group) statement(recordedAt time.Time, quiet bool) (sql, lean string, args []any) {
	if len(g.reqs) > 1 {
		if quiet {
			return appendQuietSQL, "", g.args(recordedAt)
		}
		return appendSQL, "", g.args(recordedAt)
	}
	r := g.reqs[0]
	args = make([]any, 0, 15)
	args = append(args, r.stream.Type, r.stream.ID, r.commandID, int64(r.expected), recordedAt)
	if len(r.events) == 1 {
		sql, lean = loneStatements(true, r.expected != eventstore.AnyVersion, quiet)
		e := &r.events[0]
		md := &e.Metadata
		return sql, lean, append(args, r.ids[0], e.Type, int32(e.SchemaVersion), r.data[0], md.ActorID, md.ActorRole,
			md.CorrelationID, md.CausationID, md.ClinicID, r.occurredAt[0])
	}
	n := len(r.events)
	var (
		types, actors, roles = make([]string, n), make([]string, n), make([]string, n)
		correlations, causes = make([]string, n), make([]string, n)
		clinics              = make([]string, n)
		schemaVersions       = make([]int32, n)
	)
	for i := range r.events {
		e := &r.events[i]
		md := &e.Metadata
		types[i], schemaVersions[i], actors[i], roles[i] = e.Type, int32(e.SchemaVersion), md.ActorID, md.ActorRole
		correlations[i], causes[i], clinics[i] = md.CorrelationID, md.CausationID, md.ClinicID
	}
	sql, lean = loneStatements(false, r.expected != eventstore.AnyVersion, quiet)
	return sql, lean, append(args, r.ids, types, schemaVersions, r.data, actors, roles,
		correlations, causes, clinics, r.occurredAt)
}

// groupRow is what appendSQL says about one append of the group.
type groupRow struct {
	current   int64
	duplicate bool
}

// runWorker is one append worker: it takes a waiting append, adds every
// other append waiting (up to MaxGroup, one per stream: two appends to one
// stream in one statement would both claim the same next version) and
// writes them together. An append to a stream already in the group waits
// for the worker's next group. The worker ends when Close has closed the
// queue and the queue is drained.
func (s *Store) runWorker() {
	defer s.workers.Done()
	var carry []*appendRequest
	lastSize := 0
	for {
		var batch []*appendRequest
		if len(carry) > 0 {
			batch, carry = []*appendRequest{carry[0]}, carry[1:]
		} else {
			first, ok := <-s.requests
			if !ok {
				return
			}
			batch = []*appendRequest{first}
		}
		// Wait for a free statement slot before gathering, so appends that
		// queue while an Append writes in its own goroutine join this group.
		s.tokens <- struct{}{}
		streams := map[eventstore.StreamID]bool{batch[0].stream: true}
		events := len(batch[0].events)
		var rest []*appendRequest
		take := func(r *appendRequest) bool {
			if len(batch) >= s.cfg.MaxGroup || events+len(r.events) > maxGroupEvents {
				return false
			}
			if streams[r.stream] {
				rest = append(rest, r)
				return true
			}
			streams[r.stream] = true
			events += len(r.events)
			batch = append(batch, r)
			return true
		}
		for len(carry) > 0 && take(carry[0]) {
			carry = carry[1:]
		}
		// After a shared group, the appenders it answered are likely on
		// their way back with their next append: wait up to GroupWait for
		// them, so they share this commit instead of waiting out the next
		// one, and stop waiting once as many are back as the last group
		// held. A lone appender never waits.
		var (
			gather <-chan time.Time
			timer  *time.Timer
		)
		if lastSize > 1 && len(batch) < lastSize && s.cfg.GroupWait > 0 {
			timer = time.NewTimer(s.cfg.GroupWait)
			gather = timer.C
		}
	fill:
		for len(batch) < s.cfg.MaxGroup {
			var r *appendRequest
			var ok bool
			if gather == nil {
				select {
				case r, ok = <-s.requests:
				default:
					break fill
				}
			} else {
				select {
				case r, ok = <-s.requests:
				case <-gather:
					break fill
				}
			}
			if !ok {
				break fill
			}
			if !take(r) {
				carry = append(carry, r)
				break fill
			}
			if gather != nil && len(batch) >= lastSize {
				gather = nil // all back: take what is queued, then write
			}
		}
		if timer != nil {
			timer.Stop()
		}
		carry = append(rest, carry...)
		lastSize = len(batch)
		s.grouping.Store(lastSize > 1)
		s.writeGroup(batch)
		<-s.tokens
	}
}

// maxGroupEvents keeps a group's events within the 16 bits a position
// gives the index of an event in its transaction.
const maxGroupEvents = 1 << positionShift

// writeGroup writes the group and answers its appends. Nobody is told
// "success" before the statement's commit returned. If the statement fails
// as a whole (a concurrent writer in another process took a version, a
// reused event id, a value PostgreSQL refuses), each append is written on
// its own so the failure is reported to the append that caused it.
func (s *Store) writeGroup(batch []*appendRequest) {
	// A request whose caller gave up before a worker took it is dropped.
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.answer(eventstore.AppendResult{}, err)
			continue
		}
		live = append(live, r)
	}
	switch {
	case len(live) == 0:
		return
	case len(live) == 1:
		r := live[0]
		r.answer(s.appendAlone(r))
		return
	}
	outcomes, err := s.execGroup(context.Background(), newGroup(live))
	var refused *pgconn.PgError
	if errors.As(err, &refused) {
		// The server refused the statement, so nothing of it committed:
		// run each append alone so the error reaches the right caller.
		for _, r := range live {
			r.answer(s.appendAlone(r))
		}
		return
	}
	if err != nil {
		// The connection failed: the group may or may not have committed.
		// Running it again could write twice; every caller hears the error
		// and a retry with its command id is answered from the store.
		for _, r := range live {
			r.answer(eventstore.AppendResult{}, fmt.Errorf("postgres: append: %w", err))
		}
		return
	}
	for i, r := range live {
		r.answer(outcomes[i].result, outcomes[i].err)
	}
}

// appendAlone writes one append in its own statement. The writer took the
// request while its caller still waited; from here its context no longer
// matters (as in the SQLite store): a statement cancelled between the
// server's commit and the reply would report a failure for stored events.
// When its lean statement is refused by a unique index, or it loses a race
// for the stream's next version or its command, it runs again with the full
// statement: that run sees the winner and answers with a conflict, a
// duplicate, or (for AnyVersion) success.
func (s *Store) appendAlone(r *appendRequest) (eventstore.AppendResult, error) {
	g := loneGroup(r)
	ctx := context.WithoutCancel(r.ctx)
	for attempt := 1; ; attempt++ {
		outcomes, err := s.execGroup(ctx, g)
		if err == nil {
			return outcomes[0].result, outcomes[0].err
		}
		if errors.Is(err, errLeanRefused) {
			g.fullOnly = true
			continue
		}
		err = appendError(r, err)
		if !errors.Is(err, errLostRace) {
			return eventstore.AppendResult{}, err
		}
		if attempt == maxAppendAttempts {
			// Still a concurrency conflict for callers that retry on one.
			return eventstore.AppendResult{}, fmt.Errorf("%w: %w", eventstore.ErrConcurrency, err)
		}
	}
}

// maxAppendAttempts bounds how often one append re-runs after losing a race
// on its stream's next version (each lost race means another writer made
// progress).
const maxAppendAttempts = 100

// errLostRace: a concurrent append committed the version this one wanted,
// or this one's command, after this one's snapshot was taken.
var errLostRace = errors.New("postgres: lost the race for the stream's next version or the command")

// errLeanRefused: a lone append's lean statement failed on a unique index
// (the stream is past the expected version, or the command or an event id
// is stored, or a concurrent append took either); the full statement tells
// which.
var errLeanRefused = errors.New("postgres: lean append statement refused by a unique index")

// The unique indexes an append statement can lose a race on.
const (
	streamVersionIndex = "events_stream_version"
	commandOnceIndex   = "events_command_once"
	eventIDIndex       = "events_event_id_key"
)

// refusedByUniqueIndex reports whether err is a unique violation on the
// stream's versions or its commands.
func refusedByUniqueIndex(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" &&
		(pgErr.ConstraintName == streamVersionIndex || pgErr.ConstraintName == commandOnceIndex)
}

// leanRefused reports whether a lean statement's error calls for the full
// statement: a unique violation on the versions or the commands, or on the
// event ids, since a retry that carries its first try's event ids fails on
// that index first (PostgreSQL checks the indexes in the order they were
// created). The full statement answers such a retry as a duplicate, and
// reports a reused event id of another command as the error it is.
func leanRefused(err error) bool {
	var pgErr *pgconn.PgError
	return refusedByUniqueIndex(err) ||
		errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == eventIDIndex
}

// execGroup runs appendSQL for g and works out each append's outcome.
func (s *Store) execGroup(ctx context.Context, g *group) ([]appendOutcome, error) {
	recordedAt := storableTime(s.opts.Clock())
	rows, xid, err := s.queryGroup(ctx, g, recordedAt)
	if err != nil {
		return nil, err
	}
	outcomes := make([]appendOutcome, len(g.reqs))
	wrote := false
	for i, r := range g.reqs {
		row := rows[i]
		switch {
		case row.duplicate:
			outcomes[i].result, outcomes[i].err = s.priorAppend(ctx, r.stream, r.commandID)
		case r.expected != eventstore.AnyVersion && int64(r.expected) != row.current:
			outcomes[i].err = eventstore.CheckExpected(r.stream, r.expected, row.current)
		default:
			outcomes[i].result = recorded(r, row.current, xid<<positionShift+int64(g.first[i]), recordedAt)
			wrote = true
		}
	}
	if wrote {
		s.signal.Broadcast()
		if s.cfg.NotifyAfterCommit {
			select {
			case s.notifyNeeded <- struct{}{}:
			default: // a notification is already due; it covers this commit
			}
		}
	}
	return outcomes, nil
}

func (s *Store) queryGroup(ctx context.Context, g *group, recordedAt time.Time) ([]groupRow, int64, error) {
	if s.afterInsert != nil {
		return s.queryGroupInTx(ctx, g, recordedAt)
	}
	return s.runGroup(ctx, s.pool, g, recordedAt)
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// runGroup writes g: a lone append with its lean statement first, and with
// the full one when that wrote nothing. When the lean statement fails on a
// unique index its transaction is aborted, so the full statement cannot
// follow it there: runGroup returns errLeanRefused and appendAlone runs the
// append again.
func (s *Store) runGroup(ctx context.Context, q querier, g *group, recordedAt time.Time) ([]groupRow, int64, error) {
	sql, lean, args := g.statement(recordedAt, s.cfg.NotifyAfterCommit)
	if lean != "" && !g.fullOnly {
		row, xid, wrote, err := scanLean(q.Query(ctx, lean, args...))
		if leanRefused(err) {
			return nil, 0, errLeanRefused
		}
		if err != nil || wrote {
			return []groupRow{row}, xid, err
		}
	}
	return scanGroup(q.Query(ctx, sql, args...))
}

// queryGroupInTx is queryGroup in an explicit transaction, with the
// afterInsert seam between the insert and the commit.
func (s *Store) queryGroupInTx(ctx context.Context, g *group, recordedAt time.Time) ([]groupRow, int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, xid, err := s.runGroup(ctx, tx, g, recordedAt)
	if err != nil {
		return nil, 0, err
	}
	for _, r := range g.reqs {
		s.afterInsert(ctx, r.stream)
	}
	return rows, xid, tx.Commit(ctx)
}

// scanLean reads what appendLeanSQL wrote: the stream's version before the
// append and the transaction id, or wrote false when it wrote nothing.
func scanLean(rows pgx.Rows, err error) (row groupRow, xid int64, wrote bool, _ error) {
	if err != nil {
		return groupRow{}, 0, false, err
	}
	defer rows.Close()
	first := int64(0)
	for rows.Next() {
		var position, version int64
		// The last column only makes the statement send its NOTIFY.
		if err := rows.Scan(&position, &version, nil); err != nil {
			return groupRow{}, 0, false, err
		}
		if !wrote || version < first {
			first = version
		}
		xid, wrote = position>>positionShift, true
	}
	return groupRow{current: first - 1}, xid, wrote, rows.Err()
}

// runNotifier sends one notification per wake-up request, so commits that
// happen while one is being sent share the next. It ends when Close has
// closed notifyNeeded, after a last notification if one was due.
func (s *Store) runNotifier() {
	defer close(s.notifierDone)
	for range s.notifyNeeded {
		// A failed notification is not retried: subscribers elsewhere catch
		// up at the next one, or at their lost-notification re-check.
		_, _ = s.pool.Exec(context.Background(), notifyAfterCommitSQL)
	}
}

func scanGroup(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close()
}, err error) ([]groupRow, int64, error) {
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var (
		out []groupRow
		xid int64
	)
	for rows.Next() {
		var r groupRow
		// The last column only makes the statement send its NOTIFY.
		if err := rows.Scan(&r.current, &r.duplicate, &xid, nil); err != nil {
			return nil, 0, err
		}
		out = append(out, r)
	}
	return out, xid, rows.Err()
}

// recorded is the result of a successful append whose first event got
// position first.
func recorded(r *appendRequest, current, first int64, recordedAt time.Time) eventstore.AppendResult {
	result := eventstore.AppendResult{
		Stream:  r.stream,
		Version: current + int64(len(r.events)),
		Events:  make([]eventstore.RecordedEvent, len(r.events)),
	}
	for i, e := range r.events {
		md := e.Metadata
		if r.occurredAt[i].Valid {
			md.OccurredAt = r.occurredAt[i].Time
		}
		result.Events[i] = eventstore.RecordedEvent{
			ID:            e.ID,
			Stream:        r.stream,
			Version:       current + int64(i) + 1,
			Position:      first + int64(i),
			Type:          e.Type,
			SchemaVersion: e.SchemaVersion,
			Data:          r.data[i],
			Metadata:      md,
			RecordedAt:    recordedAt,
		}
	}
	return result
}

// appendError turns a failed append statement into the error Append
// returns.
func appendError(r *appendRequest, err error) error {
	if ctxErr := r.ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case refusedByUniqueIndex(pgErr):
			return errLostRace
		case pgErr.Code == "23505" && pgErr.ConstraintName == eventIDIndex:
			for i, e := range r.events {
				if strings.Contains(pgErr.Detail, e.ID.String()) {
					return fmt.Errorf("%w: event %d (%s): event id %s is already stored", eventstore.ErrInvalidEvent, i, e.Type, e.ID)
				}
			}
			return fmt.Errorf("%w: an event id is already stored: %s", eventstore.ErrInvalidEvent, pgErr.Detail)
		case pgErr.Code == "22P02" && strings.Contains(pgErr.Message, "json"):
			// A body that does not parse (the store leaves parsing to the
			// server). The server's detail quotes the body, which may hold
			// PHI: the error names the event instead.
			for i, e := range r.events {
				if !json.Valid(e.Data) {
					return fmt.Errorf("%w: event %d (%s) data is not valid JSON", eventstore.ErrInvalidEvent, i, e.Type)
				}
			}
			return fmt.Errorf("%w: event data is not valid JSON", eventstore.ErrInvalidEvent)
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "22":
			// Data exceptions: a NUL character in a text, a \u0000 escape in
			// the JSON body (jsonb cannot hold it), a value out of range.
			return fmt.Errorf("%w: %s", eventstore.ErrInvalidEvent, pgErr.Message)
		}
	}
	return fmt.Errorf("postgres: append to %s: %w", r.stream, err)
}
