package views

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

// How a PHI column is stored. A read-model file or backup must reveal no
// PHI, so every PHI column holds its value sealed under the client's data
// key (subject = client id) as TEXT:
//
//   - "" for an empty value: nothing to hide (the sealed length would tell
//     as much), and no Seal on the hot path for the many empty fields;
//   - sealedPrefix + base64 of what the Sealer returned;
//   - redactedMark when the client's key was already destroyed as the row
//     was built (a rebuild after the client was forgotten).
//
// The AAD names the column ("view:<table>.<column>"), so a sealed value
// moved to another column, or to another client's row, does not open.
const (
	sealedPrefix = "sealed:"
	redactedMark = "redacted:"
)

// ErrNoSealer: a read model that holds PHI was made without a Sealer. It
// would have to store PHI in clear, so it is refused.
var ErrNoSealer = errors.New("views: a Sealer is required: the read models keep PHI sealed")

// column names a PHI column as "<logical table>.<column>": its AAD.
type column string

func (c column) aad() []byte { return []byte("view:" + string(c)) }

// The PHI columns, by table.
const (
	colInboxClientName   column = "inbox_clients.display_name"
	colInboxSessionTitle column = "inbox_sessions.title"
	colInboxItemTotal    column = "inbox_items.total"
	colInboxItemSeverity column = "inbox_items.severity"
	colInboxItemFlags    column = "inbox_items.flags"
	colCSTitle           column = "cs_sessions.title"
	colCSDescription     column = "cs_sessions.description"
	colCSCancelReason    column = "cs_sessions.cancel_reason"
	colCSTotal           column = "cs_assignments.total"
	colCSSeverity        column = "cs_assignments.severity"
	colCSFeedbackText    column = "cs_feedback.text"
	colCSCommentText     column = "cs_comments.text"
	colCSMessageText     column = "cs_messages.text"
	colSVTitle           column = "sv_sessions.title"
	colSVDescription     column = "sv_sessions.description"
	colSVCloseReason     column = "sv_sessions.close_reason"
	colSVCancelReason    column = "sv_sessions.cancel_reason"
	colSVAnswers         column = "sv_assignments.answers"
	colSVTotal           column = "sv_assignments.total"
	colSVSeverity        column = "sv_assignments.severity"
	colSVFlags           column = "sv_assignments.flags"
	colSVUrgent          column = "sv_assignments.urgent"
	colSVFeedbackText    column = "sv_feedback.text"
	colSVCommentText     column = "sv_comments.text"
	colSVPostText        column = "sv_posts.text"
	colScoreTotal        column = "score_points.total"
	colScoreSeverity     column = "score_points.severity"
	colScoreFlags        column = "score_points.flags"
	colScoreUrgent       column = "score_points.urgent"
)

// cipher seals and opens the PHI columns of one read model.
type cipher struct {
	s eventstore.Sealer
}

func newCipher(s eventstore.Sealer) (cipher, error) {
	if s == nil {
		return cipher{}, ErrNoSealer
	}
	return cipher{s: s}, nil
}

// seal returns what to store for plaintext in col of clientID's row. A
// destroyed key stores redactedMark, so a rebuild after the client was
// forgotten goes on; any other error fails the Apply.
func (c cipher) seal(clientID string, col column, plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	sealed, err := c.s.Seal(clientID, []byte(plaintext), col.aad())
	if errors.Is(err, eventstore.ErrKeyDestroyed) {
		return redactedMark, nil
	}
	if err != nil {
		return "", fmt.Errorf("views: seal %s: %w", col, err)
	}
	return sealedText(sealed), nil
}

// sealedText is what seal stores: sealedPrefix and sealed in base64, in one
// allocation (a rebuild seals millions of values). 48 bytes, whole groups
// of three, encode to 64 characters, so encoding chunk by chunk without
// padding gives what encoding the whole would.
func sealedText(sealed []byte) string {
	enc := base64.RawStdEncoding
	var b strings.Builder
	b.Grow(len(sealedPrefix) + enc.EncodedLen(len(sealed)))
	b.WriteString(sealedPrefix)
	var chunk [64]byte
	for len(sealed) > 0 {
		n := min(len(sealed), 48)
		enc.Encode(chunk[:], sealed[:n])
		b.Write(chunk[:enc.EncodedLen(n)])
		sealed = sealed[n:]
	}
	return b.String()
}

// open reads back what seal stored: eventstore.Redacted once the client's
// key is destroyed (or was when the row was built).
func (c cipher) open(clientID string, col column, stored string) (string, error) {
	switch {
	case stored == "":
		return "", nil
	case stored == redactedMark:
		return eventstore.Redacted, nil
	case !strings.HasPrefix(stored, sealedPrefix):
		// Never hand out a value that was not sealed: it was not written
		// by this version of the read model.
		return "", fmt.Errorf("views: %s of client %s is not sealed", col, clientID)
	}
	sealed, err := base64.RawStdEncoding.DecodeString(stored[len(sealedPrefix):])
	if err != nil {
		return "", fmt.Errorf("views: %s of client %s: %w", col, clientID, err)
	}
	plain, err := c.s.Open(clientID, sealed, col.aad())
	if errors.Is(err, eventstore.ErrKeyDestroyed) {
		return eventstore.Redacted, nil
	}
	if err != nil {
		return "", fmt.Errorf("views: open %s of client %s: %w", col, clientID, err)
	}
	return string(plain), nil
}

// openInto opens every (col, *field) pair of one row in place.
func (c cipher) openInto(clientID string, fields ...openField) error {
	for _, f := range fields {
		v, err := c.open(clientID, f.col, *f.value)
		if err != nil {
			return err
		}
		*f.value = v
	}
	return nil
}

type openField struct {
	col   column
	value *string
}

func field(col column, value *string) openField { return openField{col: col, value: value} }

// sealTotal seals a score total; nil (NULL) when the assignment was not
// scored. No query compares or sums totals, so they need not be numbers.
func (c cipher) sealTotal(clientID string, col column, scored bool, total int) (any, error) {
	if !scored {
		return nil, nil
	}
	return c.seal(clientID, col, strconv.Itoa(total))
}

// openTotal reads a total back: nil when NULL or redacted.
func (c cipher) openTotal(clientID string, col column, stored *string) (*int, error) {
	if stored == nil {
		return nil, nil
	}
	s, err := c.open(clientID, col, *stored)
	if err != nil || s == eventstore.Redacted || s == "" {
		return nil, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return nil, fmt.Errorf("views: %s of client %s: %w", col, clientID, err)
	}
	return &n, nil
}

// sealFlag seals a boolean ("1" or "0", both sealed so neither shows).
func (c cipher) sealFlag(clientID string, col column, b bool) (string, error) {
	return c.seal(clientID, col, strconv.Itoa(flag(b)))
}

// openFlag reads a sealed boolean: false when empty or redacted.
func (c cipher) openFlag(clientID string, col column, stored string) (bool, error) {
	s, err := c.open(clientID, col, stored)
	return s == "1", err
}

// sealFlags seals score flags as JSON ("" when none).
func (c cipher) sealFlags(clientID string, col column, flags []books.Flag) (string, error) {
	s, err := flagsJSON(flags)
	if err != nil {
		return "", err
	}
	return c.seal(clientID, col, s)
}

// openFlags reads sealed score flags: nil when none or redacted.
func (c cipher) openFlags(clientID string, col column, stored string) ([]books.Flag, error) {
	s, err := c.open(clientID, col, stored)
	if err != nil || s == eventstore.Redacted {
		return nil, err
	}
	return parseFlags(s)
}

// sealAnswers seals questionnaire answers as JSON ("" when none).
func (c cipher) sealAnswers(clientID string, col column, answers []books.Answer) (string, error) {
	s, err := answersJSON(answers)
	if err != nil {
		return "", err
	}
	return c.seal(clientID, col, s)
}

// openAnswers reads sealed answers: nil when none or redacted.
func (c cipher) openAnswers(clientID string, col column, stored string) ([]books.Answer, error) {
	s, err := c.open(clientID, col, stored)
	if err != nil || s == eventstore.Redacted {
		return nil, err
	}
	return parseAnswers(s)
}

// sealedProjection is a read model of this package that seals its PHI.
type sealedProjection interface {
	projections.Projection
	columnCipher() cipher
}

// readerCipher returns the cipher of the projection registered under name
// in db: the query functions open with the Sealer the read model was built
// with, which the runner (or a read-only process) registered.
func readerCipher(db *projections.DB, name string) (cipher, error) {
	p, err := db.Projection(name)
	if err != nil {
		return cipher{}, err
	}
	sp, ok := p.(sealedProjection)
	if !ok {
		return cipher{}, fmt.Errorf("views: %s is registered with a projection of type %T, not this package's", name, p)
	}
	return sp.columnCipher(), nil
}
