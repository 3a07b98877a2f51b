package views

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/domain/organization"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

// InboxProjection is the name of the provider inbox projection.
const InboxProjection = "provider_inbox"

// SessionEndingWindow is how far ahead the inbox warns of open sessions
// about to end.
const SessionEndingWindow = 48 * time.Hour

// Inbox item kinds.
const (
	// KindRisk: a completed assignment raised an urgent flag (PHQ-9 item 9).
	// It also awaits feedback, and leaves when feedback is given.
	KindRisk = "risk"
	// KindAwaitingFeedback: a completed assignment without feedback.
	KindAwaitingFeedback = "awaitingFeedback"
	// KindClientComment: the client commented on a feedback and no provider
	// has replied in that thread since.
	KindClientComment = "clientComment"
	// KindClientMessage: the client wrote in a session's messages and no
	// provider has written there since.
	KindClientMessage = "clientMessage"
	// KindOverdue: an assignment passed its due date before it was completed.
	KindOverdue = "overdue"
	// KindSessionEnding: an open session ends within SessionEndingWindow. It
	// is computed when the inbox is read, from the session's end.
	KindSessionEnding = "sessionEnding"
	// KindEmergencyAccess: an admin broke the glass on the client's record
	// (an emergency access grant). It shows for EmergencyAccessNotice after
	// the grant, so the care team learns who opened the record.
	KindEmergencyAccess = "emergencyAccess"
)

// EmergencyAccessNotice is how long an emergency access item stays in the
// inbox after the grant.
const EmergencyAccessNotice = 7 * 24 * time.Hour

// The inbox stores one row per thing that needs the care team (not per
// provider) and joins it with the client's current care team when read: a
// team change moves every open item to the new members at once, and an
// item acted on by any member leaves every member's inbox.
type inboxProjection struct {
	dec   *decoder
	c     cipher
	w     writer
	types typeSet
}

func newInboxProjection(dec *decoder, c cipher) *inboxProjection {
	return &inboxProjection{dec: dec, c: c, types: types(
		organization.ClientRegistered{}.EventType(), organization.ClientCareTeamChanged{}.EventType(),
		organization.ClinicProviderJoined{}.EventType(), organization.ClinicProviderLeft{}.EventType(),
		organization.ProviderDeactivated{}.EventType(), organization.ProviderReactivated{}.EventType(),
		care.SessionScheduled{}.EventType(), care.SessionRescheduled{}.EventType(),
		care.SessionCancelled{}.EventType(), care.SessionClosed{}.EventType(),
		care.AssignmentGiven{}.EventType(), care.AssignmentCompleted{}.EventType(), care.AssignmentOverdue{}.EventType(),
		care.AssignmentFeedbackGiven{}.EventType(), care.AssignmentCommentPosted{}.EventType(),
		care.SessionMessagePosted{}.EventType(),
		organization.ClientEmergencyAccessGranted{}.EventType(),
	)}
}

func (p *inboxProjection) reads() typeSet { return p.types }

func (p *inboxProjection) columnCipher() cipher { return p.c }

func (*inboxProjection) Name() string { return InboxProjection }

// 2: PHI columns sealed; 3: the open sessions' index.
func (*inboxProjection) Version() int { return 3 }
func (*inboxProjection) Tables() []string {
	return []string{"inbox_clients", "inbox_team", "inbox_members", "inbox_inactive", "inbox_sessions",
		"inbox_assignments", "inbox_items"}
}

// ReadsNoMetadata implements projections.BodiesOnly.
func (*inboxProjection) ReadsNoMetadata() {}

func (*inboxProjection) Schema(t projections.TableNames) []string {
	return schema(t,
		`CREATE TABLE {inbox_clients} (
			client_id    TEXT PRIMARY KEY,
			clinic_id    TEXT NOT NULL,
			display_name TEXT NOT NULL)`,
		`CREATE TABLE {inbox_team} (
			client_id   TEXT NOT NULL,
			provider_id TEXT NOT NULL,
			PRIMARY KEY (client_id, provider_id))`,
		`CREATE INDEX {inbox_team}_provider ON {inbox_team} (provider_id)`,
		// As for the command handlers, a team member sees the client only
		// while they belong to the client's clinic and are active: one who
		// left or was deactivated loses the inbox at once, before the team
		// is changed.
		`CREATE TABLE {inbox_members} (
			clinic_id   TEXT NOT NULL,
			provider_id TEXT NOT NULL,
			PRIMARY KEY (clinic_id, provider_id))`,
		`CREATE TABLE {inbox_inactive} (
			provider_id TEXT PRIMARY KEY)`,
		// Keys lead with the client: every write names it, and reads go
		// from a provider's clients to their rows, so secondary indexes are
		// few (each costs as much as the row on every insert).
		`CREATE TABLE {inbox_sessions} (
			client_id  TEXT NOT NULL,
			session_id TEXT NOT NULL,
			title      TEXT NOT NULL,
			ends_at    BIGINT NOT NULL,
			is_open    INTEGER NOT NULL,
			PRIMARY KEY (client_id, session_id))`,
		// The one secondary index: a client's closed sessions stay (a late
		// item still shows its session's title), and without it every read
		// of an inbox would walk all its clients' sessions ever to find the
		// few open ones ending soon.
		`CREATE INDEX {inbox_sessions}_open ON {inbox_sessions} (client_id, ends_at) WHERE is_open = 1`,
		`CREATE TABLE {inbox_assignments} (
			assignment_id TEXT PRIMARY KEY,
			session_id    TEXT NOT NULL,
			book_id       TEXT NOT NULL,
			book_title    TEXT NOT NULL)`,
		// item_id is "assignment:<id>" (overdue until completed, then risk
		// or awaiting feedback until feedback is given: one row that changes
		// kind), "comment:<id>" or "message:<id>". scope_id is what a
		// provider's reply clears: the feedback thread or the session.
		`CREATE TABLE {inbox_items} (
			client_id     TEXT NOT NULL,
			item_id       TEXT NOT NULL,
			kind          TEXT NOT NULL,
			session_id    TEXT NOT NULL,
			scope_id      TEXT NOT NULL,
			assignment_id TEXT NOT NULL,
			ref_id        TEXT NOT NULL,
			total         TEXT,
			severity      TEXT NOT NULL,
			flags         TEXT NOT NULL,
			at            BIGINT NOT NULL,
			position      BIGINT NOT NULL,
			PRIMARY KEY (client_id, item_id))`,
	)
}

// The inbox's items and sessions are held through a batch (held.go): an
// item raised and answered within a batch is never written. An item's id
// determines its session, scope, assignment and reference, so a put of an
// item already there changes only what the old upsert changed. Items are
// never updated, only put and deleted: a provider's reply deletes the
// items of its scope, a closed session those of the session.
var (
	inboxItems = newTable("inbox_items", 2, "client_id", "item_id", "kind", "session_id", "scope_id", "assignment_id",
		"ref_id", "total", "severity", "flags", "at", "position")
	inboxItemsOfSession = inboxItems.where("client_id", "session_id")
	inboxItemsOfScope   = inboxItems.where("client_id", "scope_id", "kind")

	inboxSessions      = newTable("inbox_sessions", 2, "client_id", "session_id", "title", "ends_at", "is_open")
	inboxSessionEnd    = inboxSessions.setter("ends_at")
	inboxSessionClosed = inboxSessions.setter("is_open")

	// An assignment's book is written once, held all the same: at Flush
	// the rows go in multi-row statements in key order.
	inboxAssignments = newTable("inbox_assignments", 1, "assignment_id", "session_id", "book_id", "book_title")
)

// Prepare implements projections.Preparer: it decodes the events this
// projection reads (nil for the others).
func (p *inboxProjection) Prepare(e eventstore.RecordedEvent) (any, error) {
	return p.dec.prepare(p.types, e)
}

// Apply implements projections.Projection.
func (p *inboxProjection) Apply(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent) error {
	v, err := p.Prepare(e)
	if err != nil {
		return err
	}
	return p.ApplyPrepared(ctx, tx, t, e, v)
}

// Flush implements projections.Flusher: it writes the rows the batch held.
func (p *inboxProjection) Flush(ctx context.Context, tx *sql.Tx, t projections.TableNames) error {
	return p.w.flush(ctx, tx, t)
}

// ApplyPrepared implements projections.Preparer: v is the decoded event.
func (p *inboxProjection) ApplyPrepared(ctx context.Context, tx *sql.Tx, t projections.TableNames, e eventstore.RecordedEvent, v any) error {
	if v == nil {
		return nil
	}
	out := p.w.in(ctx, tx, t)
	exec := out.exec
	switch ev := v.(type) {
	case organization.ClientRegistered:
		name, err := p.c.seal(ev.ClientID, colInboxClientName, ev.DisplayName)
		if err != nil {
			return err
		}
		if err := exec(`INSERT INTO {inbox_clients} (client_id, clinic_id, display_name) VALUES (?, ?, ?)
			ON CONFLICT (client_id) DO UPDATE SET clinic_id = excluded.clinic_id, display_name = excluded.display_name`,
			ev.ClientID, ev.ClinicID, name); err != nil {
			return err
		}
		return p.setTeam(exec, ev.ClientID, ev.CareTeam)
	case organization.ClientCareTeamChanged:
		return p.setTeam(exec, ev.ClientID, ev.CareTeam)
	case organization.ClinicProviderJoined:
		return exec(`INSERT INTO {inbox_members} (clinic_id, provider_id) VALUES (?, ?)
			ON CONFLICT (clinic_id, provider_id) DO NOTHING`, ev.ClinicID, ev.ProviderID)
	case organization.ClinicProviderLeft:
		return exec(`DELETE FROM {inbox_members} WHERE clinic_id = ? AND provider_id = ?`, ev.ClinicID, ev.ProviderID)
	case organization.ProviderDeactivated:
		return exec(`INSERT INTO {inbox_inactive} (provider_id) VALUES (?) ON CONFLICT (provider_id) DO NOTHING`, ev.ProviderID)
	case organization.ProviderReactivated:
		return exec(`DELETE FROM {inbox_inactive} WHERE provider_id = ?`, ev.ProviderID)
	case care.SessionScheduled:
		title, err := p.c.seal(ev.ClientID, colInboxSessionTitle, ev.Title)
		if err != nil {
			return err
		}
		return out.put(inboxSessions, ev.ClientID, ev.SessionID, title, ev.End.UnixNano(), 1)
	case care.SessionRescheduled:
		return out.set(inboxSessionEnd, ev.End.UnixNano(), ev.ClientID, ev.SessionID)
	case care.SessionCancelled:
		return p.closeSession(out, ev.ClientID, ev.SessionID)
	case care.SessionClosed:
		return p.closeSession(out, ev.ClientID, ev.SessionID)
	case care.AssignmentGiven:
		return out.put(inboxAssignments, ev.AssignmentID, ev.SessionID, ev.BookID, ev.BookTitle)
	case care.AssignmentOverdue:
		return out.put(inboxItems, ev.ClientID, "assignment:"+ev.AssignmentID, KindOverdue, ev.SessionID, ev.AssignmentID,
			ev.AssignmentID, ev.AssignmentID, nil, "", "", ev.Due.UnixNano(), e.Position)
	case care.AssignmentCompleted:
		// Replaces the overdue item, if any: the assignment is done.
		kind := KindAwaitingFeedback
		if ev.Urgent {
			kind = KindRisk
		}
		total, err := p.c.sealTotal(ev.ClientID, colInboxItemTotal, ev.Scored, ev.Total)
		if err != nil {
			return err
		}
		severity, err := p.c.seal(ev.ClientID, colInboxItemSeverity, ev.Severity)
		if err != nil {
			return err
		}
		flags, err := p.c.sealFlags(ev.ClientID, colInboxItemFlags, ev.Flags)
		if err != nil {
			return err
		}
		return out.put(inboxItems, ev.ClientID, "assignment:"+ev.AssignmentID, kind, ev.SessionID, ev.AssignmentID,
			ev.AssignmentID, ev.AssignmentID, total, severity, flags, ev.At.UnixNano(), e.Position)
	case care.AssignmentFeedbackGiven:
		return out.remove(inboxItems, ev.ClientID, "assignment:"+ev.AssignmentID)
	case care.AssignmentCommentPosted:
		if ev.AuthorRole == domain.RoleClient {
			return out.put(inboxItems, ev.ClientID, "comment:"+ev.CommentID, KindClientComment, ev.SessionID, ev.FeedbackID,
				ev.AssignmentID, ev.CommentID, nil, "", "", ev.At.UnixNano(), e.Position)
		}
		return out.removeWhere(inboxItemsOfScope, ev.ClientID, ev.FeedbackID, KindClientComment)
	case care.SessionMessagePosted:
		if ev.AuthorRole == domain.RoleClient {
			return out.put(inboxItems, ev.ClientID, "message:"+ev.MessageID, KindClientMessage, ev.SessionID, ev.SessionID,
				"", ev.MessageID, nil, "", "", ev.At.UnixNano(), e.Position)
		}
		return out.removeWhere(inboxItemsOfScope, ev.ClientID, ev.SessionID, KindClientMessage)
	case organization.ClientEmergencyAccessGranted:
		// scope_id is who broke the glass, ref_id the grant; the reason
		// stays in the event (and the access log), not in the inbox.
		return out.put(inboxItems, ev.ClientID, "emergency:"+ev.GrantID, KindEmergencyAccess, "", ev.GrantedTo,
			"", ev.GrantID, nil, "", "", ev.GrantedAt.UnixNano(), e.Position)
	}
	return nil
}

func (p *inboxProjection) setTeam(exec func(string, ...any) error, clientID string, team []string) error {
	if err := exec(`DELETE FROM {inbox_team} WHERE client_id = ?`, clientID); err != nil {
		return err
	}
	for _, providerID := range team {
		if err := exec(`INSERT INTO {inbox_team} (client_id, provider_id) VALUES (?, ?)
			ON CONFLICT (client_id, provider_id) DO NOTHING`, clientID, providerID); err != nil {
			return err
		}
	}
	return nil
}

// closeSession: a closed or cancelled session takes no more work, so
// nothing in it can be acted on any more.
func (p *inboxProjection) closeSession(out batch, clientID, sessionID string) error {
	if err := out.set(inboxSessionClosed, 0, clientID, sessionID); err != nil {
		return err
	}
	return out.removeWhere(inboxItemsOfSession, clientID, sessionID)
}

// ProviderInbox is what needs one provider, risk first.
type ProviderInbox struct {
	ProviderID string      `json:"providerId"`
	AsOf       time.Time   `json:"asOf"`
	Counts     InboxCounts `json:"counts"`
	Items      []InboxItem `json:"items"`
	// Next is the InboxPage.After of the next page; "" on the last.
	Next string `json:"-"`
}

// InboxCounts counts the items per kind.
type InboxCounts struct {
	Risk             int `json:"risk"`
	AwaitingFeedback int `json:"awaitingFeedback"`
	ClientComments   int `json:"clientComments"`
	ClientMessages   int `json:"clientMessages"`
	Overdue          int `json:"overdue"`
	SessionsEnding   int `json:"sessionsEnding"`
	EmergencyAccess  int `json:"emergencyAccess"`
	Total            int `json:"total"`
}

// InboxItem is one thing that needs the provider. At is when it arose (for
// overdue: the due date; for sessionEnding: the session's end).
type InboxItem struct {
	ID           string       `json:"id"`
	Kind         string       `json:"kind"`
	ClientID     string       `json:"clientId"`
	ClientName   string       `json:"clientName"`
	SessionID    string       `json:"sessionId"`
	SessionTitle string       `json:"sessionTitle"`
	AssignmentID string       `json:"assignmentId,omitempty"`
	BookID       string       `json:"bookId,omitempty"`
	BookTitle    string       `json:"bookTitle,omitempty"`
	FeedbackID   string       `json:"feedbackId,omitempty"`
	CommentID    string       `json:"commentId,omitempty"`
	MessageID    string       `json:"messageId,omitempty"`
	Total        *int         `json:"total,omitempty"`
	Severity     string       `json:"severity,omitempty"`
	Flags        []books.Flag `json:"flags,omitempty"`
	At           time.Time    `json:"at"`

	// GrantID and GrantedTo (an emergencyAccess item): the grant and who
	// holds it.
	GrantID   string `json:"grantId,omitempty"`
	GrantedTo string `json:"grantedTo,omitempty"`
}

// InboxPage is which part of an inbox to read.
type InboxPage struct {
	// Limit caps the items read (0: all of them).
	Limit int
	// After is the Next of the page before; "" reads from the start.
	After string
}

// ErrBadInboxCursor: InboxPage.After is not a Next this package made.
var ErrBadInboxCursor = errors.New("views: not an inbox cursor")

// Inbox reads all of what needs providerID at now (ReadInbox without a
// limit).
func Inbox(ctx context.Context, db *projections.DB, providerID string, now time.Time) (ProviderInbox, error) {
	return ReadInbox(ctx, db, providerID, now, InboxPage{})
}

// The provider's clients: on the team, and in a clinic the provider still
// belongs to.
const inboxClients = `FROM {inbox_team} tm
	JOIN {inbox_clients} c ON c.client_id = tm.client_id
	JOIN {inbox_members} m ON m.clinic_id = c.clinic_id AND m.provider_id = tm.provider_id`

// ReadInbox reads one page of what needs providerID at now: the stored
// items of the clients whose care team the provider is on (while they
// belong to the client's clinic and are active), risk first then oldest
// first, followed by their open sessions ending within SessionEndingWindow.
// Counts cover the whole inbox; Next is set when more items follow.
//
// It reads the whole inbox in two queries (the walk over the provider's
// clients is what costs; an inbox is tens of items) and opens the PHI of
// the page's items only.
func ReadInbox(ctx context.Context, db *projections.DB, providerID string, now time.Time, page InboxPage) (ProviderInbox, error) {
	out := ProviderInbox{ProviderID: providerID, AsOf: now.UTC(), Items: []InboxItem{}}
	after, err := parseInboxKey(page.After)
	if err != nil {
		return ProviderInbox{}, err
	}
	c, err := readerCipher(db, InboxProjection)
	if err != nil {
		return ProviderInbox{}, fmt.Errorf("views: inbox of %s: %w", providerID, err)
	}
	c = probing(ctx, c)
	var rows []inboxRow
	err = db.Read(ctx, InboxProjection, func(tx *sql.Tx, t projections.TableNames) error {
		var inactive int
		err := tx.QueryRowContext(readContext(ctx), rebind(db, t, `SELECT COUNT(*) FROM {inbox_inactive} WHERE provider_id = ?`),
			providerID).Scan(&inactive)
		if err != nil || inactive > 0 {
			return err
		}
		items := rebind(db, t, `SELECT i.item_id, i.kind, i.client_id, c.display_name, i.session_id,
			COALESCE(s.title, ''), i.assignment_id, COALESCE(a.book_id, ''), COALESCE(a.book_title, ''), i.scope_id,
			i.ref_id, i.total, i.severity, i.flags, i.at, i.position
			`+inboxClients+`
			JOIN {inbox_items} i ON i.client_id = tm.client_id
			LEFT JOIN {inbox_sessions} s ON s.client_id = i.client_id AND s.session_id = i.session_id
			LEFT JOIN {inbox_assignments} a ON a.assignment_id = i.assignment_id
			WHERE tm.provider_id = ? AND (i.kind <> 'emergencyAccess' OR i.at > ?)`)
		err = queryRows(ctx, tx, items, []any{providerID, now.Add(-EmergencyAccessNotice).UnixNano()},
			func(sqlRows *sql.Rows) error {
				r, err := scanInboxItem(sqlRows)
				rows = append(rows, r)
				return err
			})
		if err != nil {
			return err
		}
		ending := rebind(db, t, `SELECT s.session_id, s.client_id, c.display_name, s.title, s.ends_at
			`+inboxClients+`
			JOIN {inbox_sessions} s ON s.client_id = tm.client_id
			WHERE tm.provider_id = ? AND s.is_open = 1 AND s.ends_at > ? AND s.ends_at <= ?`)
		return queryRows(ctx, tx, ending, []any{providerID, now.UnixNano(), now.Add(SessionEndingWindow).UnixNano()},
			func(sqlRows *sql.Rows) error {
				r := inboxRow{item: InboxItem{Kind: KindSessionEnding}}
				if err := sqlRows.Scan(&r.item.SessionID, &r.item.ClientID, &r.item.ClientName, &r.item.SessionTitle,
					&r.key.at); err != nil {
					return err
				}
				r.item.ID = "ending:" + r.item.SessionID
				r.item.At = time.Unix(0, r.key.at).UTC()
				r.key.ending, r.key.id = true, r.item.SessionID
				rows = append(rows, r)
				return nil
			})
	})
	if err != nil {
		return ProviderInbox{}, fmt.Errorf("views: inbox of %s: %w", providerID, err)
	}
	slices.SortFunc(rows, func(a, b inboxRow) int { return a.key.compare(b.key) })
	for _, r := range rows {
		out.Counts.add(r.item.Kind, 1)
	}
	first := 0
	if page.After != "" {
		first, _ = slices.BinarySearchFunc(rows, after, func(r inboxRow, k inboxKey) int {
			if r.key.compare(k) <= 0 {
				return -1
			}
			return 1
		})
	}
	rows = rows[first:]
	if page.Limit > 0 && len(rows) > page.Limit {
		rows = rows[:page.Limit]
		out.Next = rows[len(rows)-1].key.String()
	}
	for _, r := range rows {
		it, err := r.open(c)
		if err != nil {
			return ProviderInbox{}, fmt.Errorf("views: inbox of %s: %w", providerID, err)
		}
		out.Items = append(out.Items, it)
	}
	return out, nil
}

// inboxRow is one inbox item as stored, its PHI still sealed.
type inboxRow struct {
	item  InboxItem
	total sql.NullString
	flags string
	key   inboxKey
}

// scanInboxItem reads one stored item.
func scanInboxItem(rows *sql.Rows) (inboxRow, error) {
	var (
		r     inboxRow
		it    = &r.item
		scope string
		ref   string
	)
	if err := rows.Scan(&it.ID, &it.Kind, &it.ClientID, &it.ClientName, &it.SessionID, &it.SessionTitle,
		&it.AssignmentID, &it.BookID, &it.BookTitle, &scope, &ref, &r.total, &it.Severity, &r.flags, &r.key.at,
		&r.key.position); err != nil {
		return inboxRow{}, err
	}
	switch it.Kind {
	case KindClientComment:
		it.FeedbackID, it.CommentID = scope, ref
	case KindClientMessage:
		it.MessageID = ref
	case KindEmergencyAccess:
		it.GrantID, it.GrantedTo = ref, scope
	}
	if it.Kind != KindRisk {
		r.key.rank = 1
	}
	r.key.id = it.ID
	it.At = time.Unix(0, r.key.at).UTC()
	return r, nil
}

// open is the item with its PHI opened.
func (r inboxRow) open(c cipher) (InboxItem, error) {
	it := r.item
	if it.Kind == KindSessionEnding {
		return it, c.openInto(it.ClientID, field(colInboxClientName, &it.ClientName),
			field(colInboxSessionTitle, &it.SessionTitle))
	}
	err := c.openInto(it.ClientID, field(colInboxClientName, &it.ClientName),
		field(colInboxSessionTitle, &it.SessionTitle), field(colInboxItemSeverity, &it.Severity))
	if err != nil {
		return InboxItem{}, err
	}
	if r.total.Valid {
		total := r.total.String
		if it.Total, err = c.openTotal(it.ClientID, colInboxItemTotal, &total); err != nil {
			return InboxItem{}, err
		}
	}
	if it.Flags, err = c.openFlags(it.ClientID, colInboxItemFlags, r.flags); err != nil {
		return InboxItem{}, err
	}
	return it, nil
}

// inboxKey orders the inbox: stored items (urgent risk first, then by
// when they arose, then by position and id), then the sessions ending (by
// their end, then id).
type inboxKey struct {
	ending   bool
	rank     int // 0: risk
	at       int64
	position int64
	id       string // item id; session id for an ending session
}

func (k inboxKey) compare(o inboxKey) int {
	if k.ending != o.ending {
		if o.ending {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(k.rank, o.rank); c != 0 {
		return c
	}
	if c := cmp.Compare(k.at, o.at); c != 0 {
		return c
	}
	if c := cmp.Compare(k.position, o.position); c != 0 {
		return c
	}
	return strings.Compare(k.id, o.id)
}

// String is the key as a cursor: "i:<rank>:<at>:<position>:<item id>" or
// "e:<ends at>:<session id>".
func (k inboxKey) String() string {
	if k.ending {
		return fmt.Sprintf("e:%d:%s", k.at, k.id)
	}
	return fmt.Sprintf("i:%d:%d:%d:%s", k.rank, k.at, k.position, k.id)
}

func parseInboxKey(key string) (inboxKey, error) {
	if key == "" {
		return inboxKey{}, nil
	}
	bad := fmt.Errorf("%w: %q", ErrBadInboxCursor, key)
	kind, rest, _ := strings.Cut(key, ":")
	switch kind {
	case "i":
		parts := strings.SplitN(rest, ":", 4)
		if len(parts) != 4 || parts[3] == "" {
			return inboxKey{}, bad
		}
		rank, err1 := strconv.Atoi(parts[0])
		at, err2 := strconv.ParseInt(parts[1], 10, 64)
		position, err3 := strconv.ParseInt(parts[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return inboxKey{}, bad
		}
		return inboxKey{rank: rank, at: at, position: position, id: parts[3]}, nil
	case "e":
		atText, sessionID, ok := strings.Cut(rest, ":")
		at, err := strconv.ParseInt(atText, 10, 64)
		if !ok || err != nil || sessionID == "" {
			return inboxKey{}, bad
		}
		return inboxKey{ending: true, at: at, id: sessionID}, nil
	}
	return inboxKey{}, bad
}

func (c *InboxCounts) add(kind string, n int) {
	switch kind {
	case KindRisk:
		c.Risk += n
	case KindAwaitingFeedback:
		c.AwaitingFeedback += n
	case KindClientComment:
		c.ClientComments += n
	case KindClientMessage:
		c.ClientMessages += n
	case KindOverdue:
		c.Overdue += n
	case KindSessionEnding:
		c.SessionsEnding += n
	case KindEmergencyAccess:
		c.EmergencyAccess += n
	}
	c.Total += n
}
