package views

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
	"github.com/careflow/careflow/projections"
)

// The held rows (held.go) promise that the database ends up as if every
// statement had run at once, in order. These tests run the same operations
// both ways, each in its own SQLite file, and compare what the tables hold.

// heldA is deleted from by key only and has setters; heldB is deleted from
// by other columns (wheres) and so has no setter. v3 and c3 are nullable.
const (
	heldA       = "held_a"
	heldB       = "held_b"
	heldSchemaA = `CREATE TABLE {held_a} (k1 TEXT NOT NULL, k2 TEXT NOT NULL, v1 TEXT NOT NULL,
		v2 INTEGER NOT NULL, v3 TEXT, PRIMARY KEY (k1, k2)) WITHOUT ROWID`
	heldSchemaB = `CREATE TABLE {held_b} (k1 TEXT NOT NULL, k2 TEXT NOT NULL, c1 TEXT NOT NULL,
		c2 INTEGER NOT NULL, c3 TEXT, PRIMARY KEY (k1, k2)) WITHOUT ROWID`
)

// heldTables are the held-row descriptions of heldA and heldB. Each test
// makes its own: setter and where record what a table was given.
type heldTables struct {
	a          *table
	aSetV1V3   *setter
	aSetV2     *setter
	b          *table
	bWhereC1   *where
	bWhereC2C3 *where
}

func newHeldTables() heldTables {
	f := heldTables{
		a: newTable(heldA, 2, "k1", "k2", "v1", "v2", "v3"),
		b: newTable(heldB, 2, "k1", "k2", "c1", "c2", "c3"),
	}
	f.aSetV1V3 = f.a.setter("v1", "v3")
	f.aSetV2 = f.a.setter("v2")
	f.bWhereC1 = f.b.where("k1", "c1")
	f.bWhereC2C3 = f.b.where("k1", "c2", "c3")
	return f
}

// heldTestProjection declares the two tables so that a projections.DB
// hands out their TableNames, which only the projections package makes.
type heldTestProjection struct{}

func (heldTestProjection) Name() string     { return "held_test" }
func (heldTestProjection) Version() int     { return 1 }
func (heldTestProjection) Tables() []string { return []string{heldA, heldB} }
func (heldTestProjection) Schema(t projections.TableNames) []string {
	return schema(t, heldSchemaA, heldSchemaB)
}
func (heldTestProjection) Apply(context.Context, *sql.Tx, projections.TableNames, eventstore.RecordedEvent) error {
	return nil
}

func heldTableNames(t *testing.T) projections.TableNames {
	t.Helper()
	ctx := context.Background()
	db, err := projections.OpenDB(ctx, filepath.Join(t.TempDir(), "names.db"))
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	runner, err := projections.NewRunner(memory.New(eventstore.Options{}), db, nil, heldTestProjection{})
	require.NoError(t, err)
	require.NoError(t, runner.Prepare(ctx))
	names, err := db.Tables(ctx, heldTestProjection{}.Name())
	require.NoError(t, err)
	return names
}

// openHeldDB creates a SQLite file holding empty heldA and heldB. One
// connection: the tests' transactions run one after the other. Nothing
// is synced: the files only live for the test, and shrinking a failure
// replays thousands of batches.
func openHeldDB(t require.TestingT, path string, names projections.TableNames) *sql.DB {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=synchronous(off)&_pragma=journal_mode(memory)")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	for _, stmt := range (heldTestProjection{}).Schema(names) {
		_, err := db.Exec(stmt)
		require.NoError(t, err)
	}
	return db
}

type heldOpKind int

const (
	heldPutA heldOpKind = iota
	heldSetA
	heldRemoveA
	heldPutB
	heldRemoveB
	heldRemoveWhereB
	heldOpKinds
)

// heldOp is one write. args are what the batch method takes after its
// table, setter or where, and also the reference statement's arguments,
// in the same order.
type heldOp struct {
	kind  heldOpKind
	which int // the setter of heldSetA, the where of heldRemoveWhereB
	args  []any
}

func putA(args ...any) heldOp            { return heldOp{kind: heldPutA, args: args} }
func setA(which int, args ...any) heldOp { return heldOp{kind: heldSetA, which: which, args: args} }
func removeA(k1, k2 string) heldOp       { return heldOp{kind: heldRemoveA, args: []any{k1, k2}} }
func putB(args ...any) heldOp            { return heldOp{kind: heldPutB, args: args} }
func removeB(k1, k2 string) heldOp       { return heldOp{kind: heldRemoveB, args: []any{k1, k2}} }
func removeWhereB(which int, args ...any) heldOp {
	return heldOp{kind: heldRemoveWhereB, which: which, args: args}
}

// GoString is how rapid prints a drawn op: as the call that makes it.
func (o heldOp) GoString() string {
	args := make([]string, len(o.args))
	for i, a := range o.args {
		args[i] = fmt.Sprintf("%#v", a)
	}
	name := [...]string{"putA", "setA", "removeA", "putB", "removeB", "removeWhereB"}[o.kind]
	if o.kind == heldSetA || o.kind == heldRemoveWhereB {
		args = append([]string{strconv.Itoa(o.which)}, args...)
	}
	return name + "(" + strings.Join(args, ", ") + ")"
}

// hold writes o through the batch.
func (o heldOp) hold(b batch, f heldTables) error {
	switch o.kind {
	case heldPutA:
		return b.put(f.a, o.args...)
	case heldSetA:
		return b.set([]*setter{f.aSetV1V3, f.aSetV2}[o.which], o.args...)
	case heldRemoveA:
		return b.remove(f.a, o.args...)
	case heldPutB:
		return b.put(f.b, o.args...)
	case heldRemoveB:
		return b.remove(f.b, o.args...)
	default:
		return b.removeWhere([]*where{f.bWhereC1, f.bWhereC2C3}[o.which], o.args...)
	}
}

// statement is o as the plain statement it stands for, written here
// rather than taken from held.go so that the two are compared.
func (o heldOp) statement() string {
	switch o.kind {
	case heldPutA:
		return `INSERT INTO {held_a} (k1, k2, v1, v2, v3) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (k1, k2) DO UPDATE SET v1 = excluded.v1, v2 = excluded.v2, v3 = excluded.v3`
	case heldSetA:
		return []string{
			`UPDATE {held_a} SET v1 = ?, v3 = ? WHERE k1 = ? AND k2 = ?`,
			`UPDATE {held_a} SET v2 = ? WHERE k1 = ? AND k2 = ?`,
		}[o.which]
	case heldRemoveA:
		return `DELETE FROM {held_a} WHERE k1 = ? AND k2 = ?`
	case heldPutB:
		return `INSERT INTO {held_b} (k1, k2, c1, c2, c3) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (k1, k2) DO UPDATE SET c1 = excluded.c1, c2 = excluded.c2, c3 = excluded.c3`
	case heldRemoveB:
		return `DELETE FROM {held_b} WHERE k1 = ? AND k2 = ?`
	default:
		return []string{
			`DELETE FROM {held_b} WHERE k1 = ? AND c1 = ?`,
			`DELETE FROM {held_b} WHERE k1 = ? AND c2 = ? AND c3 = ?`,
		}[o.which]
	}
}

// heldEnd is how a batch's transaction ends. The runner rolls back a batch
// whose Apply or Flush failed, or whose checkpoint could not be saved.
type heldEnd int

const (
	heldCommit heldEnd = iota
	heldRollbackBeforeFlush
	heldRollbackAfterFlush
)

// heldBatch is one transaction's operations and how it ends.
type heldBatch struct {
	ops []heldOp
	end heldEnd
}

// heldDBs are the two databases the same batches go to.
type heldDBs struct {
	names     projections.TableNames
	f         heldTables
	reference *sql.DB // every op as its own statement, at once
	held      *sql.DB // every op through a batch, then flush
	w         *writer
}

func openHeldDBs(t require.TestingT, dir string, names projections.TableNames) *heldDBs {
	return &heldDBs{
		names:     names,
		f:         newHeldTables(),
		reference: openHeldDB(t, filepath.Join(dir, "reference.db"), names),
		held:      openHeldDB(t, filepath.Join(dir, "held.db"), names),
		w:         &writer{},
	}
}

func (d *heldDBs) close() {
	_ = d.reference.Close()
	_ = d.held.Close()
}

// empty deletes every row, so that the next check starts from nothing
// without creating files again, and takes a new writer.
func (d *heldDBs) empty(t require.TestingT) {
	for _, db := range []*sql.DB{d.reference, d.held} {
		for _, logical := range []string{heldA, heldB} {
			_, err := db.Exec(render(d.names, "DELETE FROM {"+logical+"}"))
			require.NoError(t, err)
		}
	}
	d.w = &writer{}
}

// apply runs b in both databases, the held way through d.w (or through a
// new writer when freshWriter). A failed check leaves no transaction
// open: the next one uses the same connections.
func (d *heldDBs) apply(t require.TestingT, b heldBatch, freshWriter bool) {
	ctx := context.Background()
	func() {
		tx, err := d.reference.Begin()
		require.NoError(t, err)
		defer func() { _ = tx.Rollback() }()
		for _, o := range b.ops {
			_, err := tx.Exec(render(d.names, o.statement()), o.args...)
			require.NoError(t, err, "%#v", o)
		}
		if b.end == heldCommit {
			require.NoError(t, tx.Commit())
		}
	}()

	w := d.w
	if freshWriter {
		w = &writer{}
	}
	tx, err := d.held.Begin()
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	given := cloneHeldOps(b.ops)
	out := w.in(ctx, tx, d.names)
	for _, o := range b.ops {
		require.NoError(t, o.hold(out, d.f), "%#v", o)
	}
	if b.end != heldRollbackBeforeFlush {
		require.NoError(t, w.flush(ctx, tx, d.names))
	}
	// The batch must not change the values it was given: set changes
	// held rows, not the caller's slices.
	require.Equal(t, given, b.ops, "the ops' values after the held batch")
	if b.end == heldRollbackBeforeFlush {
		return
	}
	if b.end == heldCommit {
		require.NoError(t, tx.Commit())
	}
}

func cloneHeldOps(ops []heldOp) []heldOp {
	out := make([]heldOp, len(ops))
	for i, o := range ops {
		out[i] = o
		out[i].args = slices.Clone(o.args)
	}
	return out
}

// heldContents is every row of both tables, in key order, by logical name.
type heldContents map[string][][]any

func (d *heldDBs) contents(t require.TestingT) (reference, held heldContents) {
	return readHeldContents(t, d.reference, d.names), readHeldContents(t, d.held, d.names)
}

func readHeldContents(t require.TestingT, db *sql.DB, names projections.TableNames) heldContents {
	out := heldContents{}
	for _, logical := range []string{heldA, heldB} {
		out[logical] = readHeldRows(t, db, render(names, "SELECT * FROM {"+logical+"} ORDER BY k1, k2"))
	}
	return out
}

func readHeldRows(t require.TestingT, db *sql.DB, query string) [][]any {
	rows, err := db.Query(query)
	require.NoError(t, err)
	defer rows.Close()
	columns, err := rows.Columns()
	require.NoError(t, err)
	out := [][]any{}
	for rows.Next() {
		row := make([]any, len(columns))
		at := make([]any, len(columns))
		for i := range row {
			at[i] = &row[i]
		}
		require.NoError(t, rows.Scan(at...))
		out = append(out, row)
	}
	require.NoError(t, rows.Err())
	return out
}

// heldOps draws operations over two k1 and three k2 values and two or
// three values per column, so that keys, setters and wheres keep meeting
// rows put earlier in the same batch or in another. removeWhere may ask
// for c3 = NULL, which no row equals in SQL.
func heldOps() *rapid.Generator[heldOp] {
	k1 := rapid.SampledFrom([]string{"a", "b"})
	k2 := rapid.SampledFrom([]string{"1", "2", "3"})
	text := rapid.SampledFrom([]any{"x", "y"})
	number := rapid.SampledFrom([]any{int64(0), int64(1)})
	nullable := rapid.SampledFrom([]any{nil, "p", "q"})
	return rapid.Custom(func(t *rapid.T) heldOp {
		kind := heldOpKind(rapid.IntRange(0, int(heldOpKinds)-1).Draw(t, "kind"))
		key1, key2 := k1.Draw(t, "k1"), k2.Draw(t, "k2")
		switch kind {
		case heldPutA:
			return putA(key1, key2, text.Draw(t, "v1"), number.Draw(t, "v2"), nullable.Draw(t, "v3"))
		case heldSetA:
			if rapid.Bool().Draw(t, "set v2") {
				return setA(1, number.Draw(t, "v2"), key1, key2)
			}
			return setA(0, text.Draw(t, "v1"), nullable.Draw(t, "v3"), key1, key2)
		case heldRemoveA:
			return removeA(key1, key2)
		case heldPutB:
			return putB(key1, key2, text.Draw(t, "c1"), number.Draw(t, "c2"), nullable.Draw(t, "c3"))
		case heldRemoveB:
			return removeB(key1, key2)
		default:
			if rapid.Bool().Draw(t, "where c2 c3") {
				return removeWhereB(1, key1, number.Draw(t, "c2"), nullable.Draw(t, "c3"))
			}
			return removeWhereB(0, key1, text.Draw(t, "c1"))
		}
	})
}

// After every batch, both databases hold the same rows. The number of
// checks is the package's (its TestMain lowers rapid's default);
// -rapid.checks raises it.
func TestHeldRowsLeaveWhatStatementsInOrderLeave(t *testing.T) {
	names := heldTableNames(t)
	ops := heldOps()
	// Mostly commits: a rolled-back batch changes nothing.
	ends := rapid.SampledFrom([]heldEnd{heldCommit, heldCommit, heldCommit, heldCommit,
		heldRollbackBeforeFlush, heldRollbackAfterFlush})
	d := openHeldDBs(t, t.TempDir(), names)
	defer d.close()
	rapid.Check(t, func(rt *rapid.T) {
		d.empty(rt)
		// The writer starts over in every transaction: one writer for all
		// batches must do as a new one per batch.
		freshWriter := rapid.Bool().Draw(rt, "fresh writer per batch")
		batches := rapid.IntRange(1, 10).Draw(rt, "batches")
		for i := range batches {
			b := heldBatch{
				ops: rapid.SliceOfN(ops, 0, 15).Draw(rt, fmt.Sprintf("batch %d", i)),
				end: ends.Draw(rt, fmt.Sprintf("end of batch %d", i)),
			}
			d.apply(rt, b, freshWriter)
			reference, held := d.contents(rt)
			require.Equal(rt, reference, held, "after batch %d: statements one by one (expected) vs held rows (actual)", i)
		}
	})
}

// runHeldExample applies batches, all committed, both ways, and returns
// the held database's contents once it has checked the reference's match.
func runHeldExample(t *testing.T, batches ...[]heldOp) heldContents {
	t.Helper()
	d := openHeldDBs(t, t.TempDir(), heldTableNames(t))
	defer d.close()
	for _, ops := range batches {
		d.apply(t, heldBatch{ops: ops}, false)
	}
	reference, held := d.contents(t)
	require.Equal(t, reference, held, "statements one by one (expected) vs held rows (actual)")
	return held
}

func TestHeldRowPutSetAndRemovedInOneBatchLeavesNothing(t *testing.T) {
	// Given a row of A committed by an earlier batch,
	given := []heldOp{putA("a", "1", "x", int64(0), "p")}
	// when one batch puts, sets and removes a new row, and removes the
	// old one after an UPDATE that ran at once on it,
	when := []heldOp{
		putA("a", "2", "x", int64(0), nil),
		setA(1, int64(1), "a", "2"),
		setA(0, "y", "q", "a", "2"),
		removeA("a", "2"),
		setA(1, int64(1), "a", "2"), // on a removed held row: nothing
		removeA("a", "1"),
		setA(0, "y", "q", "a", "1"), // not held: runs at once, deleted at flush
	}
	// then A is empty.
	got := runHeldExample(t, given, when)
	require.Empty(t, got[heldA])
}

func TestHeldRowRemovedThenPutAgainIsWritten(t *testing.T) {
	// Given rows a/1 and a/2 of A committed by an earlier batch,
	given := []heldOp{putA("a", "1", "x", int64(0), "p"), putA("a", "2", "x", int64(0), "p")}
	// when one batch removes a/1 and puts it again, and puts, removes and
	// puts again a/3 that was never there,
	when := []heldOp{
		removeA("a", "1"),
		putA("a", "1", "y", int64(1), nil),
		setA(1, int64(0), "a", "1"),
		putA("a", "3", "x", int64(1), "q"),
		removeA("a", "3"),
		putA("a", "3", "y", int64(0), nil),
	}
	// then both are there as last put and set, and a/2 is untouched.
	got := runHeldExample(t, given, when)
	require.Equal(t, [][]any{
		{"a", "1", "y", int64(0), nil},
		{"a", "2", "x", int64(0), "p"},
		{"a", "3", "y", int64(0), nil},
	}, got[heldA])
}

func TestHeldRowsMatchedByRemoveWhereAreNotWritten(t *testing.T) {
	// Given a/1 of B committed by an earlier batch, matching k1 = a, c1 = x,
	given := []heldOp{putB("a", "1", "x", int64(0), "p")}
	// when one batch puts rows that match and rows that do not, removes
	// where k1 = a and c1 = x, then puts a matching row again,
	when := []heldOp{
		putB("a", "2", "x", int64(1), "q"),
		putB("a", "3", "y", int64(1), "q"),
		putB("b", "1", "x", int64(0), "p"),
		removeWhereB(0, "a", "x"),
		putB("a", "4", "x", int64(0), nil),
	}
	// then only the matching rows that were there or put before the
	// removeWhere are gone.
	got := runHeldExample(t, given, when)
	require.Equal(t, [][]any{
		{"a", "3", "y", int64(1), "q"},
		{"a", "4", "x", int64(0), nil},
		{"b", "1", "x", int64(0), "p"},
	}, got[heldB])
}

func TestHeldRowsBeyondOneStatementAreAllWritten(t *testing.T) {
	// Given 45 rows of A and B put in one batch (written 32, 8 and 1 at a
	// time),
	var given []heldOp
	for i := range 45 {
		given = append(given, putA("a", strconv.Itoa(i), "x", int64(i), nil), putB("a", strconv.Itoa(i), "x", int64(i%2), "p"))
	}
	// when the next batch removes 41 of A by key and B's odd c2 by where,
	var when []heldOp
	for i := range 41 {
		when = append(when, removeA("a", strconv.Itoa(i)))
	}
	when = append(when, removeWhereB(1, "a", int64(1), "p"))
	// then 4 of A are left and B's 23 even ones.
	got := runHeldExample(t, given, when)
	require.Len(t, got[heldA], 4)
	require.Len(t, got[heldB], 23)
}

func TestHeldRowIsNotRemovedWhereANullValueIsAskedFor(t *testing.T) {
	// Given nothing,
	// when one batch puts a row of B whose c3 is NULL and removes where
	// c3 is NULL (with its k1 and c2),
	when := []heldOp{
		putB("b", "1", "x", int64(0), nil),
		removeWhereB(1, "b", int64(0), nil),
	}
	// then the row is there: in SQL, NULL = NULL is not true, so the
	// DELETE matched nothing.
	got := runHeldExample(t, when)
	require.Equal(t, [][]any{{"b", "1", "x", int64(0), nil}}, got[heldB])
}
