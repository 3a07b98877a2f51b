// Package chain makes careflow's event log tamper-evident. Every event is
// linked to the one before it in the global order by a SHA-256 hash chain:
//
//	hash_0 = 32 zero bytes (the genesis)
//	hash_n = SHA-256(hash_{n-1} || Canonical(event_n))
//
// A Chainer follows the log and records each link in the event_chain table
// beside the events, and signs the chain's head with an Ed25519 key from
// time to time (a Checkpoint). Verify walks the log against the recorded
// chain and names the first position that does not match; VerifyCheckpoints
// proves, against checkpoints exported and kept elsewhere, that the log has
// only grown since they were signed. See
// docs/adr/0008-tamper-evident-chain.md.
//
// The package knows the Store contract only, and no domain type.
package chain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/careflow/careflow/eventstore"
)

// Hash is a SHA-256 digest.
type Hash [sha256.Size]byte

// Genesis is the hash the chain starts from: 32 zero bytes.
var Genesis Hash

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText writes the hash as lowercase hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads the hex form back.
func (h *Hash) UnmarshalText(text []byte) error {
	if hex.DecodedLen(len(text)) != len(h) {
		return fmt.Errorf("chain: hash %q is not %d hex digits", text, 2*len(h))
	}
	_, err := hex.Decode(h[:], text)
	if err != nil {
		return fmt.Errorf("chain: hash %q: %w", text, err)
	}
	return nil
}

// Link is the chain's record of one event.
type Link struct {
	// Position is the event's global position (0 for the genesis).
	Position int64
	// EventID is the id of the event chained at Position.
	EventID uuid.UUID
	// Digest is SHA-256 of the event's canonical bytes alone. It is not
	// needed to check the chain; it lets Verify tell an altered event from
	// an altered chain row.
	Digest Hash
	// Hash is the chain hash up to and including this event.
	Hash Hash
}

// GenesisLink is the head of an empty chain.
var GenesisLink = Link{Hash: Genesis}

// Next is the link that chains e after prev.
func Next(prev Hash, e eventstore.RecordedEvent) Link {
	canonical := Canonical(e)
	return Link{Position: e.Position, EventID: e.ID, Digest: sha256.Sum256(canonical), Hash: linkHash(prev, canonical)}
}

func linkHash(prev Hash, canonical []byte) Hash {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(canonical)
	var out Hash
	h.Sum(out[:0])
	return out
}

// ErrHeadMoved: the table's head is no longer the link the caller chained
// from (another chainer got there first). Read the head again and go on.
var ErrHeadMoved = errors.New("chain: the chain's head moved")

// Table stores the chain and its checkpoints next to the events. OpenSQLite
// and OpenPostgres give one.
type Table interface {
	// Head is the last link recorded, GenesisLink when there is none.
	Head(ctx context.Context) (Link, error)
	// Append records links, in order, after head, atomically. It returns
	// ErrHeadMoved, and records nothing, when head is not the last link.
	Append(ctx context.Context, head Link, links []Link) error
	// Links returns up to limit links with position > after, in order.
	Links(ctx context.Context, after int64, limit int) ([]Link, error)
	// SaveCheckpoint stores a signed checkpoint.
	SaveCheckpoint(ctx context.Context, c Checkpoint) error
	// Checkpoints returns every stored checkpoint, oldest first.
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	// Close releases the table's connections.
	Close() error
}

// Table names, the same for every backend.
const (
	linksTable       = "event_chain"
	checkpointsTable = "event_chain_checkpoints"
)
