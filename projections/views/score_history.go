package views

import (
	"context"
	"database/sql"
	"fmt"
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
	w     writer
	types typeSet
}

func newScoreHistory(dec *decoder) *scoreHistoryProjection {
	return &scoreHistoryProjection{dec: dec, types: types(care.AssignmentCompleted{}.EventType())}
}

func (p *scoreHistoryProjection) reads() typeSet { return p.types }

func (*scoreHistoryProjection) Name() string     { return ScoreHistoryProjection }
func (*scoreHistoryProjection) Version() int     { return 1 }
func (*scoreHistoryProjection) Tables() []string { return []string{"score_points"} }

func (*scoreHistoryProjection) Schema(t projections.TableNames) []string {
	return schema(t,
		// Keyed by what it is read by: no secondary index to maintain.
		`CREATE TABLE {score_points} (
			client_id     TEXT NOT NULL,
			book_id       TEXT NOT NULL,
			assignment_id TEXT NOT NULL,
			book_version  BIGINT NOT NULL,
			session_id    TEXT NOT NULL,
			total         BIGINT NOT NULL,
			severity      TEXT NOT NULL,
			flags         TEXT NOT NULL,
			urgent        INTEGER NOT NULL,
			completed_at  BIGINT NOT NULL,
			position      BIGINT NOT NULL,
			PRIMARY KEY (client_id, book_id, assignment_id))`,
	)
}

func (p *scoreHistoryProjection) Apply(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent) error {
	if !p.types[e.Type] {
		return nil
	}
	v, err := p.dec.decode(e)
	if err != nil {
		return err
	}
	ev, ok := v.(care.AssignmentCompleted)
	if !ok || !ev.Scored {
		return nil
	}
	flags, err := flagsJSON(ev.Flags)
	if err != nil {
		return err
	}
	return p.w.exec(ctx, tx, t, `INSERT INTO {score_points} (assignment_id, client_id, book_id, book_version, session_id,
		total, severity, flags, urgent, completed_at, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (client_id, book_id, assignment_id) DO UPDATE SET total = excluded.total, severity = excluded.severity,
		flags = excluded.flags, urgent = excluded.urgent, completed_at = excluded.completed_at, position = excluded.position`,
		ev.AssignmentID, ev.ClientID, ev.BookID, ev.BookVersion, ev.SessionID, ev.Total, ev.Severity, flags,
		flag(ev.Urgent), ev.At.UnixNano(), e.Position)
}

// ScoreSeries is a client's scores on one book, oldest first.
type ScoreSeries struct {
	ClientID string       `json:"clientId"`
	BookID   string       `json:"bookId"`
	Points   []ScorePoint `json:"points"`
}

// ScorePoint is one scored completion.
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
	err := db.Read(ctx, ScoreHistoryProjection, func(tx *sql.Tx, t projections.TableNames) error {
		return queryRows(ctx, tx, rebind(db, t, `SELECT assignment_id, session_id, book_version, total, severity, flags,
			urgent, completed_at FROM {score_points} WHERE client_id = ? AND book_id = ?
			ORDER BY completed_at, position`), []any{clientID, bookID}, func(rows *sql.Rows) error {
			var (
				p      ScorePoint
				flags  string
				urgent int
				at     int64
			)
			if err := rows.Scan(&p.AssignmentID, &p.SessionID, &p.BookVersion, &p.Total, &p.Severity, &flags, &urgent, &at); err != nil {
				return err
			}
			var err error
			if p.Flags, err = parseFlags(flags); err != nil {
				return err
			}
			p.Urgent, p.CompletedAt = urgent == 1, time.Unix(0, at).UTC()
			out.Points = append(out.Points, p)
			return nil
		})
	})
	if err != nil {
		return ScoreSeries{}, fmt.Errorf("views: scores of client %s on %s: %w", clientID, bookID, err)
	}
	return out, nil
}
