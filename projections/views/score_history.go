package views

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

// ScoreHistoryProjection is the name of the score history projection.
const ScoreHistoryProjection = "score_history"

// The score history keeps every scored completion (questionnaires and
// tests with scoring) per client and book, to chart progress over time.
type scoreHistoryProjection struct {
	dec   *decoder
	c     cipher
	w     writer
	types typeSet
}

func newScoreHistory(dec *decoder, c cipher) *scoreHistoryProjection {
	return &scoreHistoryProjection{dec: dec, c: c, types: types(care.AssignmentCompleted{}.EventType())}
}

func (p *scoreHistoryProjection) reads() typeSet { return p.types }

func (p *scoreHistoryProjection) columnCipher() cipher { return p.c }

func (*scoreHistoryProjection) Name() string     { return ScoreHistoryProjection }
func (*scoreHistoryProjection) Version() int     { return 2 } // 2: PHI columns sealed
func (*scoreHistoryProjection) Tables() []string { return []string{"score_points"} }

// ReadsNoMetadata implements projections.BodiesOnly.
func (*scoreHistoryProjection) ReadsNoMetadata() {}

func (*scoreHistoryProjection) Schema(t projections.TableNames) []string {
	return schema(t,
		// Keyed by what it is read by: no secondary index to maintain.
		`CREATE TABLE {score_points} (
			client_id     TEXT NOT NULL,
			book_id       TEXT NOT NULL,
			assignment_id TEXT NOT NULL,
			book_version  BIGINT NOT NULL,
			session_id    TEXT NOT NULL,
			total         TEXT NOT NULL,
			severity      TEXT NOT NULL,
			flags         TEXT NOT NULL,
			urgent        TEXT NOT NULL,
			completed_at  BIGINT NOT NULL,
			position      BIGINT NOT NULL,
			PRIMARY KEY (client_id, book_id, assignment_id))`,
	)
}

// Prepare implements projections.Preparer: it decodes the events this
// projection reads (nil for the others).
func (p *scoreHistoryProjection) Prepare(e eventstore.RecordedEvent) (any, error) {
	return p.dec.prepare(p.types, e)
}

// Apply implements projections.Projection.
func (p *scoreHistoryProjection) Apply(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent) error {
	v, err := p.Prepare(e)
	if err != nil {
		return err
	}
	return p.ApplyPrepared(ctx, tx, t, e, v)
}

// ApplyPrepared implements projections.Preparer: v is the decoded event.
func (p *scoreHistoryProjection) ApplyPrepared(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent, v any) error {
	if v == nil {
		return nil
	}
	ev, ok := v.(care.AssignmentCompleted)
	if !ok || !ev.Scored {
		return nil
	}
	total, err := p.c.seal(ev.ClientID, colScoreTotal, strconv.Itoa(ev.Total))
	if err != nil {
		return err
	}
	severity, err := p.c.seal(ev.ClientID, colScoreSeverity, ev.Severity)
	if err != nil {
		return err
	}
	flags, err := p.c.sealFlags(ev.ClientID, colScoreFlags, ev.Flags)
	if err != nil {
		return err
	}
	urgent, err := p.c.sealFlag(ev.ClientID, colScoreUrgent, ev.Urgent)
	if err != nil {
		return err
	}
	return p.w.exec(ctx, tx, t, `INSERT INTO {score_points} (assignment_id, client_id, book_id, book_version, session_id,
		total, severity, flags, urgent, completed_at, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (client_id, book_id, assignment_id) DO UPDATE SET total = excluded.total, severity = excluded.severity,
		flags = excluded.flags, urgent = excluded.urgent, completed_at = excluded.completed_at, position = excluded.position`,
		ev.AssignmentID, ev.ClientID, ev.BookID, ev.BookVersion, ev.SessionID, total, severity, flags,
		urgent, ev.At.UnixNano(), e.Position)
}

// ScoreSeries is a client's scores on one book, oldest first.
type ScoreSeries struct {
	ClientID string       `json:"clientId"`
	BookID   string       `json:"bookId"`
	Points   []ScorePoint `json:"points"`
}

// ScorePoint is one scored completion. Once the client's key is destroyed
// its Total reads 0, its Severity eventstore.Redacted, and it has no Flags
// and is not Urgent.
type ScorePoint struct {
	AssignmentID string       `json:"assignmentId"`
	SessionID    string       `json:"sessionId"`
	BookVersion  int          `json:"bookVersion"`
	Total        int          `json:"total"`
	Severity     string       `json:"severity,omitempty"`
	Flags        []books.Flag `json:"flags,omitempty"`
	Urgent       bool         `json:"urgent"`
	CompletedAt  time.Time    `json:"completedAt"`
}

// ScoreHistory reads clientID's scores on bookID, oldest first.
func ScoreHistory(ctx context.Context, db *projections.DB, clientID, bookID string) (ScoreSeries, error) {
	out := ScoreSeries{ClientID: clientID, BookID: bookID, Points: []ScorePoint{}}
	c, err := readerCipher(db, ScoreHistoryProjection)
	if err != nil {
		return ScoreSeries{}, fmt.Errorf("views: scores of client %s on %s: %w", clientID, bookID, err)
	}
	err = db.Read(ctx, ScoreHistoryProjection, func(tx *sql.Tx, t projections.TableNames) error {
		return queryRows(ctx, tx, rebind(db, t, `SELECT assignment_id, session_id, book_version, total, severity, flags,
			urgent, completed_at FROM {score_points} WHERE client_id = ? AND book_id = ?
			ORDER BY completed_at, position`), []any{clientID, bookID}, func(rows *sql.Rows) error {
			var (
				p                    ScorePoint
				total, flags, urgent string
				at                   int64
			)
			if err := rows.Scan(&p.AssignmentID, &p.SessionID, &p.BookVersion, &total, &p.Severity, &flags, &urgent, &at); err != nil {
				return err
			}
			err := c.openInto(clientID, field(colScoreSeverity, &p.Severity))
			if err != nil {
				return err
			}
			n, err := c.openTotal(clientID, colScoreTotal, &total)
			if err != nil {
				return err
			}
			if n != nil {
				p.Total = *n
			}
			if p.Flags, err = c.openFlags(clientID, colScoreFlags, flags); err != nil {
				return err
			}
			if p.Urgent, err = c.openFlag(clientID, colScoreUrgent, urgent); err != nil {
				return err
			}
			p.CompletedAt = time.Unix(0, at).UTC()
			out.Points = append(out.Points, p)
			return nil
		})
	})
	if err != nil {
		return ScoreSeries{}, fmt.Errorf("views: scores of client %s on %s: %w", clientID, bookID, err)
	}
	return out, nil
}
