package views

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/projections"
)

// decodeRing bounds how many decoded events the shared decoder holds. The
// projections share one writer connection and each holds it for a whole
// batch, so during a rebuild one may run tens of thousands of events ahead
// of another; the ring covers that distance.
const decodeRing = 1 << 16

// decoder decodes events through the codec registry (which upcasts old
// schema versions) and, shared by the projections of All, hands each
// decoded event to every projection that reads its type before letting it
// go: an event is decoded once for all of them, and nothing stays held once
// every projection has taken it. Decoded values are shared: appliers never
// change them.
type decoder struct {
	reg *codec.Registry
	// readers counts, per event type, the projections sharing this decoder
	// that read it; set before the decoder is used.
	readers map[string]int
	mu      sync.Mutex
	ring    []decoded
}

type decoded struct {
	id      uuid.UUID
	pos     int64
	value   any
	pending int // projections that still have to take it
}

func newDecoder(reg *codec.Registry) *decoder {
	return &decoder{reg: reg, readers: map[string]int{}}
}

// share registers the event types a projection reads.
func (d *decoder) share(types typeSet) {
	for name := range types {
		d.readers[name]++
	}
}

// prepare decodes e if it is one of types, for a projection's Prepare:
// nil, nil for another type.
func (d *decoder) prepare(types typeSet, e eventstore.RecordedEvent) (any, error) {
	if !types[e.Type] {
		return nil, nil
	}
	return d.decode(e)
}

func (d *decoder) decode(e eventstore.RecordedEvent) (any, error) {
	d.mu.Lock()
	if d.ring != nil {
		slot := &d.ring[uint64(e.Position)%decodeRing]
		if slot.value != nil && slot.pos == e.Position && slot.id == e.ID {
			v := slot.value
			if slot.pending--; slot.pending <= 0 {
				*slot = decoded{}
			}
			d.mu.Unlock()
			return v, nil
		}
	}
	d.mu.Unlock()
	v, err := d.reg.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return nil, fmt.Errorf("views: decode %s at %d: %w", e.Type, e.Position, err)
	}
	if others := d.readers[e.Type] - 1; others > 0 {
		d.mu.Lock()
		if d.ring == nil {
			d.ring = make([]decoded, decodeRing)
		}
		d.ring[uint64(e.Position)%decodeRing] = decoded{id: e.ID, pos: e.Position, value: v, pending: others}
		d.mu.Unlock()
	}
	return v, nil
}

// writer runs a projection's statements inside the runner's transaction
// (projections.Exec prepares each once per transaction).
type writer struct {
	mu  sync.Mutex
	tx  *sql.Tx // kept referenced so no later transaction can share its address
	gen int64
	// rendered holds each query with the generation's table names.
	rendered map[string]string
	// held are the rows the batch of tx holds until Flush (held.go). mu
	// guards the switch to a new transaction; the rows themselves are only
	// touched by the projection's one goroutine, which runs its batches one
	// after another.
	held held
}

// use makes the writer's held rows those of tx: a new transaction starts
// with none, so a batch that was rolled back leaves nothing behind.
func (w *writer) use(tx *sql.Tx, t projections.TableNames) *held {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.switchTo(tx, t)
	return &w.held
}

func (w *writer) switchTo(tx *sql.Tx, t projections.TableNames) {
	if w.tx == tx && w.gen == t.Generation() && w.held.index != nil {
		return
	}
	if w.gen != t.Generation() || w.rendered == nil {
		w.rendered = map[string]string{}
	}
	w.tx, w.gen = tx, t.Generation()
	if w.held.index == nil {
		w.held = newHeld()
	}
	w.held.reset()
}

// exec runs query, whose table names are written {logical}, in tx.
func (w *writer) exec(ctx context.Context, tx *sql.Tx, t projections.TableNames, query string, args ...any) error {
	if _, err := projections.Exec(ctx, tx, w.render(tx, t, query), args...); err != nil {
		return fmt.Errorf("views: %s: %w", firstWords(query), err)
	}
	return nil
}

func (w *writer) render(tx *sql.Tx, t projections.TableNames, query string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.switchTo(tx, t)
	r, ok := w.rendered[query]
	if !ok {
		r = render(t, query)
		w.rendered[query] = r
	}
	return r
}

// render replaces every {logical} table name in query by its physical name.
func render(t projections.TableNames, query string) string {
	var b strings.Builder
	b.Grow(len(query) + 32)
	for {
		open := strings.IndexByte(query, '{')
		if open < 0 {
			b.WriteString(query)
			return b.String()
		}
		end := strings.IndexByte(query[open:], '}')
		if end < 0 {
			b.WriteString(query)
			return b.String()
		}
		b.WriteString(query[:open])
		b.WriteString(t.Of(query[open+1 : open+end]))
		query = query[open+end+1:]
	}
}

// rebind renders a read query for the database's dialect.
func rebind(db *projections.DB, t projections.TableNames, query string) string {
	return db.Dialect().Rebind(render(t, query))
}

func firstWords(query string) string {
	f := strings.Fields(query)
	if len(f) > 3 {
		f = f[:3]
	}
	return strings.Join(f, " ")
}

// schema renders CREATE statements written with {logical} table names.
func schema(t projections.TableNames, stmts ...string) []string {
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = render(t, s)
	}
	return out
}

// stamp stores a time as Unix nanoseconds, NULL when zero.
func stamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// timeOf reads a stored stamp back (zero for NULL), in UTC.
func timeOf(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// optionalTime is timeOf as a pointer, nil for NULL, for omitempty fields.
func optionalTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := timeOf(n)
	return &t
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// flagsJSON stores score flags as a JSON array ("" when none).
func flagsJSON(flags []books.Flag) (string, error) {
	if len(flags) == 0 {
		return "", nil
	}
	b, err := json.Marshal(flags)
	if err != nil {
		return "", fmt.Errorf("views: encode flags: %w", err)
	}
	return string(b), nil
}

func parseFlags(s string) ([]books.Flag, error) {
	if s == "" {
		return nil, nil
	}
	var flags []books.Flag
	if err := json.Unmarshal([]byte(s), &flags); err != nil {
		return nil, fmt.Errorf("views: read flags: %w", err)
	}
	return flags, nil
}

// answersJSON stores answers as a JSON array ("" when none).
func answersJSON(answers []books.Answer) (string, error) {
	if len(answers) == 0 {
		return "", nil
	}
	b, err := json.Marshal(answers)
	if err != nil {
		return "", fmt.Errorf("views: encode answers: %w", err)
	}
	return string(b), nil
}

func parseAnswers(s string) ([]books.Answer, error) {
	if s == "" {
		return nil, nil
	}
	var answers []books.Answer
	if err := json.Unmarshal([]byte(s), &answers); err != nil {
		return nil, fmt.Errorf("views: read answers: %w", err)
	}
	return answers, nil
}

// typeSet is the set of event types a projection reads; the others are
// skipped before they are decoded.
type typeSet map[string]bool

func types(names ...string) typeSet {
	s := typeSet{}
	for _, n := range names {
		s[n] = true
	}
	return s
}

// readContext is the context a view's query runs under: the caller's
// without its cancellation, as projections.DB.Read begins the transaction.
// A view's queries are short; with a cancellable context database/sql and
// the SQLite driver start a goroutine per query to watch it.
func readContext(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// queryRows runs a read query and calls scan for every row.
func queryRows(ctx context.Context, tx *sql.Tx, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(readContext(ctx), query, args...)
	if err != nil {
		return fmt.Errorf("views: %s: %w", firstWords(query), err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("views: %s: %w", firstWords(query), err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("views: %s: %w", firstWords(query), err)
	}
	return nil
}
