// Package projections turns the global event log into read models.
//
// Each Projection owns a few tables in a read-model database (DB) separate
// from the event store. A Runner feeds every projection the ordered global
// log from its own checkpoint and commits the projection's writes and its new
// checkpoint in one transaction, so a crash can neither skip an event nor
// apply one twice. Tables carry a generation suffix: a rebuild fills fresh
// tables while the old ones keep serving reads, and swaps them in once it has
// caught up. See docs/adr/0004-projection-runner.md.
package projections

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"github.com/careflow/careflow/eventstore"
)

// Projection builds one read model from the event log.
type Projection interface {
	// Name is stable and unique, e.g. "provider_inbox".
	Name() string
	// Version is bumped when the schema or the logic changes: a projection
	// whose stored version differs is rebuilt automatically.
	Version() int
	// Tables are the logical names of the tables the projection owns.
	Tables() []string
	// Schema returns the statements that create the tables (and indexes)
	// of one generation, using t.Of("logical") for every table name.
	// Indexes are statements of their own starting CREATE [UNIQUE] INDEX:
	// the runner fills a new generation without them and creates them once
	// it has caught up with the log (a bulk load), so Apply must not rely
	// on one (an ON CONFLICT target needs the table's PRIMARY KEY or a
	// UNIQUE constraint of the CREATE TABLE). A CREATE TABLE may end in
	// WITHOUT ROWID (SQLite: the table is its primary key's B-tree); the
	// runner drops that clause on PostgreSQL.
	Schema(t TableNames) []string
	// Apply writes the effect of one event inside the runner's transaction.
	// It must not commit or roll back tx. Events the projection does not
	// care about are ignored (return nil). An error stops the projection at
	// this event until it is retried or rebuilt. e (its Data included) is
	// shared with the other projections: Apply must not modify it.
	Apply(ctx context.Context, tx *sql.Tx, t TableNames, e eventstore.RecordedEvent) error
}

// Preparer is a Projection with work on an event that needs no
// transaction and no read model, such as decoding its body. The runner
// calls Prepare for every event of a batch it is catching up with before
// it waits for the writer, so on SQLite that work runs on another core
// while another projection commits, and hands each result to
// ApplyPrepared in place of Apply. An error from Prepare is the event's
// failure, as one from Apply would be. Apply must still do the same as
// Prepare and ApplyPrepared together.
type Preparer interface {
	Projection
	Prepare(e eventstore.RecordedEvent) (any, error)
	ApplyPrepared(ctx context.Context, tx *sql.Tx, t TableNames, e eventstore.RecordedEvent, prepared any) error
}

// BodiesOnly is a Projection that reads no event's Metadata (actor,
// command, correlation, causation, clinic, occurred-at): its read model is
// made of the events' bodies and positions. When every projection of a
// runner is one and the store is an eventstore.BodyReader, the runner
// reads the log without the Metadata while it catches up; the events it
// applies as they arrive keep theirs. A projection that reads Metadata
// must not be one.
type BodiesOnly interface {
	Projection
	ReadsNoMetadata()
}

// Flusher is a Projection that holds some of a batch's writes in memory,
// so that the events of a batch changing the same rows write them once.
// The runner calls Flush once after the last Apply of every batch, in the
// batch's transaction, before it saves the checkpoint: the batch commits
// its held writes and its checkpoint together, or neither. A transaction
// the runner rolls back (a failed Apply or Flush) takes the held writes
// with it; the next transaction starts with none. An error from Flush is
// the batch's failure: the runner halves the batch until it has the one
// event whose Flush fails, and stops the projection there. (Writes that
// fail only together, from events of one batch, succeed once the halves
// are apart, and the projection goes on.)
type Flusher interface {
	Projection
	Flush(ctx context.Context, tx *sql.Tx, t TableNames) error
}

// TableNames maps a projection's logical table names to the physical names
// of one generation: "inbox_items" in generation 3 is "inbox_items_g3".
type TableNames struct {
	projection string
	generation int64
	logical    []string
}

func newTableNames(projection string, generation int64, logical []string) TableNames {
	return TableNames{projection: projection, generation: generation, logical: slices.Clone(logical)}
}

// Of returns the physical name of a logical table. A name the projection
// does not declare in Tables is a programming error, so Of panics: the
// runner turns a panic in Apply into a failure of that projection.
func (t TableNames) Of(logical string) string {
	if !slices.Contains(t.logical, logical) {
		panic(fmt.Sprintf("projections: %s does not declare table %q (declared: %v)", t.projection, logical, t.logical))
	}
	return physicalName(logical, t.generation)
}

// Generation is the generation these names belong to.
func (t TableNames) Generation() int64 { return t.generation }

// Projection is the name of the projection owning the tables.
func (t TableNames) Projection() string { return t.projection }

// Logical lists the logical table names in declaration order.
func (t TableNames) Logical() []string { return slices.Clone(t.logical) }

// Physical lists the physical table names in declaration order.
func (t TableNames) Physical() []string {
	out := make([]string, len(t.logical))
	for i, l := range t.logical {
		out[i] = physicalName(l, t.generation)
	}
	return out
}

func physicalName(logical string, generation int64) string {
	return logical + "_g" + strconv.FormatInt(generation, 10)
}

// Names are used unquoted in SQL, so they are restricted to lower-case
// identifiers that every SQL dialect accepts as they are. Logical names stay
// short enough that a generation suffix keeps them within PostgreSQL's 63.
var (
	identifierPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)
	physicalPattern   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	generationSuffix  = regexp.MustCompile(`_g[0-9]+$`)
)

func validateProjection(p Projection) error {
	name := p.Name()
	if !identifierPattern.MatchString(name) {
		return fmt.Errorf("projections: projection name %q must match %s", name, identifierPattern)
	}
	if p.Version() < 1 {
		return fmt.Errorf("projections: %s: version %d must be at least 1", name, p.Version())
	}
	tables := p.Tables()
	if len(tables) == 0 {
		return fmt.Errorf("projections: %s declares no tables", name)
	}
	seen := map[string]bool{}
	for _, table := range tables {
		switch {
		case !identifierPattern.MatchString(table):
			return fmt.Errorf("projections: %s: table name %q must match %s", name, table, identifierPattern)
		case generationSuffix.MatchString(table):
			// "x_g1" could collide with generation 1 of a table "x".
			return fmt.Errorf("projections: %s: table name %q must not end like a generation suffix", name, table)
		case table == stateTable:
			return fmt.Errorf("projections: %s: table name %q is reserved", name, table)
		case seen[table]:
			return fmt.Errorf("projections: %s declares table %q twice", name, table)
		}
		seen[table] = true
	}
	return nil
}
