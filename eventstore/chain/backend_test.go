package chain

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/postgres"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/eventstore/sqlite"
)

// fixture is a fresh event store, its chain table, and raw SQL access to
// the database behind both, the way an attacker with write access has it.
type fixture struct {
	store eventstore.Store
	table Table
	raw   tamperer
}

// tamperer changes the database behind the store's back. The append-only
// triggers are dropped or disabled first, as anyone with write access can.
type tamperer interface {
	// flipDataByte changes one digit of the event's stored data.
	flipDataByte(t *testing.T, position int64)
	deleteEvent(t *testing.T, position int64)
	swapTypeAndData(t *testing.T, a, b int64)
	swapPositions(t *testing.T, a, b int64)
	deleteLink(t *testing.T, position int64)
	zeroLinkHash(t *testing.T, position int64)
	// dropChain deletes every link and checkpoint, so the chain can be
	// rebuilt over a rewritten log.
	dropChain(t *testing.T)
}

type backend struct {
	name string
	open func(t *testing.T) fixture
}

var backends = []backend{
	{name: "sqlite", open: openSQLiteFixture},
	{name: "postgres", open: openPostgresFixture},
}

// forEachBackend runs test on a fresh database of every backend.
func forEachBackend(t *testing.T, test func(t *testing.T, f fixture)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.open(t)) })
	}
}

func openSQLiteFixture(t *testing.T) fixture {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	store, err := sqlite.Open(ctx, sqlite.Config{Path: path}, eventstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	table, err := OpenSQLite(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = table.Close() })
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = raw.Close() })
	return fixture{store: store, table: table, raw: &sqliteTamperer{db: raw}}
}

type sqliteTamperer struct{ db *sql.DB }

func (s *sqliteTamperer) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	for _, trigger := range []string{"events_no_update", "events_no_delete", "event_chain_no_update",
		"event_chain_no_delete", "event_chain_checkpoints_no_update", "event_chain_checkpoints_no_delete"} {
		_, err := s.db.Exec(`DROP TRIGGER IF EXISTS ` + trigger)
		require.NoError(t, err)
	}
	res, err := s.db.Exec(query, args...)
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.NotZero(t, n, "the tampering changed nothing: %s", query)
}

func (s *sqliteTamperer) flipDataByte(t *testing.T, position int64) {
	var data []byte
	require.NoError(t, s.db.QueryRow(`SELECT data FROM events WHERE position = ?`, position).Scan(&data))
	s.exec(t, `UPDATE events SET data = ? WHERE position = ?`, flipDigit(t, data), position)
}

// breakData makes the stored data invalid JSON: SQLite keeps raw bytes,
// PostgreSQL's jsonb could not hold it.
func (s *sqliteTamperer) breakData(t *testing.T, position int64) {
	var data []byte
	require.NoError(t, s.db.QueryRow(`SELECT data FROM events WHERE position = ?`, position).Scan(&data))
	data[len(data)-1] = ' ' // the closing brace
	s.exec(t, `UPDATE events SET data = ? WHERE position = ?`, data, position)
}

func (s *sqliteTamperer) deleteEvent(t *testing.T, position int64) {
	s.exec(t, `DELETE FROM events WHERE position = ?`, position)
}

func (s *sqliteTamperer) swapTypeAndData(t *testing.T, a, b int64) {
	var typeA, typeB string
	var dataA, dataB []byte
	require.NoError(t, s.db.QueryRow(`SELECT type, data FROM events WHERE position = ?`, a).Scan(&typeA, &dataA))
	require.NoError(t, s.db.QueryRow(`SELECT type, data FROM events WHERE position = ?`, b).Scan(&typeB, &dataB))
	s.exec(t, `UPDATE events SET type = ?, data = ? WHERE position = ?`, typeB, dataB, a)
	s.exec(t, `UPDATE events SET type = ?, data = ? WHERE position = ?`, typeA, dataA, b)
}

func (s *sqliteTamperer) swapPositions(t *testing.T, a, b int64) {
	s.exec(t, `UPDATE events SET position = ? WHERE position = ?`, -a, a)
	s.exec(t, `UPDATE events SET position = ? WHERE position = ?`, a, b)
	s.exec(t, `UPDATE events SET position = ? WHERE position = ?`, b, -a)
}

func (s *sqliteTamperer) deleteLink(t *testing.T, position int64) {
	s.exec(t, `DELETE FROM event_chain WHERE position = ?`, position)
}

func (s *sqliteTamperer) zeroLinkHash(t *testing.T, position int64) {
	s.exec(t, `UPDATE event_chain SET hash = zeroblob(32) WHERE position = ?`, position)
}

func (s *sqliteTamperer) dropChain(t *testing.T) {
	s.exec(t, `DELETE FROM event_chain`)
	_, err := s.db.Exec(`DELETE FROM event_chain_checkpoints`)
	require.NoError(t, err)
}

func openPostgresFixture(t *testing.T) fixture {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	store, err := postgres.Open(ctx, postgres.Config{URL: url, Migrate: true}, eventstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	table, err := OpenPostgres(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = table.Close() })
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return fixture{store: store, table: table, raw: &postgresTamperer{conn: conn}}
}

type postgresTamperer struct{ conn *pgx.Conn }

// exec runs the statements in one transaction with the append-only
// triggers disabled.
func (p *postgresTamperer) exec(t *testing.T, statements ...string) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
		for _, table := range []string{"events", "event_chain", "event_chain_checkpoints"} {
			if _, err := tx.Exec(ctx, `ALTER TABLE `+table+` DISABLE TRIGGER USER`); err != nil {
				return err
			}
		}
		for _, st := range statements {
			tag, err := tx.Exec(ctx, st)
			if err != nil {
				return fmt.Errorf("%s: %w", st, err)
			}
			if tag.RowsAffected() == 0 {
				return fmt.Errorf("the tampering changed nothing: %s", st)
			}
		}
		return nil
	})
	require.NoError(t, err)
}

func (p *postgresTamperer) flipDataByte(t *testing.T, position int64) {
	var text string
	require.NoError(t, p.conn.QueryRow(context.Background(), `SELECT data::text FROM events WHERE position = $1`, position).Scan(&text))
	flipped := string(flipDigit(t, []byte(text)))
	p.exec(t, fmt.Sprintf(`UPDATE events SET data = %s::jsonb WHERE position = %d`, quote(flipped), position))
}

func (p *postgresTamperer) deleteEvent(t *testing.T, position int64) {
	p.exec(t, fmt.Sprintf(`DELETE FROM events WHERE position = %d`, position))
}

func (p *postgresTamperer) swapTypeAndData(t *testing.T, a, b int64) {
	p.exec(t, fmt.Sprintf(`UPDATE events AS e SET type = o.type, data = o.data
		FROM events AS o WHERE (e.position, o.position) IN ((%d, %d), (%d, %d))`, a, b, b, a))
}

func (p *postgresTamperer) swapPositions(t *testing.T, a, b int64) {
	// A free position above every other one, for the moment of the swap.
	var spare int64
	require.NoError(t, p.conn.QueryRow(context.Background(), `SELECT MAX(position) + 1000 FROM events`).Scan(&spare))
	p.exec(t,
		fmt.Sprintf(`UPDATE events SET position = %d WHERE position = %d`, spare, a),
		fmt.Sprintf(`UPDATE events SET position = %d WHERE position = %d`, a, b),
		fmt.Sprintf(`UPDATE events SET position = %d WHERE position = %d`, b, spare))
}

func (p *postgresTamperer) deleteLink(t *testing.T, position int64) {
	p.exec(t, fmt.Sprintf(`DELETE FROM event_chain WHERE position = %d`, position))
}

func (p *postgresTamperer) zeroLinkHash(t *testing.T, position int64) {
	p.exec(t, fmt.Sprintf(`UPDATE event_chain SET hash = '\x%064x'::bytea WHERE position = %d`, 0, position))
}

func (p *postgresTamperer) dropChain(t *testing.T) {
	p.exec(t, `DELETE FROM event_chain`)
	p.exec(t, `DELETE FROM event_chain_checkpoints`)
}

// quote is a PostgreSQL string literal.
func quote(s string) string {
	out := []byte{'\''}
	for _, c := range []byte(s) {
		if c == '\'' {
			out = append(out, '\'')
		}
		out = append(out, c)
	}
	return string(append(out, '\''))
}

// flipDigit changes the first digit in data to the next one: one byte.
func flipDigit(t *testing.T, data []byte) []byte {
	t.Helper()
	out := append([]byte(nil), data...)
	for i, c := range out {
		if c >= '0' && c <= '9' {
			out[i] = '0' + (c-'0'+1)%10
			return out
		}
	}
	t.Fatalf("no digit to flip in %s", data)
	return nil
}

// scriptedAppend is one Append of the script.
type scriptedAppend struct {
	stream eventstore.StreamID
	events []eventstore.NewEvent
}

func newEvent(typ, data string, meta eventstore.Metadata) eventstore.NewEvent {
	return eventstore.NewEvent{Type: typ, Data: json.RawMessage(data), Metadata: meta}
}

// script is a small care history over several streams. Every event's data
// holds a digit, so flipDigit can alter any of them.
func script() []scriptedAppend {
	provider := eventstore.Metadata{ActorID: "p-1", ActorRole: "provider", ClinicID: "clinic-1", CorrelationID: "req-1"}
	client := eventstore.Metadata{ActorID: "c-1", ActorRole: "client", ClinicID: "clinic-1", CorrelationID: "req-2"}
	withCommand := func(m eventstore.Metadata, id string) eventstore.Metadata { m.CommandID = id; return m }
	return []scriptedAppend{
		{eventstore.NewStreamID("clinic", "clinic-1"), []eventstore.NewEvent{
			newEvent("clinic.registered", `{"name": "Praxis Nord", "seats": 3}`, withCommand(provider, "cmd-1")),
		}},
		{eventstore.NewStreamID("client", "c-1"), []eventstore.NewEvent{
			newEvent("client.admitted", `{"clientId":"c-1","displayName":"Zoë \"Z\" Ødegård","age":34}`, withCommand(provider, "cmd-2")),
			newEvent("client.consented", `{"scope":["messages","notes"],"version":2}`, withCommand(provider, "cmd-2")),
		}},
		{eventstore.NewStreamID("session", "s-1"), []eventstore.NewEvent{
			newEvent("session.scheduled", `{"sessionId":"s-1","at":"2026-11-23T09:00:00Z","minutes":50}`, provider),
		}},
		{eventstore.NewStreamID("assignment", "a-1"), []eventstore.NewEvent{
			newEvent("assignment.given", `{"book":"PHQ-9","items":9}`, withCommand(provider, "cmd-4")),
		}},
		{eventstore.NewStreamID("assignment", "a-1"), []eventstore.NewEvent{
			newEvent("assignment.answered", `{"answers":[1,2,0,3,1,1,0,2,1],"score":11,"ratio":0.50}`, withCommand(client, "cmd-5")),
			newEvent("assignment.scored", `{"score":11,"band":"moderate","weight":1e0}`, withCommand(client, "cmd-5")),
		}},
		{eventstore.NewStreamID("session", "s-1"), []eventstore.NewEvent{
			newEvent("session.note_added", `{"text":"Sleep improved;\nmood 6/10 🙂","private":true}`, provider),
		}},
		{eventstore.NewStreamID("thread", "t-1"), []eventstore.NewEvent{
			newEvent("message.sent", `{"from":"c-1","body":"Thanks! See you on the 23rd.","attachments":0}`, client),
			newEvent("message.sent", `{"from":"p-1","body":"You're welcome <3 & take care","attachments":0}`, provider),
		}},
		{eventstore.NewStreamID("assignment", "a-2"), []eventstore.NewEvent{
			newEvent("assignment.given", `{"book":"GAD-7","items":7}`, withCommand(provider, "cmd-8")),
		}},
		{eventstore.NewStreamID("session", "s-1"), []eventstore.NewEvent{
			newEvent("session.completed", `{"sessionId":"s-1","minutes":48,"nested":{"b":[{"y":1,"x":2}],"a":null}}`, provider),
		}},
	}
}

// appendScript appends the script and returns the log as stored.
func appendScript(t *testing.T, store eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	ctx := context.Background()
	before, err := store.HeadPosition(ctx)
	require.NoError(t, err)
	var last int64
	for _, a := range script() {
		res, err := store.Append(ctx, a.stream, eventstore.AnyVersion, a.events)
		require.NoError(t, err)
		last = res.LastPosition()
	}
	waitVisible(t, store, last)
	return readLog(t, store, before)
}

// waitVisible waits until readers of the log see position. PostgreSQL
// shows a commit to readers only once every older transaction on the
// server has ended, and other tests' transactions may still be open.
func waitVisible(t *testing.T, store eventstore.Store, position int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errSeen := errors.New("seen")
	err := store.Subscribe(ctx, 0, func(e eventstore.RecordedEvent) error {
		if e.Position >= position {
			return errSeen
		}
		return nil
	})
	require.ErrorIs(t, err, errSeen)
}

// appendMore appends n events to a stream of its own.
func appendMore(t *testing.T, store eventstore.Store, stream string, n int) {
	t.Helper()
	var last int64
	for i := range n {
		res, err := store.Append(context.Background(), eventstore.NewStreamID("thread", stream), eventstore.AnyVersion,
			[]eventstore.NewEvent{newEvent("message.sent", fmt.Sprintf(`{"n":%d}`, i+1), eventstore.Metadata{})})
		require.NoError(t, err)
		last = res.LastPosition()
	}
	waitVisible(t, store, last)
}

func readLog(t *testing.T, store eventstore.Store, after int64) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for {
		page, err := store.ReadAll(context.Background(), after, 100)
		require.NoError(t, err)
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Position
	}
}
