package views

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

// SessionViewProjection is the name of the session view projection.
const SessionViewProjection = "session_view"

// Post kinds in the session view.
const (
	PostMessage    = "message"
	PostDiscussion = "discussion"
	PostNote       = "note"
)

// The session view is one session in full for its care team: everything
// the session aggregate holds, including the team's discussion and notes.
type sessionViewProjection struct {
	dec   *decoder
	c     cipher
	w     writer
	types typeSet
}

func newSessionView(dec *decoder, c cipher) *sessionViewProjection {
	return &sessionViewProjection{dec: dec, c: c, types: types(
		care.SessionScheduled{}.EventType(), care.SessionActivated{}.EventType(), care.SessionRescheduled{}.EventType(),
		care.SessionCancelled{}.EventType(), care.SessionClosed{}.EventType(),
		care.AssignmentGiven{}.EventType(), care.AssignmentStarted{}.EventType(), care.AssignmentCompleted{}.EventType(),
		care.AssignmentOverdue{}.EventType(), care.AssignmentFeedbackGiven{}.EventType(),
		care.AssignmentCommentPosted{}.EventType(), care.SessionMessagePosted{}.EventType(),
		care.SessionDiscussionPosted{}.EventType(), care.SessionNoteWritten{}.EventType(),
	)}
}

func (p *sessionViewProjection) reads() typeSet { return p.types }

func (p *sessionViewProjection) columnCipher() cipher { return p.c }

func (*sessionViewProjection) Name() string { return SessionViewProjection }
func (*sessionViewProjection) Version() int { return 2 } // 2: PHI columns sealed
func (*sessionViewProjection) Tables() []string {
	return []string{"sv_sessions", "sv_assignments", "sv_feedback", "sv_comments", "sv_posts"}
}

// ReadsNoMetadata implements projections.BodiesOnly.
func (*sessionViewProjection) ReadsNoMetadata() {}

func (*sessionViewProjection) Schema(t projections.TableNames) []string {
	return schema(t,
		`CREATE TABLE {sv_sessions} (
			session_id    TEXT PRIMARY KEY,
			clinic_id     TEXT NOT NULL,
			client_id     TEXT NOT NULL,
			provider_id   TEXT NOT NULL,
			scheduled_by  TEXT NOT NULL,
			title         TEXT NOT NULL,
			description   TEXT NOT NULL,
			state         TEXT NOT NULL,
			starts_at     BIGINT NOT NULL,
			ends_at       BIGINT NOT NULL,
			series_id     TEXT NOT NULL,
			series_index  BIGINT NOT NULL,
			series_count  BIGINT NOT NULL,
			plan_id       TEXT NOT NULL,
			plan_week     BIGINT NOT NULL,
			scheduled_at  BIGINT,
			activated_at  BIGINT,
			closed_at     BIGINT,
			closed_by     TEXT NOT NULL,
			close_reason  TEXT NOT NULL,
			closed_early  INTEGER NOT NULL,
			cancelled_at  BIGINT,
			cancelled_by  TEXT NOT NULL,
			cancel_reason TEXT NOT NULL)`,
		// The other tables are keyed by session first: every event names
		// its session, and the view reads one session at a time.
		`CREATE TABLE {sv_assignments} (
			session_id    TEXT NOT NULL,
			assignment_id TEXT NOT NULL,
			book_id       TEXT NOT NULL,
			book_version  BIGINT NOT NULL,
			book_kind     TEXT NOT NULL,
			book_title    TEXT NOT NULL,
			due           BIGINT NOT NULL,
			given_by      TEXT NOT NULL,
			given_at      BIGINT,
			status        TEXT NOT NULL,
			started_at    BIGINT,
			completed_at  BIGINT,
			overdue       INTEGER NOT NULL,
			answers       TEXT NOT NULL,
			scored        INTEGER NOT NULL,
			total         TEXT,
			severity      TEXT NOT NULL,
			flags         TEXT NOT NULL,
			urgent        TEXT NOT NULL,
			position      BIGINT NOT NULL,
			PRIMARY KEY (session_id, assignment_id))`,
		`CREATE TABLE {sv_feedback} (
			session_id    TEXT NOT NULL,
			feedback_id   TEXT NOT NULL,
			assignment_id TEXT NOT NULL,
			by_id         TEXT NOT NULL,
			text          TEXT NOT NULL,
			at            BIGINT NOT NULL,
			position      BIGINT NOT NULL,
			PRIMARY KEY (session_id, feedback_id))`,
		`CREATE TABLE {sv_comments} (
			session_id  TEXT NOT NULL,
			comment_id  TEXT NOT NULL,
			feedback_id TEXT NOT NULL,
			author_id   TEXT NOT NULL,
			author_role TEXT NOT NULL,
			text        TEXT NOT NULL,
			at          BIGINT NOT NULL,
			position    BIGINT NOT NULL,
			PRIMARY KEY (session_id, comment_id))`,
		`CREATE TABLE {sv_posts} (
			session_id  TEXT NOT NULL,
			post_id     TEXT NOT NULL,
			kind        TEXT NOT NULL,
			author_id   TEXT NOT NULL,
			author_role TEXT NOT NULL,
			text        TEXT NOT NULL,
			at          BIGINT NOT NULL,
			position    BIGINT NOT NULL,
			PRIMARY KEY (session_id, post_id))`,
	)
}

// The session view's rows that later events change are held through a
// batch (held.go).
var (
	svSessions = newTable("sv_sessions", 1, "session_id", "clinic_id", "client_id", "provider_id", "scheduled_by", "title",
		"description", "state", "starts_at", "ends_at", "series_id", "series_index", "series_count", "plan_id", "plan_week",
		"scheduled_at", "activated_at", "closed_at", "closed_by", "close_reason", "closed_early", "cancelled_at",
		"cancelled_by", "cancel_reason")
	svActivate   = svSessions.setter("state", "activated_at")
	svReschedule = svSessions.setter("starts_at", "ends_at")
	svCancel     = svSessions.setter("state", "cancelled_at", "cancelled_by", "cancel_reason")
	svClose      = svSessions.setter("state", "closed_at", "closed_by", "close_reason", "closed_early")

	svAssignments = newTable("sv_assignments", 2, "session_id", "assignment_id", "book_id", "book_version", "book_kind",
		"book_title", "due", "given_by", "given_at", "status", "started_at", "completed_at", "overdue", "answers", "scored",
		"total", "severity", "flags", "urgent", "position")
	svAssignmentDue      = svAssignments.setter("due")
	svAssignmentStart    = svAssignments.setter("status", "started_at")
	svAssignmentComplete = svAssignments.setter("status", "completed_at", "answers", "scored", "total", "severity",
		"flags", "urgent")
	svAssignmentOverdue = svAssignments.setter("overdue")

	// Written once (a post, a feedback, a comment is never changed), held
	// all the same: at Flush they go in multi-row statements in key order.
	svFeedback = newTable("sv_feedback", 2, "session_id", "feedback_id", "assignment_id", "by_id", "text", "at", "position")
	svComments = newTable("sv_comments", 2, "session_id", "comment_id", "feedback_id", "author_id", "author_role", "text",
		"at", "position")
	svPosts = newTable("sv_posts", 2, "session_id", "post_id", "kind", "author_id", "author_role", "text", "at", "position")
)

// Prepare implements projections.Preparer: it decodes the events this
// projection reads (nil for the others).
func (p *sessionViewProjection) Prepare(e eventstore.RecordedEvent) (any, error) {
	return p.dec.prepare(p.types, e)
}

// Apply implements projections.Projection.
func (p *sessionViewProjection) Apply(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent) error {
	v, err := p.Prepare(e)
	if err != nil {
		return err
	}
	return p.ApplyPrepared(ctx, tx, t, e, v)
}

// Flush implements projections.Flusher: it writes the rows the batch held.
func (p *sessionViewProjection) Flush(ctx context.Context, tx *sql.Tx, t projections.TableNames) error {
	return p.w.flush(ctx, tx, t)
}

// ApplyPrepared implements projections.Preparer: v is the decoded event.
func (p *sessionViewProjection) ApplyPrepared(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent, v any) error {
	if v == nil {
		return nil
	}
	out := p.w.in(ctx, tx, t)
	switch ev := v.(type) {
	case care.SessionScheduled:
		var seriesID, planID string
		var index, count, week int
		if ev.Series != nil {
			seriesID, index, count = ev.Series.ID, ev.Series.Index, ev.Series.Count
		}
		if ev.Plan != nil {
			planID, week = ev.Plan.PlanID, ev.Plan.Week
		}
		title, err := p.c.seal(ev.ClientID, colSVTitle, ev.Title)
		if err != nil {
			return err
		}
		description, err := p.c.seal(ev.ClientID, colSVDescription, ev.Description)
		if err != nil {
			return err
		}
		return out.put(svSessions, ev.SessionID, ev.ClinicID, ev.ClientID, ev.ProviderID, ev.ScheduledBy, title, description,
			string(care.StateScheduled), ev.Start.UnixNano(), ev.End.UnixNano(), seriesID, index, count, planID, week,
			stamp(ev.At), nil, nil, "", "", 0, nil, "", "")
	case care.SessionActivated:
		return out.set(svActivate, string(care.StateActive), stamp(ev.At), ev.SessionID)
	case care.SessionRescheduled:
		if err := out.set(svReschedule, ev.Start.UnixNano(), ev.End.UnixNano(), ev.SessionID); err != nil {
			return err
		}
		for _, m := range ev.Dues {
			if err := out.set(svAssignmentDue, m.Due.UnixNano(), ev.SessionID, m.AssignmentID); err != nil {
				return err
			}
		}
		return nil
	case care.SessionCancelled:
		reason, err := p.c.seal(ev.ClientID, colSVCancelReason, ev.Reason)
		if err != nil {
			return err
		}
		return out.set(svCancel, string(care.StateCancelled), stamp(ev.At), ev.By, reason, ev.SessionID)
	case care.SessionClosed:
		reason, err := p.c.seal(ev.ClientID, colSVCloseReason, ev.Reason)
		if err != nil {
			return err
		}
		return out.set(svClose, string(care.StateClosed), stamp(ev.At), ev.By, reason, flag(ev.Early), ev.SessionID)
	case care.AssignmentGiven:
		return out.put(svAssignments, ev.SessionID, ev.AssignmentID, ev.BookID, ev.BookVersion, string(ev.BookKind),
			ev.BookTitle, ev.Due.UnixNano(), ev.By, stamp(ev.At), string(care.AssignmentGivenStatus), nil, nil, 0, "", 0,
			nil, "", "", "", e.Position)
	case care.AssignmentStarted:
		return out.set(svAssignmentStart, string(care.AssignmentStartedStatus), stamp(ev.At), ev.SessionID, ev.AssignmentID)
	case care.AssignmentCompleted:
		answers, err := p.c.sealAnswers(ev.ClientID, colSVAnswers, ev.Answers)
		if err != nil {
			return err
		}
		total, err := p.c.sealTotal(ev.ClientID, colSVTotal, ev.Scored, ev.Total)
		if err != nil {
			return err
		}
		severity, err := p.c.seal(ev.ClientID, colSVSeverity, ev.Severity)
		if err != nil {
			return err
		}
		flags, err := p.c.sealFlags(ev.ClientID, colSVFlags, ev.Flags)
		if err != nil {
			return err
		}
		urgent, err := p.c.sealFlag(ev.ClientID, colSVUrgent, ev.Urgent)
		if err != nil {
			return err
		}
		return out.set(svAssignmentComplete, string(care.AssignmentCompletedStatus), stamp(ev.At), answers, flag(ev.Scored),
			total, severity, flags, urgent, ev.SessionID, ev.AssignmentID)
	case care.AssignmentOverdue:
		return out.set(svAssignmentOverdue, 1, ev.SessionID, ev.AssignmentID)
	case care.AssignmentFeedbackGiven:
		text, err := p.c.seal(ev.ClientID, colSVFeedbackText, ev.Text)
		if err != nil {
			return err
		}
		return out.put(svFeedback, ev.SessionID, ev.FeedbackID, ev.AssignmentID, ev.By, text, ev.At.UnixNano(), e.Position)
	case care.AssignmentCommentPosted:
		text, err := p.c.seal(ev.ClientID, colSVCommentText, ev.Text)
		if err != nil {
			return err
		}
		return out.put(svComments, ev.SessionID, ev.CommentID, ev.FeedbackID, ev.AuthorID, string(ev.AuthorRole), text,
			ev.At.UnixNano(), e.Position)
	case care.SessionMessagePosted:
		return p.insertPost(out, ev.ClientID, ev.MessageID, PostMessage, ev.SessionID, ev.AuthorID, string(ev.AuthorRole),
			ev.Text, ev.At, e.Position)
	case care.SessionDiscussionPosted:
		return p.insertPost(out, ev.ClientID, ev.PostID, PostDiscussion, ev.SessionID, ev.AuthorID,
			string(domain.RoleProvider), ev.Text, ev.At, e.Position)
	case care.SessionNoteWritten:
		return p.insertPost(out, ev.ClientID, ev.NoteID, PostNote, ev.SessionID, ev.AuthorID, string(domain.RoleProvider),
			ev.Text, ev.At, e.Position)
	}
	return nil
}

func (p *sessionViewProjection) insertPost(out batch, clientID, postID, kind, sessionID, authorID,
	authorRole, text string, at time.Time, position int64) error {
	sealed, err := p.c.seal(clientID, colSVPostText, text)
	if err != nil {
		return err
	}
	return out.put(svPosts, sessionID, postID, kind, authorID, authorRole, sealed, at.UnixNano(), position)
}

// SessionDetail is one session in full, for its care team.
type SessionDetail struct {
	ID           string              `json:"id"`
	ClinicID     string              `json:"clinicId"`
	ClientID     string              `json:"clientId"`
	ProviderID   string              `json:"providerId"`
	ScheduledBy  string              `json:"scheduledBy"`
	Title        string              `json:"title"`
	Description  string              `json:"description,omitempty"`
	State        string              `json:"state"`
	Start        time.Time           `json:"start"`
	End          time.Time           `json:"end"`
	Series       *care.SeriesRef     `json:"series,omitempty"`
	Plan         *care.PlanRef       `json:"plan,omitempty"`
	ScheduledAt  *time.Time          `json:"scheduledAt,omitempty"`
	ActivatedAt  *time.Time          `json:"activatedAt,omitempty"`
	ClosedAt     *time.Time          `json:"closedAt,omitempty"`
	ClosedBy     string              `json:"closedBy,omitempty"`
	CloseReason  string              `json:"closeReason,omitempty"`
	ClosedEarly  bool                `json:"closedEarly"`
	CancelledAt  *time.Time          `json:"cancelledAt,omitempty"`
	CancelledBy  string              `json:"cancelledBy,omitempty"`
	CancelReason string              `json:"cancelReason,omitempty"`
	Assignments  []SessionAssignment `json:"assignments"`
	Messages     []Post              `json:"messages"`
	Discussion   []Post              `json:"discussion"`
	Notes        []Post              `json:"notes"`
}

// SessionAssignment is one assignment with its responses, score and
// feedback threads.
type SessionAssignment struct {
	ID          string           `json:"id"`
	BookID      string           `json:"bookId"`
	BookVersion int              `json:"bookVersion"`
	BookKind    string           `json:"bookKind"`
	BookTitle   string           `json:"bookTitle"`
	Due         time.Time        `json:"due"`
	GivenBy     string           `json:"givenBy"`
	GivenAt     *time.Time       `json:"givenAt,omitempty"`
	Status      string           `json:"status"`
	StartedAt   *time.Time       `json:"startedAt,omitempty"`
	CompletedAt *time.Time       `json:"completedAt,omitempty"`
	Overdue     bool             `json:"overdue"`
	Answers     []books.Answer   `json:"answers,omitempty"`
	Scored      bool             `json:"scored"`
	Total       *int             `json:"total,omitempty"`
	Severity    string           `json:"severity,omitempty"`
	Flags       []books.Flag     `json:"flags,omitempty"`
	Urgent      bool             `json:"urgent"`
	Feedback    []FeedbackThread `json:"feedback"`
}

// SessionView reads one session in full. An unknown session is ErrNotFound.
func SessionView(ctx context.Context, db *projections.DB, sessionID string) (SessionDetail, error) {
	var out SessionDetail
	c, err := readerCipher(db, SessionViewProjection)
	if err != nil {
		return SessionDetail{}, fmt.Errorf("views: session %s: %w", sessionID, err)
	}
	c = probing(ctx, c)
	err = db.Read(ctx, SessionViewProjection, func(tx *sql.Tx, t projections.TableNames) error {
		var (
			start, end                              int64
			seriesID, planID                        string
			index, count, week                      int
			scheduled, activated, closed, cancelled sql.NullInt64
			early                                   int
		)
		err := tx.QueryRowContext(readContext(ctx), rebind(db, t, `SELECT session_id, clinic_id, client_id, provider_id, scheduled_by,
			title, description, state, starts_at, ends_at, series_id, series_index, series_count, plan_id, plan_week,
			scheduled_at, activated_at, closed_at, closed_by, close_reason, closed_early, cancelled_at, cancelled_by,
			cancel_reason FROM {sv_sessions} WHERE session_id = ?`), sessionID).Scan(
			&out.ID, &out.ClinicID, &out.ClientID, &out.ProviderID, &out.ScheduledBy, &out.Title, &out.Description,
			&out.State, &start, &end, &seriesID, &index, &count, &planID, &week, &scheduled, &activated, &closed,
			&out.ClosedBy, &out.CloseReason, &early, &cancelled, &out.CancelledBy, &out.CancelReason)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		err = c.openInto(out.ClientID, field(colSVTitle, &out.Title), field(colSVDescription, &out.Description),
			field(colSVCloseReason, &out.CloseReason), field(colSVCancelReason, &out.CancelReason))
		if err != nil {
			return err
		}
		out.Start, out.End = time.Unix(0, start).UTC(), time.Unix(0, end).UTC()
		if seriesID != "" {
			out.Series = &care.SeriesRef{ID: seriesID, Index: index, Count: count}
		}
		if planID != "" {
			out.Plan = &care.PlanRef{PlanID: planID, Week: week}
		}
		out.ScheduledAt, out.ActivatedAt = optionalTime(scheduled), optionalTime(activated)
		out.ClosedAt, out.CancelledAt = optionalTime(closed), optionalTime(cancelled)
		out.ClosedEarly = early == 1
		out.Assignments, out.Messages, out.Discussion, out.Notes = []SessionAssignment{}, []Post{}, []Post{}, []Post{}
		return readSessionParts(ctx, db, c, tx, t, sessionID, &out)
	})
	if err != nil {
		return SessionDetail{}, fmt.Errorf("views: session %s: %w", sessionID, err)
	}
	return out, nil
}

// readSessionParts reads the assignments, threads and posts of out's
// session, their PHI opened under out.ClientID's key.
func readSessionParts(ctx context.Context, db *projections.DB, c cipher, tx *sql.Tx, t projections.TableNames, sessionID string, out *SessionDetail) error {
	args := []any{sessionID}
	clientID := out.ClientID
	assignmentAt := map[string]int{}
	err := queryRows(ctx, tx, rebind(db, t, `SELECT assignment_id, book_id, book_version, book_kind, book_title, due,
		given_by, given_at, status, started_at, completed_at, overdue, answers, scored, total, severity, flags, urgent
		FROM {sv_assignments} WHERE session_id = ? ORDER BY position`), args, func(rows *sql.Rows) error {
		var (
			a                         SessionAssignment
			due                       int64
			given, started, completed sql.NullInt64
			total                     sql.NullString
			overdue, scored           int
			answers, flags, urgent    string
		)
		if err := rows.Scan(&a.ID, &a.BookID, &a.BookVersion, &a.BookKind, &a.BookTitle, &due, &a.GivenBy, &given,
			&a.Status, &started, &completed, &overdue, &answers, &scored, &total, &a.Severity, &flags, &urgent); err != nil {
			return err
		}
		a.Due = time.Unix(0, due).UTC()
		a.GivenAt, a.StartedAt, a.CompletedAt = optionalTime(given), optionalTime(started), optionalTime(completed)
		a.Overdue, a.Scored = overdue == 1, scored == 1
		err := c.openInto(clientID, field(colSVSeverity, &a.Severity))
		if err != nil {
			return err
		}
		if total.Valid {
			if a.Total, err = c.openTotal(clientID, colSVTotal, &total.String); err != nil {
				return err
			}
		}
		if a.Urgent, err = c.openFlag(clientID, colSVUrgent, urgent); err != nil {
			return err
		}
		if a.Answers, err = c.openAnswers(clientID, colSVAnswers, answers); err != nil {
			return err
		}
		if a.Flags, err = c.openFlags(clientID, colSVFlags, flags); err != nil {
			return err
		}
		a.Feedback = []FeedbackThread{}
		assignmentAt[a.ID] = len(out.Assignments)
		out.Assignments = append(out.Assignments, a)
		return nil
	})
	if err != nil {
		return err
	}
	feedbackAt := map[string][2]int{}
	err = queryRows(ctx, tx, rebind(db, t, `SELECT feedback_id, assignment_id, by_id, text, at FROM {sv_feedback}
		WHERE session_id = ? ORDER BY position`), args, func(rows *sql.Rows) error {
		var (
			f            FeedbackThread
			assignmentID string
			at           int64
		)
		if err := rows.Scan(&f.ID, &assignmentID, &f.By, &f.Text, &at); err != nil {
			return err
		}
		ai, ok := assignmentAt[assignmentID]
		if !ok {
			return nil
		}
		if err := c.openInto(clientID, field(colSVFeedbackText, &f.Text)); err != nil {
			return err
		}
		f.At, f.Comments = time.Unix(0, at).UTC(), []Post{}
		feedbackAt[f.ID] = [2]int{ai, len(out.Assignments[ai].Feedback)}
		out.Assignments[ai].Feedback = append(out.Assignments[ai].Feedback, f)
		return nil
	})
	if err != nil {
		return err
	}
	err = queryRows(ctx, tx, rebind(db, t, `SELECT comment_id, feedback_id, author_id, author_role, text, at FROM {sv_comments}
		WHERE session_id = ? ORDER BY position`), args, func(rows *sql.Rows) error {
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
		if err := c.openInto(clientID, field(colSVCommentText, &post.Text)); err != nil {
			return err
		}
		post.At = time.Unix(0, at).UTC()
		f := &out.Assignments[pos[0]].Feedback[pos[1]]
		f.Comments = append(f.Comments, post)
		return nil
	})
	if err != nil {
		return err
	}
	return queryRows(ctx, tx, rebind(db, t, `SELECT post_id, kind, author_id, author_role, text, at FROM {sv_posts}
		WHERE session_id = ? ORDER BY position`), args, func(rows *sql.Rows) error {
		var (
			p    Post
			kind string
			at   int64
		)
		if err := rows.Scan(&p.ID, &kind, &p.AuthorID, &p.AuthorRole, &p.Text, &at); err != nil {
			return err
		}
		if err := c.openInto(clientID, field(colSVPostText, &p.Text)); err != nil {
			return err
		}
		p.At = time.Unix(0, at).UTC()
		switch kind {
		case PostMessage:
			out.Messages = append(out.Messages, p)
		case PostDiscussion:
			out.Discussion = append(out.Discussion, p)
		case PostNote:
			out.Notes = append(out.Notes, p)
		}
		return nil
	})
}
