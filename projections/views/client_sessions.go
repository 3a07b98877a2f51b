package views

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

// ClientSessionsProjection is the name of the client session list projection.
const ClientSessionsProjection = "client_sessions"

// The client session list holds only what a client may see of their own
// care: sessions, assignments with their due dates, status and scores,
// feedback with its comment threads, and the session messages. It never
// reads the care team's discussion or notes, nor a session's close reason
// or an assignment's risk flags, so no query can leak them to a client.
type clientSessionsProjection struct {
	dec   *decoder
	c     cipher
	w     writer
	types typeSet
}

func newClientSessions(dec *decoder, c cipher) *clientSessionsProjection {
	return &clientSessionsProjection{dec: dec, c: c, types: types(
		care.SessionScheduled{}.EventType(), care.SessionActivated{}.EventType(), care.SessionRescheduled{}.EventType(),
		care.SessionCancelled{}.EventType(), care.SessionClosed{}.EventType(),
		care.AssignmentGiven{}.EventType(), care.AssignmentStarted{}.EventType(), care.AssignmentCompleted{}.EventType(),
		care.AssignmentOverdue{}.EventType(), care.AssignmentFeedbackGiven{}.EventType(),
		care.AssignmentCommentPosted{}.EventType(), care.SessionMessagePosted{}.EventType(),
	)}
}

func (p *clientSessionsProjection) reads() typeSet { return p.types }

func (p *clientSessionsProjection) columnCipher() cipher { return p.c }

func (*clientSessionsProjection) Name() string { return ClientSessionsProjection }
func (*clientSessionsProjection) Version() int { return 2 } // 2: PHI columns sealed
func (*clientSessionsProjection) Tables() []string {
	return []string{"cs_sessions", "cs_assignments", "cs_feedback", "cs_comments", "cs_messages"}
}

// ReadsNoMetadata implements projections.BodiesOnly.
func (*clientSessionsProjection) ReadsNoMetadata() {}

func (*clientSessionsProjection) Schema(t projections.TableNames) []string {
	return schema(t,
		// Keys lead with the client (the messages' with the session): every
		// write names it and every read selects by it, so no table needs a
		// secondary index.
		`CREATE TABLE {cs_sessions} (
			client_id     TEXT NOT NULL,
			session_id    TEXT NOT NULL,
			clinic_id     TEXT NOT NULL,
			provider_id   TEXT NOT NULL,
			title         TEXT NOT NULL,
			description   TEXT NOT NULL,
			state         TEXT NOT NULL,
			starts_at     BIGINT NOT NULL,
			ends_at       BIGINT NOT NULL,
			series_index  BIGINT NOT NULL,
			series_count  BIGINT NOT NULL,
			scheduled_at  BIGINT,
			activated_at  BIGINT,
			closed_at     BIGINT,
			cancelled_at  BIGINT,
			cancel_reason TEXT NOT NULL,
			position      BIGINT NOT NULL,
			PRIMARY KEY (client_id, session_id))`,
		`CREATE TABLE {cs_assignments} (
			client_id     TEXT NOT NULL,
			assignment_id TEXT NOT NULL,
			session_id    TEXT NOT NULL,
			book_id       TEXT NOT NULL,
			book_kind     TEXT NOT NULL,
			book_title    TEXT NOT NULL,
			due           BIGINT NOT NULL,
			status        TEXT NOT NULL,
			overdue       INTEGER NOT NULL,
			given_at      BIGINT,
			started_at    BIGINT,
			completed_at  BIGINT,
			scored        INTEGER NOT NULL,
			total         TEXT,
			severity      TEXT NOT NULL,
			position      BIGINT NOT NULL,
			PRIMARY KEY (client_id, assignment_id))`,
		`CREATE TABLE {cs_feedback} (
			client_id     TEXT NOT NULL,
			feedback_id   TEXT NOT NULL,
			assignment_id TEXT NOT NULL,
			session_id    TEXT NOT NULL,
			by_id         TEXT NOT NULL,
			text          TEXT NOT NULL,
			at            BIGINT NOT NULL,
			position      BIGINT NOT NULL,
			PRIMARY KEY (client_id, feedback_id))`,
		`CREATE TABLE {cs_comments} (
			client_id   TEXT NOT NULL,
			comment_id  TEXT NOT NULL,
			feedback_id TEXT NOT NULL,
			session_id  TEXT NOT NULL,
			author_id   TEXT NOT NULL,
			author_role TEXT NOT NULL,
			text        TEXT NOT NULL,
			at          BIGINT NOT NULL,
			position    BIGINT NOT NULL,
			PRIMARY KEY (client_id, comment_id))`,
		`CREATE TABLE {cs_messages} (
			session_id  TEXT NOT NULL,
			message_id  TEXT NOT NULL,
			client_id   TEXT NOT NULL,
			author_id   TEXT NOT NULL,
			author_role TEXT NOT NULL,
			text        TEXT NOT NULL,
			at          BIGINT NOT NULL,
			position    BIGINT NOT NULL,
			PRIMARY KEY (session_id, message_id))`,
	)
}

// The client session list's rows that later events change are held
// through a batch (held.go).
var (
	csSessions = newTable("cs_sessions", 2, "client_id", "session_id", "clinic_id", "provider_id", "title", "description",
		"state", "starts_at", "ends_at", "series_index", "series_count", "scheduled_at", "activated_at", "closed_at",
		"cancelled_at", "cancel_reason", "position")
	csActivate   = csSessions.setter("state", "activated_at")
	csReschedule = csSessions.setter("starts_at", "ends_at")
	csCancel     = csSessions.setter("state", "cancelled_at", "cancel_reason")
	csClose      = csSessions.setter("state", "closed_at")

	csAssignments = newTable("cs_assignments", 2, "client_id", "assignment_id", "session_id", "book_id", "book_kind",
		"book_title", "due", "status", "overdue", "given_at", "started_at", "completed_at", "scored", "total", "severity",
		"position")
	csAssignmentDue      = csAssignments.setter("due")
	csAssignmentStart    = csAssignments.setter("status", "started_at")
	csAssignmentComplete = csAssignments.setter("status", "completed_at", "scored", "total", "severity")
	csAssignmentOverdue  = csAssignments.setter("overdue")

	// Written once, held all the same: at Flush they go in multi-row
	// statements in key order.
	csFeedback = newTable("cs_feedback", 2, "client_id", "feedback_id", "assignment_id", "session_id", "by_id", "text", "at",
		"position")
	csComments = newTable("cs_comments", 2, "client_id", "comment_id", "feedback_id", "session_id", "author_id",
		"author_role", "text", "at", "position")
	csMessages = newTable("cs_messages", 2, "session_id", "message_id", "client_id", "author_id", "author_role", "text",
		"at", "position")
)

// Prepare implements projections.Preparer: it decodes the events this
// projection reads (nil for the others).
func (p *clientSessionsProjection) Prepare(e eventstore.RecordedEvent) (any, error) {
	return p.dec.prepare(p.types, e)
}

// Apply implements projections.Projection.
func (p *clientSessionsProjection) Apply(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent) error {
	v, err := p.Prepare(e)
	if err != nil {
		return err
	}
	return p.ApplyPrepared(ctx, tx, t, e, v)
}

// Flush implements projections.Flusher: it writes the rows the batch held.
func (p *clientSessionsProjection) Flush(ctx context.Context, tx *sql.Tx, t projections.TableNames) error {
	return p.w.flush(ctx, tx, t)
}

// ApplyPrepared implements projections.Preparer: v is the decoded event.
func (p *clientSessionsProjection) ApplyPrepared(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent, v any) error {
	if v == nil {
		return nil
	}
	out := p.w.in(ctx, tx, t)
	switch ev := v.(type) {
	case care.SessionScheduled:
		var index, count int
		if ev.Series != nil {
			index, count = ev.Series.Index, ev.Series.Count
		}
		title, err := p.c.seal(ev.ClientID, colCSTitle, ev.Title)
		if err != nil {
			return err
		}
		description, err := p.c.seal(ev.ClientID, colCSDescription, ev.Description)
		if err != nil {
			return err
		}
		return out.put(csSessions, ev.ClientID, ev.SessionID, ev.ClinicID, ev.ProviderID, title, description,
			string(care.StateScheduled), ev.Start.UnixNano(), ev.End.UnixNano(), index, count, stamp(ev.At), nil, nil, nil,
			"", e.Position)
	case care.SessionActivated:
		return out.set(csActivate, string(care.StateActive), stamp(ev.At), ev.ClientID, ev.SessionID)
	case care.SessionRescheduled:
		if err := out.set(csReschedule, ev.Start.UnixNano(), ev.End.UnixNano(), ev.ClientID, ev.SessionID); err != nil {
			return err
		}
		for _, m := range ev.Dues {
			if err := out.set(csAssignmentDue, m.Due.UnixNano(), ev.ClientID, m.AssignmentID); err != nil {
				return err
			}
		}
		return nil
	case care.SessionCancelled:
		reason, err := p.c.seal(ev.ClientID, colCSCancelReason, ev.Reason)
		if err != nil {
			return err
		}
		return out.set(csCancel, string(care.StateCancelled), stamp(ev.At), reason, ev.ClientID, ev.SessionID)
	case care.SessionClosed:
		return out.set(csClose, string(care.StateClosed), stamp(ev.At), ev.ClientID, ev.SessionID)
	case care.AssignmentGiven:
		return out.put(csAssignments, ev.ClientID, ev.AssignmentID, ev.SessionID, ev.BookID, string(ev.BookKind),
			ev.BookTitle, ev.Due.UnixNano(), string(care.AssignmentGivenStatus), 0, stamp(ev.At), nil, nil, 0, nil, "",
			e.Position)
	case care.AssignmentStarted:
		return out.set(csAssignmentStart, string(care.AssignmentStartedStatus), stamp(ev.At), ev.ClientID, ev.AssignmentID)
	case care.AssignmentCompleted:
		total, err := p.c.sealTotal(ev.ClientID, colCSTotal, ev.Scored, ev.Total)
		if err != nil {
			return err
		}
		severity, err := p.c.seal(ev.ClientID, colCSSeverity, ev.Severity)
		if err != nil {
			return err
		}
		return out.set(csAssignmentComplete, string(care.AssignmentCompletedStatus), stamp(ev.At), flag(ev.Scored), total,
			severity, ev.ClientID, ev.AssignmentID)
	case care.AssignmentOverdue:
		return out.set(csAssignmentOverdue, 1, ev.ClientID, ev.AssignmentID)
	case care.AssignmentFeedbackGiven:
		text, err := p.c.seal(ev.ClientID, colCSFeedbackText, ev.Text)
		if err != nil {
			return err
		}
		return out.put(csFeedback, ev.ClientID, ev.FeedbackID, ev.AssignmentID, ev.SessionID, ev.By, text, ev.At.UnixNano(),
			e.Position)
	case care.AssignmentCommentPosted:
		text, err := p.c.seal(ev.ClientID, colCSCommentText, ev.Text)
		if err != nil {
			return err
		}
		return out.put(csComments, ev.ClientID, ev.CommentID, ev.FeedbackID, ev.SessionID, ev.AuthorID,
			string(ev.AuthorRole), text, ev.At.UnixNano(), e.Position)
	case care.SessionMessagePosted:
		text, err := p.c.seal(ev.ClientID, colCSMessageText, ev.Text)
		if err != nil {
			return err
		}
		return out.put(csMessages, ev.SessionID, ev.MessageID, ev.ClientID, ev.AuthorID, string(ev.AuthorRole), text,
			ev.At.UnixNano(), e.Position)
	}
	return nil
}

// ClientSessionList is a client's sessions by state, each with its
// assignments and feedback threads. Upcoming and active sessions come
// soonest first, closed and cancelled ones latest first.
type ClientSessionList struct {
	ClientID  string          `json:"clientId"`
	Upcoming  []ClientSession `json:"upcoming"`
	Active    []ClientSession `json:"active"`
	Closed    []ClientSession `json:"closed"`
	Cancelled []ClientSession `json:"cancelled"`
}

// ClientSession is one session as its client sees it. Messages are filled
// by ClientSessionDetail (one session), not by ClientSessions (the list).
type ClientSession struct {
	ID           string             `json:"id"`
	ClinicID     string             `json:"clinicId"`
	ProviderID   string             `json:"providerId"`
	Title        string             `json:"title"`
	Description  string             `json:"description,omitempty"`
	State        string             `json:"state"`
	Start        time.Time          `json:"start"`
	End          time.Time          `json:"end"`
	SeriesIndex  int                `json:"seriesIndex,omitempty"`
	SeriesCount  int                `json:"seriesCount,omitempty"`
	ScheduledAt  *time.Time         `json:"scheduledAt,omitempty"`
	ActivatedAt  *time.Time         `json:"activatedAt,omitempty"`
	ClosedAt     *time.Time         `json:"closedAt,omitempty"`
	CancelledAt  *time.Time         `json:"cancelledAt,omitempty"`
	CancelReason string             `json:"cancelReason,omitempty"`
	Assignments  []ClientAssignment `json:"assignments"`
	Messages     []Post             `json:"messages,omitempty"`
}

// ClientAssignment is one assignment as its client sees it.
type ClientAssignment struct {
	ID          string           `json:"id"`
	BookID      string           `json:"bookId"`
	BookKind    string           `json:"bookKind"`
	BookTitle   string           `json:"bookTitle"`
	Due         time.Time        `json:"due"`
	Status      string           `json:"status"`
	Overdue     bool             `json:"overdue"`
	GivenAt     *time.Time       `json:"givenAt,omitempty"`
	StartedAt   *time.Time       `json:"startedAt,omitempty"`
	CompletedAt *time.Time       `json:"completedAt,omitempty"`
	Scored      bool             `json:"scored"`
	Total       *int             `json:"total,omitempty"`
	Severity    string           `json:"severity,omitempty"`
	Feedback    []FeedbackThread `json:"feedback"`
}

// FeedbackThread is one feedback and the comments on it.
type FeedbackThread struct {
	ID       string    `json:"id"`
	By       string    `json:"by"`
	Text     string    `json:"text"`
	At       time.Time `json:"at"`
	Comments []Post    `json:"comments"`
}

// Post is one written entry: a message, comment, discussion post or note.
type Post struct {
	ID         string    `json:"id"`
	AuthorID   string    `json:"authorId"`
	AuthorRole string    `json:"authorRole"`
	Text       string    `json:"text"`
	At         time.Time `json:"at"`
}

// ClientSessions lists clientID's sessions.
func ClientSessions(ctx context.Context, db *projections.DB, clientID string) (ClientSessionList, error) {
	out := ClientSessionList{ClientID: clientID, Upcoming: []ClientSession{}, Active: []ClientSession{},
		Closed: []ClientSession{}, Cancelled: []ClientSession{}}
	c, err := readerCipher(db, ClientSessionsProjection)
	if err != nil {
		return ClientSessionList{}, fmt.Errorf("views: sessions of client %s: %w", clientID, err)
	}
	c = probing(ctx, c)
	err = db.Read(ctx, ClientSessionsProjection, func(tx *sql.Tx, t projections.TableNames) error {
		sessions, err := readClientSessions(ctx, db, c, tx, t, clientID, "")
		if err != nil {
			return err
		}
		for i := len(sessions) - 1; i >= 0; i-- {
			switch s := sessions[i]; s.State {
			case string(care.StateClosed):
				out.Closed = append(out.Closed, s)
			case string(care.StateCancelled):
				out.Cancelled = append(out.Cancelled, s)
			}
		}
		for _, s := range sessions {
			switch s.State {
			case string(care.StateScheduled):
				out.Upcoming = append(out.Upcoming, s)
			case string(care.StateActive):
				out.Active = append(out.Active, s)
			}
		}
		return nil
	})
	if err != nil {
		return ClientSessionList{}, fmt.Errorf("views: sessions of client %s: %w", clientID, err)
	}
	return out, nil
}

// ClientSessionDetail reads one of clientID's sessions with its messages. A
// session of another client is ErrNotFound.
func ClientSessionDetail(ctx context.Context, db *projections.DB, clientID, sessionID string) (ClientSession, error) {
	var out ClientSession
	c, err := readerCipher(db, ClientSessionsProjection)
	if err != nil {
		return ClientSession{}, fmt.Errorf("views: session %s of client %s: %w", sessionID, clientID, err)
	}
	c = probing(ctx, c)
	err = db.Read(ctx, ClientSessionsProjection, func(tx *sql.Tx, t projections.TableNames) error {
		sessions, err := readClientSessions(ctx, db, c, tx, t, clientID, sessionID)
		if err != nil {
			return err
		}
		if len(sessions) == 0 {
			return ErrNotFound
		}
		out = sessions[0]
		out.Messages = []Post{}
		return queryRows(ctx, tx, rebind(db, t, `SELECT message_id, author_id, author_role, text, at FROM {cs_messages}
			WHERE session_id = ? ORDER BY position`), []any{sessionID}, func(rows *sql.Rows) error {
			var p Post
			var at int64
			if err := rows.Scan(&p.ID, &p.AuthorID, &p.AuthorRole, &p.Text, &at); err != nil {
				return err
			}
			if err := c.openInto(clientID, field(colCSMessageText, &p.Text)); err != nil {
				return err
			}
			p.At = time.Unix(0, at).UTC()
			out.Messages = append(out.Messages, p)
			return nil
		})
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return ClientSession{}, fmt.Errorf("views: session %s of client %s: %w", sessionID, clientID, ErrNotFound)
		}
		return ClientSession{}, fmt.Errorf("views: session %s of client %s: %w", sessionID, clientID, err)
	}
	return out, nil
}

// readClientSessions reads clientID's sessions (only sessionID, when set)
// with their assignments, feedback and comments, soonest first, their PHI
// opened.
func readClientSessions(ctx context.Context, db *projections.DB, c cipher, tx *sql.Tx, t projections.TableNames,
	clientID, sessionID string) ([]ClientSession, error) {
	where, args := `WHERE client_id = ?`, []any{clientID}
	if sessionID != "" {
		where, args = where+` AND session_id = ?`, append(args, sessionID)
	}
	var sessions []ClientSession
	index := map[string]int{}
	err := queryRows(ctx, tx, rebind(db, t, `SELECT session_id, clinic_id, provider_id, title, description, state,
		starts_at, ends_at, series_index, series_count, scheduled_at, activated_at, closed_at, cancelled_at, cancel_reason
		FROM {cs_sessions} `+where+` ORDER BY starts_at, position`), args, func(rows *sql.Rows) error {
		var (
			s                                       ClientSession
			start, end                              int64
			scheduled, activated, closed, cancelled sql.NullInt64
		)
		if err := rows.Scan(&s.ID, &s.ClinicID, &s.ProviderID, &s.Title, &s.Description, &s.State, &start, &end,
			&s.SeriesIndex, &s.SeriesCount, &scheduled, &activated, &closed, &cancelled, &s.CancelReason); err != nil {
			return err
		}
		err := c.openInto(clientID, field(colCSTitle, &s.Title), field(colCSDescription, &s.Description),
			field(colCSCancelReason, &s.CancelReason))
		if err != nil {
			return err
		}
		s.Start, s.End = time.Unix(0, start).UTC(), time.Unix(0, end).UTC()
		s.ScheduledAt, s.ActivatedAt = optionalTime(scheduled), optionalTime(activated)
		s.ClosedAt, s.CancelledAt = optionalTime(closed), optionalTime(cancelled)
		s.Assignments = []ClientAssignment{}
		index[s.ID] = len(sessions)
		sessions = append(sessions, s)
		return nil
	})
	if err != nil || len(sessions) == 0 {
		return sessions, err
	}
	// Assignments, feedback and comments of the same client, placed into
	// the sessions read above.
	assignmentAt := map[string][2]int{}
	err = queryRows(ctx, tx, rebind(db, t, `SELECT assignment_id, session_id, book_id, book_kind, book_title, due, status,
		overdue, given_at, started_at, completed_at, scored, total, severity
		FROM {cs_assignments} `+where+` ORDER BY position`), args, func(rows *sql.Rows) error {
		var (
			a                         ClientAssignment
			sessionID                 string
			due                       int64
			overdue, scored           int
			given, started, completed sql.NullInt64
			total                     sql.NullString
		)
		if err := rows.Scan(&a.ID, &sessionID, &a.BookID, &a.BookKind, &a.BookTitle, &due, &a.Status, &overdue,
			&given, &started, &completed, &scored, &total, &a.Severity); err != nil {
			return err
		}
		si, ok := index[sessionID]
		if !ok {
			return nil
		}
		a.Due = time.Unix(0, due).UTC()
		a.Overdue, a.Scored = overdue == 1, scored == 1
		a.GivenAt, a.StartedAt, a.CompletedAt = optionalTime(given), optionalTime(started), optionalTime(completed)
		if err := c.openInto(clientID, field(colCSSeverity, &a.Severity)); err != nil {
			return err
		}
		if total.Valid {
			var err error
			if a.Total, err = c.openTotal(clientID, colCSTotal, &total.String); err != nil {
				return err
			}
		}
		a.Feedback = []FeedbackThread{}
		assignmentAt[a.ID] = [2]int{si, len(sessions[si].Assignments)}
		sessions[si].Assignments = append(sessions[si].Assignments, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	feedbackAt := map[string][3]int{}
	err = queryRows(ctx, tx, rebind(db, t, `SELECT feedback_id, assignment_id, by_id, text, at FROM {cs_feedback}
		`+where+` ORDER BY position`), args, func(rows *sql.Rows) error {
		var (
			f            FeedbackThread
			assignmentID string
			at           int64
		)
		if err := rows.Scan(&f.ID, &assignmentID, &f.By, &f.Text, &at); err != nil {
			return err
		}
		pos, ok := assignmentAt[assignmentID]
		if !ok {
			return nil
		}
		if err := c.openInto(clientID, field(colCSFeedbackText, &f.Text)); err != nil {
			return err
		}
		f.At, f.Comments = time.Unix(0, at).UTC(), []Post{}
		a := &sessions[pos[0]].Assignments[pos[1]]
		feedbackAt[f.ID] = [3]int{pos[0], pos[1], len(a.Feedback)}
		a.Feedback = append(a.Feedback, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = queryRows(ctx, tx, rebind(db, t, `SELECT comment_id, feedback_id, author_id, author_role, text, at FROM {cs_comments}
		`+where+` ORDER BY position`), args, func(rows *sql.Rows) error {
		var (
			post       Post
			feedbackID string
			at         int64
		)
		if err := rows.Scan(&post.ID, &feedbackID, &post.AuthorID, &post.AuthorRole, &post.Text, &at); err != nil {
			return err
		}
		pos, ok := feedbackAt[feedbackID]
		if !ok {
			return nil
		}
		if err := c.openInto(clientID, field(colCSCommentText, &post.Text)); err != nil {
			return err
		}
		post.At = time.Unix(0, at).UTC()
		f := &sessions[pos[0]].Assignments[pos[1]].Feedback[pos[2]]
		f.Comments = append(f.Comments, post)
		return nil
	})
	return sessions, err
}
