package chain

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/careflow/careflow/eventstore"
)

// Checkpoint is a signed statement that the chain's hash at Position was
// Hash at SignedAt. Kept outside the database, it lets a reviewer prove
// later that the log up to Position was not rewritten since.
type Checkpoint struct {
	Position int64     `json:"position"`
	Hash     Hash      `json:"hash"`
	SignedAt time.Time `json:"signedAt"`
	// KeyID names the public key that verifies Signature (see KeyID).
	KeyID     string `json:"keyId"`
	Signature []byte `json:"signature"`
}

// signedTimeLayout always writes six fractional digits, so the signed text
// has one spelling per instant.
const signedTimeLayout = "2006-01-02T15:04:05.000000Z"

// Message is the exact text the signature covers. It is plain text so a
// reviewer can rebuild and check it with any Ed25519 tool.
func (c Checkpoint) Message() []byte {
	return fmt.Appendf(nil, "careflow event chain checkpoint v1\nposition %d\nhash %s\nsigned-at %s\n",
		c.Position, c.Hash, c.SignedAt.UTC().Format(signedTimeLayout))
}

// KeyID is a short fingerprint of a public key: the first 8 bytes of its
// SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Sign makes the checkpoint for head at the given time. The time is cut to
// microseconds, which every backend stores exactly.
func Sign(key ed25519.PrivateKey, head Link, at time.Time) Checkpoint {
	c := Checkpoint{
		Position: head.Position,
		Hash:     head.Hash,
		SignedAt: at.UTC().Truncate(time.Microsecond),
		KeyID:    KeyID(key.Public().(ed25519.PublicKey)),
	}
	c.Signature = ed25519.Sign(key, c.Message())
	return c
}

// VerifySignature reports why c is not signed by pub, or nil.
func (c Checkpoint) VerifySignature(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("the public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if want := KeyID(pub); c.KeyID != want {
		return fmt.Errorf("signed by key %s, not by the given key %s", c.KeyID, want)
	}
	if !ed25519.Verify(pub, c.Message(), c.Signature) {
		return errors.New("the signature does not verify")
	}
	return nil
}

// ExportCheckpoints writes every checkpoint in table to w as JSON lines,
// oldest first, and returns how many it wrote.
func ExportCheckpoints(ctx context.Context, table Table, w io.Writer) (int, error) {
	cps, err := table.Checkpoints(ctx)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, c := range cps {
		if err := enc.Encode(c); err != nil {
			return 0, fmt.Errorf("chain: export checkpoints: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("chain: export checkpoints: %w", err)
	}
	return len(cps), nil
}

// ReadCheckpoints reads JSON lines as ExportCheckpoints writes them. Blank
// lines are skipped; anything else that is not a checkpoint is an error.
func ReadCheckpoints(r io.Reader) ([]Checkpoint, error) {
	var out []Checkpoint
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		var c Checkpoint
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("chain: checkpoint on line %d: %w", line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("chain: checkpoint on line %d: more than one value on the line", line)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("chain: read checkpoints: %w", err)
	}
	return out, nil
}

// CheckpointFailure says why one checkpoint does not hold.
type CheckpointFailure struct {
	// Index is the checkpoint's index in the slice given to
	// VerifyCheckpoints.
	Index    int
	Position int64
	Reason   string
}

func (f CheckpointFailure) String() string {
	return "checkpoint " + strconv.Itoa(f.Index+1) + " at position " + strconv.FormatInt(f.Position, 10) + ": " + f.Reason
}

// CheckpointReport is the outcome of VerifyCheckpoints.
type CheckpointReport struct {
	// Checked is how many checkpoints were given.
	Checked int
	// Failures lists every checkpoint that does not hold, by index.
	Failures []CheckpointFailure
}

// OK reports whether every checkpoint holds.
func (r CheckpointReport) OK() bool { return len(r.Failures) == 0 }

func (r CheckpointReport) String() string {
	if r.OK() {
		return fmt.Sprintf("OK: %d checkpoints hold", r.Checked)
	}
	s := fmt.Sprintf("FAILED: %d of %d checkpoints do not hold", len(r.Failures), r.Checked)
	for _, f := range r.Failures {
		s += "\n  " + f.String()
	}
	return s
}

// VerifyCheckpoints proves the log has only grown since the checkpoints
// were signed: each signature must verify with pub, and the chain hash
// recomputed from the log as it is today (not read from the chain table,
// which whoever rewrote the log could have rewritten too) must equal the
// signed hash at the signed position. It walks the log once, up to the
// highest checkpoint. An error means the log could not be read; a
// checkpoint that does not hold is a Failure in the report.
func VerifyCheckpoints(ctx context.Context, store eventstore.Store, pub ed25519.PublicKey, checkpoints []Checkpoint) (CheckpointReport, error) {
	if len(pub) != ed25519.PublicKeySize {
		return CheckpointReport{}, fmt.Errorf("chain: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	report := CheckpointReport{Checked: len(checkpoints)}
	order := make([]int, len(checkpoints))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return compareInt64(checkpoints[a].Position, checkpoints[b].Position)
	})
	fail := func(i int, reason string) {
		report.Failures = append(report.Failures, CheckpointFailure{Index: i, Position: checkpoints[i].Position, Reason: reason})
	}

	log := newLogCursor(store)
	current := GenesisLink
	for _, i := range order {
		c := checkpoints[i]
		if err := c.VerifySignature(pub); err != nil {
			fail(i, err.Error())
			continue
		}
		var err error
		if current, err = advance(ctx, log, current, c.Position); err != nil {
			if errors.Is(err, errNotInLog) {
				fail(i, err.Error())
				continue
			}
			return CheckpointReport{}, err
		}
		if current.Hash != c.Hash {
			fail(i, fmt.Sprintf("the log today hashes to %s at this position, the checkpoint signed %s: "+
				"an event at or before it was altered, removed, inserted or moved", current.Hash, c.Hash))
		}
	}
	slices.SortFunc(report.Failures, func(a, b CheckpointFailure) int { return a.Index - b.Index })
	return report, nil
}

var errNotInLog = errors.New("no event at this position in the log")

// advance chains the log's events from current up to position. If no event
// sits exactly at position it fails with errNotInLog, leaving current
// where the log passed position, so later checkpoints can still be
// checked.
func advance(ctx context.Context, log *logCursor, current Link, position int64) (Link, error) {
	for current.Position < position {
		e, ok, err := log.peek(ctx)
		if err != nil {
			return current, err
		}
		if !ok {
			return current, fmt.Errorf("%w (it ends at %d): events were removed", errNotInLog, current.Position)
		}
		if e.Position > position {
			return current, fmt.Errorf("%w (the next one is at %d): the event signed there was removed", errNotInLog, e.Position)
		}
		log.pop()
		current = Next(current.Hash, e)
	}
	return current, nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
