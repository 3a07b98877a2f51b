package views

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/careflow/careflow/projections"
)

// Held rows. A view writes its rows through put, set, remove and
// removeWhere; the rows put in a batch and its deletes are held in memory
// until the batch ends (Flush, which the runner calls before it saves the
// checkpoint, in the same transaction), so that:
//   - the events of a batch that change a row put in it change memory, not
//     the database: a session scheduled, activated and closed within one
//     batch is one row written instead of three statements, an inbox item
//     raised and answered within one batch is never written;
//   - the deletes and the rows written at the end go in multi-row
//     statements (ADR 0017).
//
// Reads never see a held row: the runner commits only after Flush. A batch
// rolled back takes its held rows with it (writer.use starts every
// transaction with none).
//
// The database ends up as if every statement had run in order:
//   - put is a full-row upsert: INSERT, or on a key already there, every
//     other column replaced. A held row is therefore what the database would
//     hold for its key at that point, whether or not the key was in the
//     table before the batch, and writing it at Flush leaves the same row.
//   - set changes a held row in memory; on any other key it runs its
//     UPDATE at once, as before.
//   - remove drops a held row and deletes the key at Flush, before the held
//     rows are written: the key may have been in the table before the
//     batch. An UPDATE that ran in between on that key changed a row the
//     statements in order would already have deleted; it is deleted all
//     the same.
//   - removeWhere does the same for every held row that matches and for
//     the rows of the table that match at Flush. That is only the same as
//     deleting at once if no UPDATE between can make a row start or stop
//     matching, so a table deleted from this way has no setter (table.where
//     and table.setter refuse the other).
//
// Key columns and a where's columns hold strings (TEXT): rows are found by
// them in memory, and on PostgreSQL the deletes' tuples of parameters
// compare as text.

// statementSizes bound a multi-row statement: 32 rows of the widest
// view table are 768 bound values, far below SQLite's and PostgreSQL's
// limits. Rows are written 32, then 8, then 1 at a time, so a table has at
// most three upserts, and three deletes of each kind, to prepare per
// transaction.
var statementSizes = [...]int{32, 8, 1}

// table is a view's table whose rows can be held: its logical name and
// columns, the primary key's first.
type table struct {
	name    string
	columns []string
	keys    int
	// upserts[n] and deletes[n] write or delete n rows by key.
	upserts map[int]string
	deletes map[int]string
	// setters and wheres say how the table is changed besides put and
	// remove: never both (see above).
	setters, wheres bool
}

func newTable(name string, keys int, columns ...string) *table {
	if keys < 1 || keys > 2 {
		panic("views: " + name + ": a held table's key has one or two columns (heldKey)")
	}
	t := &table{name: name, columns: columns, keys: keys, upserts: map[int]string{}, deletes: map[int]string{}}
	others := make([]string, 0, len(columns)-keys)
	for _, c := range columns[keys:] {
		others = append(others, c+" = excluded."+c)
	}
	for _, n := range statementSizes {
		t.upserts[n] = "INSERT INTO {" + name + "} (" + strings.Join(columns, ", ") + ") VALUES " +
			tuples(n, len(columns)) + " ON CONFLICT (" + strings.Join(columns[:keys], ", ") + ") DO UPDATE SET " +
			strings.Join(others, ", ")
		t.deletes[n] = deleteIn(name, columns[:keys], n)
	}
	return t
}

// deleteIn deletes the rows whose columns equal one of n tuples.
func deleteIn(table string, columns []string, n int) string {
	if len(columns) == 1 {
		return "DELETE FROM {" + table + "} WHERE " + columns[0] + " IN (" + placeholders(n) + ")"
	}
	return "DELETE FROM {" + table + "} WHERE (" + strings.Join(columns, ", ") + ") IN (VALUES " +
		tuples(n, len(columns)) + ")"
}

// tuples is n parenthesised lists of width placeholders.
func tuples(n, width int) string {
	one := "(" + placeholders(width) + ")"
	return strings.TrimSuffix(strings.Repeat(one+", ", n), ", ")
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// setter is an UPDATE of some of a table's columns by primary key.
type setter struct {
	t       *table
	columns []int
	update  string
}

// setter makes the UPDATE of columns; set takes their values, then the key.
func (t *table) setter(columns ...string) *setter {
	if t.wheres {
		panic("views: " + t.name + " is deleted from by other columns than its key: it cannot have a setter")
	}
	t.setters = true
	s := &setter{t: t}
	assignments := make([]string, len(columns))
	for i, c := range columns {
		at := t.column(c)
		if at < t.keys {
			panic("views: " + t.name + ": a setter cannot change key column " + c)
		}
		s.columns = append(s.columns, at)
		assignments[i] = c + " = ?"
	}
	keys := make([]string, t.keys)
	for i, k := range t.columns[:t.keys] {
		keys[i] = k + " = ?"
	}
	s.update = "UPDATE {" + t.name + "} SET " + strings.Join(assignments, ", ") + " WHERE " + strings.Join(keys, " AND ")
	return s
}

// where is a DELETE of the rows whose columns equal given values; its
// first column must be the key's first (the held rows are found by it).
type where struct {
	t       *table
	columns []int
	deletes map[int]string
}

func (t *table) where(columns ...string) *where {
	if t.setters {
		panic("views: " + t.name + " has a setter: it cannot be deleted from by other columns than its key")
	}
	if columns[0] != t.columns[0] {
		panic("views: " + t.name + ": a where must start with column " + t.columns[0])
	}
	t.wheres = true
	w := &where{t: t, deletes: map[int]string{}}
	for _, c := range columns {
		w.columns = append(w.columns, t.column(c))
	}
	for _, n := range statementSizes {
		w.deletes[n] = deleteIn(t.name, columns, n)
	}
	return w
}

// column is the index of a column; an unknown one is a programming error.
func (t *table) column(name string) int {
	for i, c := range t.columns {
		if c == name {
			return i
		}
	}
	panic("views: table " + t.name + " has no column " + name)
}

// heldKey names one row of one table by its key's values. A table's key
// has one or two TEXT columns (newTable), so a key is two strings, not
// one joined: finding a row allocates nothing.
type heldKey struct {
	t    *table
	a, b string
}

// keyOf is the heldKey of a row of t with key's values.
func keyOf(t *table, key []any) heldKey {
	k := heldKey{t: t, a: key[0].(string)}
	if len(key) == 2 {
		k.b = key[1].(string)
	}
	return k
}

type heldRow struct {
	heldKey
	values []any
	gone   bool
}

// deletion is a kind of deferred DELETE: by a table's key (w nil) or by a
// where.
type deletion struct {
	t *table
	w *where
}

func (d deletion) statement(n int) string {
	if d.w != nil {
		return d.w.deletes[n]
	}
	return d.t.deletes[n]
}

// width is how many values one deleted tuple has.
func (d deletion) width() int {
	if d.w != nil {
		return len(d.w.columns)
	}
	return d.t.keys
}

// held is one batch's held rows, in the order they were first put, and
// its deferred deletes.
type held struct {
	rows  []heldRow
	index map[heldKey]int
	// byFirst lists the rows by their table and first key column.
	byFirst map[heldKey][]int
	// deletes are the values of each kind of deletion, in the order the
	// kinds were first used.
	kinds   []deletion
	deletes map[deletion][]any
	// values is flush's buffer of a statement's values, kept empty.
	values []any
	// slab is where put copies rows' values (room).
	slab []any
	// order is upsertHeld's buffer of a table's rows in key order.
	order []int
}

func newHeld() held {
	return held{index: map[heldKey]int{}, byFirst: map[heldKey][]int{}, deletes: map[deletion][]any{}}
}

// reset empties h for the next batch, keeping what it allocated: a
// rebuild's batches hold thousands of rows each, and allocating their
// index, rows and values anew for every batch was a tenth of what a
// rebuild allocated.
func (h *held) reset() {
	clear(h.index)
	clear(h.byFirst)
	clear(h.deletes)
	clear(h.rows) // lets the rows' values go
	clear(h.slab)
	h.rows, h.kinds, h.slab = h.rows[:0], h.kinds[:0], h.slab[:0]
}

// room returns room for n values that no other row shares. The slab's
// last chunk is reused by the next batch (reset); a full one is left to
// the rows that point into it and a larger one started.
func (h *held) room(n int) []any {
	if cap(h.slab)-len(h.slab) < n {
		h.slab = make([]any, 0, max(2*cap(h.slab), 1024, n))
	}
	at := len(h.slab)
	h.slab = h.slab[:at+n]
	return h.slab[at : at+n : at+n]
}

func (h *held) find(k heldKey) *heldRow {
	if i, ok := h.index[k]; ok {
		return &h.rows[i]
	}
	return nil
}

func (h *held) deferDelete(d deletion, values ...any) {
	if _, ok := h.deletes[d]; !ok {
		h.kinds = append(h.kinds, d)
	}
	h.deletes[d] = append(h.deletes[d], values...)
}

// batch is a view's writer within one Apply: statements run at once
// (exec) or through held rows (put, set, remove, removeWhere).
type batch struct {
	ctx context.Context
	tx  *sql.Tx
	t   projections.TableNames
	w   *writer
}

func (w *writer) in(ctx context.Context, tx *sql.Tx, t projections.TableNames) batch {
	return batch{ctx: ctx, tx: tx, t: t, w: w}
}

func (b batch) exec(query string, args ...any) error {
	return b.w.exec(b.ctx, b.tx, b.t, query, args...)
}

// put upserts a whole row (values in the table's column order) and holds
// it until the batch ends.
func (b batch) put(t *table, values ...any) error {
	if len(values) != len(t.columns) {
		panic("views: " + t.name + ": put needs every column, got " + strconv.Itoa(len(values)))
	}
	h := b.w.use(b.tx, b.t)
	// set changes a held row in place, not the caller's values.
	values = append(h.room(len(values))[:0], values...)
	k := keyOf(t, values[:t.keys])
	if i, ok := h.index[k]; ok {
		h.rows[i].values, h.rows[i].gone = values, false
		return nil
	}
	first := heldKey{t: t, a: values[0].(string)}
	h.index[k] = len(h.rows)
	h.byFirst[first] = append(h.byFirst[first], len(h.rows))
	h.rows = append(h.rows, heldRow{heldKey: k, values: values})
	return nil
}

// set runs s with values (in s's column order) then the key: on a held
// row in memory, on any other at once.
func (b batch) set(s *setter, args ...any) error {
	values, key := args[:len(s.columns)], args[len(s.columns):]
	if len(key) != s.t.keys {
		panic("views: " + s.t.name + ": set needs the whole key")
	}
	if r := b.w.use(b.tx, b.t).find(keyOf(s.t, key)); r != nil {
		if !r.gone {
			for i, at := range s.columns {
				r.values[at] = values[i]
			}
		}
		// A removed row is deleted at Flush: changing it changes nothing.
		return nil
	}
	return b.exec(s.update, args...)
}

// remove deletes the row with key, held or not.
func (b batch) remove(t *table, key ...any) error {
	if len(key) != t.keys {
		panic("views: " + t.name + ": remove needs the whole key")
	}
	h := b.w.use(b.tx, b.t)
	if r := h.find(keyOf(t, key)); r != nil {
		r.gone = true
	}
	h.deferDelete(deletion{t: t}, key...)
	return nil
}

// removeWhere deletes the rows whose w columns equal values, held or not.
func (b batch) removeWhere(w *where, values ...any) error {
	if len(values) != len(w.columns) {
		panic("views: " + w.t.name + ": removeWhere needs a value per column")
	}
	h := b.w.use(b.tx, b.t)
	for _, i := range h.byFirst[heldKey{t: w.t, a: values[0].(string)}] {
		r := &h.rows[i]
		if r.gone || !matches(r.values, w.columns, values) {
			continue
		}
		r.gone = true
		h.deferDelete(deletion{t: w.t}, r.values[:w.t.keys]...)
	}
	h.deferDelete(deletion{t: w.t, w: w}, values...)
	return nil
}

// matches compares as the DELETE's WHERE does: NULL equals nothing.
// Values are compared as Go values, so a where's columns hold one type
// (the views' hold TEXT).
func matches(row []any, columns []int, values []any) bool {
	for i, at := range columns {
		if row[at] == nil || values[i] == nil || row[at] != values[i] {
			return false
		}
	}
	return true
}

// flush runs the batch's deletes, then writes its held rows (table by
// table, in the order each table's first row was put), and lets them go.
func (w *writer) flush(ctx context.Context, tx *sql.Tx, t projections.TableNames) error {
	h := w.use(tx, t)
	defer h.reset()
	for _, d := range h.kinds {
		if err := w.execChunked(ctx, tx, t, d.statement, d.width(), h.deletes[d]); err != nil {
			return err
		}
	}
	var tables []*table
	for _, r := range h.rows {
		if !r.gone && !slices.Contains(tables, r.t) {
			tables = append(tables, r.t)
		}
	}
	for _, tb := range tables {
		if err := w.upsertHeld(ctx, tx, t, h, tb); err != nil {
			return err
		}
	}
	return nil
}

// upsertHeld writes tb's held rows, gathering each statement's values in
// one buffer that every flush reuses (collecting all of a batch's values
// first was a tenth of what a rebuild allocated). The rows go in key order:
// their keys are distinct, so the order changes nothing but the B-tree's
// work, which follows the keys from leaf to leaf instead of jumping about
// (a quarter less time in upsertHeld in a rebuild, session 12).
func (w *writer) upsertHeld(ctx context.Context, tx *sql.Tx, t projections.TableNames, h *held, tb *table) error {
	width := len(tb.columns)
	full := statementSizes[0] * width
	values := h.values[:0]
	defer func() {
		clear(values[:cap(values)]) // lets the rows' values go
		h.values = values[:0]
	}()
	order := h.order[:0]
	for i := range h.rows {
		if r := &h.rows[i]; !r.gone && r.t == tb {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := &h.rows[i].heldKey, &h.rows[j].heldKey
		if c := strings.Compare(a.a, b.a); c != 0 {
			return c
		}
		return strings.Compare(a.b, b.b)
	})
	h.order = order
	for _, i := range order {
		r := &h.rows[i]
		values = append(values, r.values...)
		if len(values) == full {
			if err := w.exec(ctx, tx, t, tb.upserts[statementSizes[0]], values...); err != nil {
				return err
			}
			values = values[:0]
		}
	}
	return w.execChunked(ctx, tx, t, func(n int) string { return tb.upserts[n] }, width, values)
}

// execChunked runs statement(n) over values, n tuples of width at a time,
// largest n first. put, remove and removeWhere check their values' count,
// so values are whole tuples; the last size is 1, so one pass takes them
// all.
func (w *writer) execChunked(ctx context.Context, tx *sql.Tx, t projections.TableNames, statement func(n int) string,
	width int, values []any) error {
	for _, n := range statementSizes {
		for len(values) >= n*width {
			if err := w.exec(ctx, tx, t, statement(n), values[:n*width]...); err != nil {
				return err
			}
			values = values[n*width:]
		}
	}
	if len(values) > 0 {
		return fmt.Errorf("views: %d values left over, not a whole row of %d", len(values), width)
	}
	return nil
}
