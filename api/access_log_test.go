package api

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/eventstore/sqlite"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/views"
)

func TestPHIReadsAreRecordedAndListedForAuditors(t *testing.T) {
	w := newCareWorld(t)
	sched, _ := w.scheduleForK1(1)
	s1 := sched.Sessions[0].ID
	a1 := w.assignmentsOf(s1)[0]
	w.clock.Advance(25 * time.Hour)
	w.activate(s1)
	w.ok(http.StatusOK, nil, w.k1, "POST", "/v1/assignments/"+a1+"/responses", map[string]any{"answers": phq9(1, 1)})

	w.ok(http.StatusOK, nil, w.p2, "GET", "/v1/sessions/"+s1, nil, HeaderPurpose, "treatment")
	w.ok(http.StatusOK, nil, w.k1, "GET", "/v1/assignments/"+a1, nil)
	w.ok(http.StatusOK, nil, w.p1, "GET", "/v1/providers/"+w.p1.ID+"/inbox", nil)
	w.ok(http.StatusOK, nil, w.k2, "GET", "/v1/clients/"+w.k2.ID+"/sessions", nil, HeaderPurpose, "my own")

	var page PageResponse[AccessRecord]
	w.ok(http.StatusOK, &page, w.auditor1, "GET", "/v1/clients/"+w.k1.ID+"/access-log", nil)
	byRoute := map[string]AccessRecord{}
	for _, rec := range page.Items {
		assert.Contains(t, rec.ClientIDs, w.k1.ID)
		assert.NotEqual(t, w.k2.ID, rec.ActorID, "k2 read only their own records")
		if _, seen := byRoute[rec.Route]; !seen {
			byRoute[rec.Route] = rec
		}
	}
	read := byRoute["GET /v1/sessions/{sessionId}"]
	require.NotEmpty(t, read.ID, "the session read is recorded: %+v", page.Items)
	var p2Read AccessRecord
	for _, rec := range page.Items {
		if rec.ActorID == w.p2.ID {
			p2Read = rec
		}
	}
	assert.Equal(t, "treatment", p2Read.Purpose)
	assert.Equal(t, string(domain.RoleProvider), p2Read.Role)
	assert.Equal(t, "u-"+w.p2.ID, p2Read.UserID)
	assert.Equal(t, "GET", p2Read.Method)
	assert.Equal(t, s1, p2Read.Objects["sessionId"])
	assert.Equal(t, w.clinic1, p2Read.ClinicID)
	assert.True(t, p2Read.At.Equal(w.clock.Now()))
	assert.NotEmpty(t, p2Read.RequestID)
	clientRead := byRoute["GET /v1/assignments/{assignmentId}"]
	assert.Equal(t, w.k1.ID, clientRead.ActorID)
	assert.Equal(t, a1, clientRead.Objects["assignmentId"])
	inboxRead := byRoute["GET /v1/providers/{providerId}/inbox"]
	assert.Equal(t, w.p1.ID, inboxRead.Objects["providerId"])
	assert.Contains(t, inboxRead.ClientIDs, w.k1.ID, "the inbox read names the clients it showed")

	// k2's own read is listed under k2 alone; the listing is recorded too,
	// and the log pages.
	var only, first, second PageResponse[AccessRecord]
	w.ok(http.StatusOK, &only, w.admin1, "GET", "/v1/clients/"+w.k2.ID+"/access-log", nil)
	require.Len(t, only.Items, 1)
	assert.Equal(t, "my own", only.Items[0].Purpose)
	assert.Equal(t, []string{w.k2.ID}, only.Items[0].ClientIDs)
	assert.Empty(t, only.NextCursor)
	w.ok(http.StatusOK, &first, w.admin1, "GET", "/v1/clients/"+w.k2.ID+"/access-log?limit=1", nil)
	require.Len(t, first.Items, 1)
	require.NotEmpty(t, first.NextCursor)
	w.ok(http.StatusOK, &second, w.admin1, "GET", "/v1/clients/"+w.k2.ID+"/access-log?limit=1&cursor="+first.NextCursor, nil)
	require.NotEmpty(t, second.Items)
	assert.Greater(t, second.Items[0].Seq, first.Items[0].Seq)
	assert.Equal(t, "GET /v1/clients/{clientId}/access-log", second.Items[0].Route, "listing the log is itself recorded")

	// A bad purpose is refused before anything is read.
	rec := w.do(w.p1, "GET", "/v1/sessions/"+s1, nil, HeaderPurpose, "line\x01break")
	requireProblem(t, rec, http.StatusBadRequest, SlugInvalidRequest)
}

func TestReadsWaitForTheCallersOwnWrite(t *testing.T) {
	w := newCareWorld(t)
	sched, pos := w.scheduleForK1(3)

	// The position of the write: the client's list includes all three.
	var list views.ClientSessionList
	rec := w.ok(http.StatusOK, &list, w.k1, "GET", "/v1/clients/"+w.k1.ID+"/sessions?minPosition="+pos, nil)
	assert.Equal(t, "true", rec.Header().Get(HeaderFresh))
	assert.Len(t, list.Upcoming, 3)

	// An assignment given a moment ago is found by id at once: the
	// assignment index is waited for when it does not know the id.
	var given CommandResponse
	w.ok(http.StatusCreated, &given, w.p1, "POST", "/v1/sessions/"+sched.Sessions[2].ID+"/assignments",
		map[string]any{"bookId": "gad-7"})
	var view assignmentView
	w.ok(http.StatusOK, &view, w.p1, "GET", "/v1/assignments/"+given.IDs["assignmentId"], nil)
	require.NotNil(t, view.Team)
	assert.Equal(t, sched.Sessions[2].ID, view.SessionID)
	assert.Equal(t, "gad-7", view.Team.BookID)

	// Session reads wait for the session's last write without being told.
	rec = w.ok(http.StatusOK, nil, w.p1, "GET", "/v1/sessions/"+sched.Sessions[2].ID, nil)
	assert.Equal(t, "true", rec.Header().Get(HeaderFresh))
	assert.Equal(t, ETag(3), rec.Header().Get("ETag"), "scheduled with its PHQ-9, then GAD-7 assigned: version 3")

	// Unknown assignments are not found once the index has caught up.
	requireProblem(t, w.do(w.p1, "GET", "/v1/assignments/no-such-assignment", nil), http.StatusNotFound, SlugNotFound)

	// A malformed position is refused.
	requireProblem(t, w.do(w.p1, "GET", "/v1/providers/"+w.p1.ID+"/inbox", nil, HeaderMinPosition, "soon"),
		http.StatusBadRequest, SlugInvalidRequest)
}

func TestAReadThatCannotCatchUpSaysSo(t *testing.T) {
	w := newCareWorld(t, func(c *CareConfig) { c.MaxWait = 50 * time.Millisecond })
	w.scheduleForK1(1)
	beyond := strconv.FormatInt(w.head()+1000, 10)
	var inbox views.ProviderInbox
	rec := w.ok(http.StatusOK, &inbox, w.p1, "GET", "/v1/providers/"+w.p1.ID+"/inbox", nil, HeaderMinPosition, beyond)
	assert.Equal(t, "false", rec.Header().Get(HeaderFresh), "answered with what it has, and says so")
	assert.Equal(t, w.p1.ID, inbox.ProviderID)
}

func TestCareRoutesWithoutCareServicesAreUnavailable(t *testing.T) {
	f := newFixture(t)
	tok := newTestTokens(t, f.clock)
	rec := f.do("GET", "/v1/sessions/s1", nil, "Authorization", tokenFor(t, tok, domain.RoleProvider, "c1"))
	p := requireProblem(t, rec, http.StatusServiceUnavailable, SlugUnavailable)
	assert.Equal(t, "care-not-configured", p.Code)
	// Still under the policy: no token is 401, not 503.
	requireProblem(t, f.do("GET", "/v1/sessions/s1", nil), http.StatusUnauthorized, SlugUnauthorized)
}

func TestCareConfigMustBeWhole(t *testing.T) {
	log, err := OpenSQLiteAccessLog(context.Background(), filepath.Join(t.TempDir(), "access.db"))
	require.NoError(t, err)
	defer func() { _ = log.Close() }()
	err = CareConfig{AccessLog: log}.check()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Care.Commands")
	assert.Contains(t, err.Error(), "Care.Views")
	assert.NoError(t, CareConfig{}.check())

	// A views database whose runner lacks a projection the routes read.
	db, err := projections.OpenDB(context.Background(), filepath.Join(t.TempDir(), "views.db"))
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	require.NoError(t, db.Register(NewAssignmentIndex()))
	err = CareConfig{Views: db}.check()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no projection "+views.InboxProjection)
	assert.Contains(t, err.Error(), "no projection "+audit.TrailName)
	assert.NotContains(t, err.Error(), "no projection "+AssignmentIndexName)
}

func TestSQLiteAccessLogIsDurableAndAppendOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "access.db")
	log, err := OpenSQLiteAccessLog(ctx, path)
	require.NoError(t, err)
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	rec := AccessRecord{ID: "r1", At: at, UserID: "u1", ActorID: "p1", Role: "provider", Method: "GET",
		Route: "GET /v1/sessions/{sessionId}", ClinicID: "c1", ClientIDs: []string{"k1", "k2", "k1"},
		Objects: map[string]string{"sessionId": "s1"}}
	require.NoError(t, log.Record(ctx, rec))
	require.Error(t, log.Record(ctx, rec), "a record id is written once")
	require.Error(t, log.Record(ctx, AccessRecord{ID: "r2"}), "a record needs who, when and what")
	require.NoError(t, log.Close())

	// Reopened: the record is there, under each client once.
	log, err = OpenSQLiteAccessLog(ctx, path)
	require.NoError(t, err)
	defer func() { _ = log.Close() }()
	for _, client := range []string{"k1", "k2"} {
		got, err := log.ForClient(ctx, client, 0, 10)
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, "r1", got[0].ID)
		assert.Equal(t, []string{client}, got[0].ClientIDs, "a listing names only the client asked about")
		assert.True(t, got[0].At.Equal(at))
		assert.Equal(t, map[string]string{"sessionId": "s1"}, got[0].Objects)
	}
	none, err := log.ForClient(ctx, "k3", 0, 10)
	require.NoError(t, err)
	assert.Empty(t, none)
	var mode string
	require.NoError(t, log.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "wal", mode)
	var sync int
	require.NoError(t, log.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
	assert.Equal(t, 2, sync, "synchronous=FULL")
}

// Concurrent reads share commits; every record lands, and one bad record
// in a group fails alone.
func TestSQLiteAccessLogGroupsConcurrentRecords(t *testing.T) {
	ctx := context.Background()
	log, err := OpenSQLiteAccessLog(ctx, filepath.Join(t.TempDir(), "access.db"))
	require.NoError(t, err)
	defer func() { _ = log.Close() }()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	record := func(id string) AccessRecord {
		return AccessRecord{ID: id, At: at, UserID: "u1", ActorID: "p1", Role: "provider", Method: "GET",
			Route: "GET /v1/sessions/{sessionId}", ClientIDs: []string{"k1"}}
	}
	require.NoError(t, log.Record(ctx, record("taken")))

	const readers = 64
	errs := make([]error, readers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("r%02d", i)
			if i == readers/2 {
				id = "taken" // a duplicate id in the middle of the burst
			}
			errs[i] = log.Record(ctx, record(id))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i == readers/2 {
			assert.Error(t, err, "the duplicate fails")
		} else {
			assert.NoError(t, err, "record %d", i)
		}
	}
	got, err := log.ForClient(ctx, "k1", 0, 1000)
	require.NoError(t, err)
	assert.Len(t, got, readers, "every good record landed once (the first plus 63)")

	require.NoError(t, log.Close())
	assert.Error(t, log.Record(ctx, record("late")), "a closed log takes nothing")
}

// A log made before the client ranges (its clients indexed a row per
// client and record, in either of the two layouts it had) is moved to
// them on open: every record is still listed under each of its clients,
// once, and records written afterwards join them.
func TestSQLiteAccessLogMovesAnOlderIndexToClientRanges(t *testing.T) {
	for name, table := range map[string]string{
		"rowid":         `CREATE TABLE access_record_clients (seq BIGINT NOT NULL REFERENCES access_records(seq), client_id TEXT NOT NULL, PRIMARY KEY (client_id, seq))`,
		"without rowid": `CREATE TABLE access_record_clients (seq BIGINT NOT NULL REFERENCES access_records(seq), client_id TEXT NOT NULL, PRIMARY KEY (client_id, seq)) WITHOUT ROWID`,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "access.db")
			db, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{})
			require.NoError(t, err)
			for _, stmt := range []string{
				`CREATE TABLE access_records (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
					at BIGINT NOT NULL, user_id TEXT NOT NULL, actor_id TEXT NOT NULL, role TEXT NOT NULL,
					method TEXT NOT NULL, route TEXT NOT NULL, request_id TEXT NOT NULL, purpose TEXT NOT NULL,
					clinic_id TEXT NOT NULL, objects TEXT NOT NULL, basis TEXT NOT NULL DEFAULT '',
					grant_id TEXT NOT NULL DEFAULT '', grant_reason TEXT NOT NULL DEFAULT '')`,
				table,
				`INSERT INTO access_records (id, at, user_id, actor_id, role, method, route, request_id, purpose, clinic_id, objects)
					VALUES ('r0', 1, 'u1', 'p1', 'provider', 'GET', 'GET /v1/clients/{clientId}/sessions', '', '', 'c1', '{}'),
					('r1', 2, 'u1', 'p1', 'provider', 'GET', 'GET /v1/providers/{providerId}/inbox', '', '', 'c1', '{}')`,
				`INSERT INTO access_record_clients (seq, client_id) VALUES (1, 'k1'), (2, 'k1'), (2, 'k2')`,
			} {
				_, err := db.ExecContext(ctx, stmt)
				require.NoError(t, err)
			}
			require.NoError(t, db.Close())

			log, err := OpenSQLiteAccessLog(ctx, path)
			require.NoError(t, err)
			defer func() { _ = log.Close() }()
			var tables int
			require.NoError(t, log.db.QueryRowContext(ctx,
				`SELECT COUNT(*) FROM sqlite_schema WHERE name = 'access_record_clients'`).Scan(&tables))
			assert.Zero(t, tables, "the old index is gone")
			require.NoError(t, log.Record(ctx, AccessRecord{ID: "r2", At: time.Unix(3, 0), UserID: "u1", ActorID: "p1",
				Role: "provider", Method: "GET", Route: "GET /v1/clients/{clientId}/sessions", ClientIDs: []string{"k2"}}))
			for client, want := range map[string][]string{"k1": {"r0", "r1"}, "k2": {"r1", "r2"}, "k3": nil} {
				got, err := log.ForClient(ctx, client, 0, 10)
				require.NoError(t, err)
				assert.Equal(t, want, recordIDs(got), client)
			}
		})
	}
}

func recordIDs(recs []AccessRecord) []string {
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	return ids
}

// A read waits for its record, not for the client index: that is written
// behind, and a listing brings it up to date before it answers.
func TestSQLiteAccessLogIndexesClientsBehindTheRecords(t *testing.T) {
	ctx := context.Background()
	log, err := openSQLiteAccessLog(ctx, filepath.Join(t.TempDir(), "access.db"), accessLogOptions{indexEvery: time.Hour, indexBatch: 1000})
	require.NoError(t, err)
	defer func() { _ = log.Close() }()
	require.NoError(t, log.Record(ctx, AccessRecord{ID: "r1", At: time.Unix(1, 0), UserID: "u1", ActorID: "p1",
		Role: "provider", Method: "GET", Route: "GET /v1/providers/{providerId}/inbox", ClientIDs: []string{"k2", "k1"}}))
	ranges := func() (n int) {
		require.NoError(t, log.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM access_client_ranges`).Scan(&n))
		return n
	}
	assert.Zero(t, ranges(), "recording wrote no index")
	got, err := log.ForClient(ctx, "k2", 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"r1"}, recordIDs(got))
	assert.Equal(t, 2, ranges(), "the listing indexed both clients")
}

// Records are durable before the index is: after a crash between the two
// (here, the index rolled back by hand), opening the log indexes them.
func TestSQLiteAccessLogIndexesAfterACrash(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "access.db")
	log, err := OpenSQLiteAccessLog(ctx, path)
	require.NoError(t, err)
	for i := range 5 {
		require.NoError(t, log.Record(ctx, AccessRecord{ID: fmt.Sprint("r", i), At: time.Unix(int64(i), 0), UserID: "u1",
			ActorID: "p1", Role: "provider", Method: "GET", Route: "GET /v1/clients/{clientId}", ClientIDs: []string{"k1"}}))
	}
	require.NoError(t, log.Close())
	db, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{})
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `DELETE FROM access_client_ranges`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `UPDATE access_index_state SET indexed_through = 0`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	log, err = openSQLiteAccessLog(ctx, path, accessLogOptions{indexEvery: time.Hour})
	require.NoError(t, err)
	defer func() { _ = log.Close() }()
	var ranges int
	require.NoError(t, log.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM access_client_ranges`).Scan(&ranges))
	assert.Equal(t, 1, ranges, "indexed on open, before any listing")
	got, err := log.ForClient(ctx, "k1", 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"r0", "r1", "r2", "r3", "r4"}, recordIDs(got))
}

// The writer indexes the records it committed from memory; a record
// another process wrote in between is read from the database, not passed
// over.
func TestSQLiteAccessLogIndexesAnotherProcesssRecords(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "access.db")
	log, err := openSQLiteAccessLog(ctx, path, accessLogOptions{indexEvery: time.Hour})
	require.NoError(t, err)
	defer func() { _ = log.Close() }()
	record := func(id string) {
		require.NoError(t, log.Record(ctx, AccessRecord{ID: id, At: time.Unix(1, 0), UserID: "u1", ActorID: "p1",
			Role: "provider", Method: "GET", Route: "GET /v1/clients/{clientId}", ClientIDs: []string{"k1"}}))
	}
	record("r1")
	other, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{})
	require.NoError(t, err)
	_, err = other.ExecContext(ctx, `INSERT INTO access_records (id, at, user_id, actor_id, role, method, route,
		request_id, purpose, clinic_id, objects, clients) VALUES ('r2', 2, 'u9', 'a9', 'auditor', 'GET',
		'GET /v1/audit/clients/{clientId}/timeline', '', '', '', '{}', '["k1"]')`)
	require.NoError(t, err)
	require.NoError(t, other.Close())
	record("r3")
	require.Len(t, log.pending, 2, "r1 and r3 are remembered, with a gap between them")

	got, err := log.ForClient(ctx, "k1", 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"r1", "r2", "r3"}, recordIDs(got))
	assert.Empty(t, log.pending, "everything indexed is forgotten")
}

// A record that names no clients (an empty page) can lie inside a
// client's range; listing that client skips it instead of failing on it.
func TestSQLiteAccessLogListsAroundRecordsWithoutClients(t *testing.T) {
	ctx := context.Background()
	log, err := openSQLiteAccessLog(ctx, filepath.Join(t.TempDir(), "access.db"), accessLogOptions{indexEvery: time.Hour})
	require.NoError(t, err)
	defer func() { _ = log.Close() }()
	for i, clients := range [][]string{{"k1"}, nil, {"k1"}} {
		require.NoError(t, log.Record(ctx, AccessRecord{ID: []string{"r1", "r2", "r3"}[i], At: time.Unix(int64(i+1), 0),
			UserID: "u1", ActorID: "a1", Role: "clinic_admin", Method: "GET", Route: "GET /v1/clinics/{clinicId}/overview",
			ClientIDs: clients, Basis: BasisClinicRole}))
	}
	got, err := log.ForClient(ctx, "k1", 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"r1", "r3"}, recordIDs(got))
	got, err = log.Disclosures(ctx, "k1", time.Unix(0, 0), 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"r1", "r3"}, recordIDs(got))
}

// An older build that ran on a moved log (a rollback) wrote its records
// with the old per-record index and no clients column; the next open
// gives them their clients and rebuilds the index, so every record is
// listed once, in order.
func TestSQLiteAccessLogRebuildsItsIndexAfterAnOlderBuildWrote(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "access.db")
	record := func(log *SQLiteAccessLog, id string, clients ...string) {
		require.NoError(t, log.Record(ctx, AccessRecord{ID: id, At: time.Unix(1, 0), UserID: "u1", ActorID: "p1",
			Role: "provider", Method: "GET", Route: "GET /v1/providers/{providerId}/inbox", ClientIDs: clients}))
	}
	log, err := OpenSQLiteAccessLog(ctx, path)
	require.NoError(t, err)
	record(log, "r1", "k1")
	require.NoError(t, log.Close())

	// The older build: its schema brings its table back, and it writes
	// the record's clients there.
	old, err := sqlite.OpenFile(ctx, path, sqlite.FileOptions{})
	require.NoError(t, err)
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS access_record_clients (seq BIGINT NOT NULL REFERENCES access_records(seq),
			client_id TEXT NOT NULL, PRIMARY KEY (client_id, seq)) WITHOUT ROWID`,
		`INSERT INTO access_records (id, at, user_id, actor_id, role, method, route, request_id, purpose, clinic_id, objects)
			VALUES ('r2', 2, 'u1', 'p1', 'provider', 'GET', 'GET /v1/providers/{providerId}/inbox', '', '', '', '{}')`,
		`INSERT INTO access_record_clients (seq, client_id) VALUES (2, 'k1'), (2, 'k2')`,
	} {
		_, err := old.ExecContext(ctx, stmt)
		require.NoError(t, err)
	}
	require.NoError(t, old.Close())

	log, err = OpenSQLiteAccessLog(ctx, path)
	require.NoError(t, err)
	defer func() { _ = log.Close() }()
	record(log, "r3", "k1")
	for client, want := range map[string][]string{"k1": {"r1", "r2", "r3"}, "k2": {"r2"}} {
		got, err := log.ForClient(ctx, client, 0, 10)
		require.NoError(t, err)
		assert.Equal(t, want, recordIDs(got), client)
	}
}

// Across many small index batches, paging through a client's records
// gives each once, in order, and none of another client's; Disclosures
// pages the same way.
func TestSQLiteAccessLogPagesThroughClientRanges(t *testing.T) {
	ctx := context.Background()
	log, err := openSQLiteAccessLog(ctx, filepath.Join(t.TempDir(), "access.db"), accessLogOptions{indexBatch: 3})
	require.NoError(t, err)
	defer func() { _ = log.Close() }()
	want := map[string][]string{}
	for i := range 40 {
		clients := []string{"k1"}
		switch {
		case i%5 == 0:
			clients = []string{"k2"}
		case i%3 == 0:
			clients = []string{"k1", "k2"}
		case i%4 == 0:
			clients = nil // an empty inbox page
		}
		id := fmt.Sprintf("r%02d", i)
		require.NoError(t, log.Record(ctx, AccessRecord{ID: id, At: time.Unix(int64(i), 0), UserID: "u1", ActorID: "a1",
			Role: "clinic_admin", Method: "GET", Route: "GET /v1/clients/{clientId}", ClientIDs: clients, Basis: BasisClinicRole}))
		for _, c := range clients {
			want[c] = append(want[c], id)
		}
		if i%7 == 0 {
			// A listing now and then: it indexes what waits, so ranges
			// of several sizes result.
			_, err := log.ForClient(ctx, "k1", 0, 1)
			require.NoError(t, err)
		}
	}
	for _, client := range []string{"k1", "k2"} {
		for _, list := range []func(after int64) ([]AccessRecord, error){
			func(after int64) ([]AccessRecord, error) { return log.ForClient(ctx, client, after, 4) },
			func(after int64) ([]AccessRecord, error) {
				return log.Disclosures(ctx, client, time.Unix(0, 0), after, 4)
			},
		} {
			var got []string
			var after int64
			for {
				page, err := list(after)
				require.NoError(t, err)
				got = append(got, recordIDs(page)...)
				if len(page) < 4 {
					break
				}
				after = page[len(page)-1].Seq
			}
			assert.Equal(t, want[client], got, client)
		}
	}
}

// The listing reads the index in its order: SQLite sorts nothing, however
// many records a client has.
func TestSQLiteAccessLogListingNeedsNoSort(t *testing.T) {
	ctx := context.Background()
	log, err := OpenSQLiteAccessLog(ctx, filepath.Join(t.TempDir(), "access.db"))
	require.NoError(t, err)
	defer func() { _ = log.Close() }()
	rows, err := log.db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+rangesQuery(""), "k1", "k1", 0, 0, 0, "k1", 10)
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	joined := strings.Join(plan, "\n")
	assert.NotContains(t, joined, "TEMP B-TREE", joined)
	assert.Contains(t, joined, "SEARCH c USING PRIMARY KEY (client_id=? AND first_seq>?)", joined)
	assert.Contains(t, joined, "SEARCH r USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)", joined)
}
