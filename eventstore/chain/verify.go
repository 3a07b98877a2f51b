package chain

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/google/uuid"

	"github.com/careflow/careflow/eventstore"
)

// pageSize is how many events or links one read fetches while verifying.
const pageSize = 1000

// Kind says how the log differs from its chain.
type Kind string

const (
	// Altered: the event at Position is the one chained there, but its
	// content (data, type, metadata, times...) changed.
	Altered Kind = "altered"
	// Deleted: the chain recorded an event at Position that the log no
	// longer has.
	Deleted Kind = "deleted"
	// Inserted: the log has an event at Position, inside the chained
	// range, that the chain never recorded.
	Inserted Kind = "inserted"
	// Reordered: Position holds another event than the one chained there
	// (events swapped or moved).
	Reordered Kind = "reordered"
	// ChainAltered: the event matches the digest the chain holds for it,
	// but the link hash does not follow from the previous one: the chain
	// table itself was changed.
	ChainAltered Kind = "chain-altered"
)

// Problem is the first place where the log and the chain disagree.
type Problem struct {
	Kind     Kind
	Position int64
	// Chained is the event id the chain recorded at Position (uuid.Nil
	// for Inserted).
	Chained uuid.UUID
	// Found is the event id the log holds at Position (uuid.Nil for
	// Deleted).
	Found  uuid.UUID
	Detail string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s at position %d: %s", p.Kind, p.Position, p.Detail)
}

// Report is what Verify found.
type Report struct {
	// Verified is how many events matched the chain.
	Verified int64
	// Head is the last link that matched (GenesisLink if none did).
	Head Link
	// ChainHead is the chain's head when the verification started; the
	// verification covers the log up to it.
	ChainHead Link
	// Unchained is how many events follow ChainHead in the log: appended
	// but not chained yet. That is not a problem.
	Unchained int64
	// Problem is the first mismatch, nil when the log matches its chain.
	Problem *Problem
}

// OK reports whether the log matches its chain.
func (r Report) OK() bool { return r.Problem == nil }

func (r Report) String() string {
	if !r.OK() {
		return fmt.Sprintf("TAMPERED: %s (%d events before it match the chain)", r.Problem, r.Verified)
	}
	return fmt.Sprintf("OK: %d events match the chain up to position %d (hash %s); %d events not chained yet",
		r.Verified, r.Head.Position, r.Head.Hash, r.Unchained)
}

// Verify walks the log in global order against the chain recorded in
// table and reports OK, or the first position where they disagree and
// how. It covers the log up to the chain's head as it is when Verify
// starts; events after it are counted as not chained yet. An error means
// the log or the chain could not be read, never that they disagree.
//
// Verify trusts the chain table. Someone who can write to the database can
// rewrite events and the chain together; only VerifyCheckpoints, with
// checkpoints kept elsewhere, catches that.
func Verify(ctx context.Context, store eventstore.Store, table Table) (Report, error) {
	head, err := table.Head(ctx)
	if err != nil {
		return Report{}, err
	}
	report := Report{Head: GenesisLink, ChainHead: head}
	log := newLogCursor(store)
	links := &linkCursor{table: table, upTo: head.Position}
	for {
		link, chained, err := links.peek(ctx)
		if err != nil {
			return Report{}, err
		}
		e, logged, err := log.peek(ctx)
		if err != nil {
			return Report{}, err
		}
		switch {
		case !chained && !logged:
			return report, nil
		case !chained:
			n, err := log.count(ctx)
			if err != nil {
				return Report{}, err
			}
			report.Unchained = n
			return report, nil
		case !logged:
			report.Problem = &Problem{Kind: Deleted, Position: link.Position, Chained: link.EventID,
				Detail: fmt.Sprintf("the chain recorded event %s here; the log ends at %d", link.EventID, report.Head.Position)}
			return report, nil
		case e.Position > link.Position:
			report.Problem = &Problem{Kind: Deleted, Position: link.Position, Chained: link.EventID,
				Detail: fmt.Sprintf("the chain recorded event %s here; the log goes on at %d", link.EventID, e.Position)}
			return report, nil
		case e.Position < link.Position:
			report.Problem = &Problem{Kind: Inserted, Position: e.Position, Found: e.ID,
				Detail: fmt.Sprintf("event %s (%s) is in the log but was never chained; the chain goes on at %d",
					e.ID, e.Type, link.Position)}
			return report, nil
		}
		if p := compare(report.Head.Hash, link, e); p != nil {
			report.Problem = p
			return report, nil
		}
		report.Head = link
		report.Verified++
		links.pop()
		log.pop()
	}
}

// compare checks the event at a chained position against its link.
func compare(prev Hash, link Link, e eventstore.RecordedEvent) *Problem {
	problem := &Problem{Position: link.Position, Chained: link.EventID, Found: e.ID}
	if e.ID != link.EventID {
		problem.Kind = Reordered
		problem.Detail = fmt.Sprintf("the log holds event %s (%s) here, the chain recorded event %s",
			e.ID, e.Type, link.EventID)
		return problem
	}
	canonical := Canonical(e)
	if sha256.Sum256(canonical) != link.Digest {
		problem.Kind = Altered
		problem.Detail = fmt.Sprintf("event %s (%s) is not what was chained: its content changed", e.ID, e.Type)
		return problem
	}
	if linkHash(prev, canonical) != link.Hash {
		problem.Kind = ChainAltered
		problem.Detail = fmt.Sprintf("event %s matches its recorded digest but the recorded link hash does not follow "+
			"from the previous link: the chain table was changed", e.ID)
		return problem
	}
	return nil
}

// logCursor reads the log in pages, one event at a time.
type logCursor struct {
	store eventstore.Store
	page  []eventstore.RecordedEvent
	after int64
	done  bool
}

func newLogCursor(store eventstore.Store) *logCursor { return &logCursor{store: store} }

// peek returns the next event without consuming it; ok is false at the end
// of the log.
func (c *logCursor) peek(ctx context.Context) (eventstore.RecordedEvent, bool, error) {
	if len(c.page) == 0 && !c.done {
		page, err := c.store.ReadAll(ctx, c.after, pageSize)
		if err != nil {
			return eventstore.RecordedEvent{}, false, fmt.Errorf("chain: read the log after %d: %w", c.after, err)
		}
		c.page = page
		c.done = len(page) == 0
	}
	if len(c.page) == 0 {
		return eventstore.RecordedEvent{}, false, nil
	}
	return c.page[0], true, nil
}

func (c *logCursor) pop() {
	c.after = c.page[0].Position
	c.page = c.page[1:]
}

// count consumes and counts the rest of the log.
func (c *logCursor) count(ctx context.Context) (int64, error) {
	var n int64
	for {
		if _, ok, err := c.peek(ctx); err != nil || !ok {
			return n, err
		}
		n += int64(len(c.page))
		c.after = c.page[len(c.page)-1].Position
		c.page = nil
	}
}

// linkCursor reads the chain in pages up to and including upTo.
type linkCursor struct {
	table Table
	upTo  int64
	page  []Link
	after int64
	done  bool
}

func (c *linkCursor) peek(ctx context.Context) (Link, bool, error) {
	if len(c.page) == 0 && !c.done {
		page, err := c.table.Links(ctx, c.after, pageSize)
		if err != nil {
			return Link{}, false, fmt.Errorf("chain: read the chain after %d: %w", c.after, err)
		}
		for i, l := range page {
			if l.Position > c.upTo {
				page = page[:i]
				c.done = true
				break
			}
		}
		c.page = page
		c.done = c.done || len(page) == 0
	}
	if len(c.page) == 0 {
		return Link{}, false, nil
	}
	return c.page[0], true, nil
}

func (c *linkCursor) pop() {
	c.after = c.page[0].Position
	c.page = c.page[1:]
}
