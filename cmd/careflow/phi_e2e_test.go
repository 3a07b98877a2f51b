package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/api"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/keyring"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/projections/audit"
	"github.com/careflow/careflow/projections/views"
)

// phiCanaries are written through the API into every kind of PHI field; no
// file the service keeps may hold any of them in clear.
var phiCanaries = map[string]string{
	"name":        "CanaryName-Quetzal-7731",
	"title":       "CanaryTitle-Pangolin-4417",
	"description": "CanaryDescription-Narwhal-9902",
	"feedback":    "CanaryFeedback-Axolotl-1184",
	"comment":     "CanaryComment-Okapi-5526",
	"message":     "CanaryMessage-Tapir-3390",
	"discussion":  "CanaryDiscussion-Dugong-6021",
	"note":        "CanaryNote-Kinkajou-2208",
	"close":       "CanaryCloseReason-Binturong-8843",
}

// TestNoPHIInClearOnDiskAndErasure drives a care loop with canary strings in
// every PHI field through the real binary, then reads every file in the data
// directory (event store, read models, access log, tokens, reactions, keys,
// WAL files) and finds none of them. Then it forgets the client: the views
// and the event history read as redacted, another client's stay readable,
// and the audit timeline still lists every event.
func TestNoPHIInClearOnDiskAndErasure(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the careflow binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eOverallBound)
	defer cancel()
	bin := buildCareflow(t, ctx)
	dir := t.TempDir()
	proc := startServe(t, ctx, bin, dir)
	run := writePHICanaries(t, newE2EClient(t, ctx, proc.base))
	proc.stop()

	assertNoCanaryInFiles(t, dir, 5) // the store, read models, keys, access log and reactions at least

	proc = startServe(t, ctx, bin, dir)
	forgetAndCheck(t, newE2EClient(t, ctx, proc.base), run)
	proc.stop()
}

// canaryRun names what writePHICanaries made.
type canaryRun struct {
	client, other         string // Kim (all canaries) and Robin
	session, otherSession string
}

// writePHICanaries drives a care loop with a canary in every PHI field
// and checks the service shows them to the care team.
func writePHICanaries(t *testing.T, c *e2eClient) canaryRun {
	t.Helper()
	admin := c.signIn(e2eAdminUser, e2eAdminPassword)
	inst := c.command(http.StatusCreated, nil, admin, "POST", "/v1/institutes", map[string]string{"name": "North"})
	clinic := c.command(http.StatusCreated, nil, admin, "POST", "/v1/institutes/"+inst.IDs["instituteId"]+"/clinics",
		map[string]string{"name": "North Main"}).IDs["clinicId"]
	c.command(http.StatusCreated, nil, admin, "POST", "/v1/clinics/"+clinic+"/staff",
		map[string]string{"username": "clinicadmin", "password": e2eClinicAdminPassword, "role": "clinic_admin"})
	clinicAdmin := c.signIn("clinicadmin", e2eClinicAdminPassword)
	provider := c.command(http.StatusCreated, nil, clinicAdmin, "POST", "/v1/clinics/"+clinic+"/providers",
		map[string]string{"displayName": "Dr Ada", "username": "ada", "password": e2eProviderPassword}).IDs["providerId"]
	client := c.command(http.StatusCreated, nil, clinicAdmin, "POST", "/v1/clinics/"+clinic+"/clients",
		map[string]any{"displayName": phiCanaries["name"], "username": "kim", "password": e2eClientPassword, "careTeam": []string{provider}}).IDs["clientId"]
	other := c.command(http.StatusCreated, nil, clinicAdmin, "POST", "/v1/clinics/"+clinic+"/clients",
		map[string]any{"displayName": "Robin", "username": "robin", "password": e2eClientPassword, "careTeam": []string{provider}}).IDs["clientId"]
	prov := c.signIn("ada", e2eProviderPassword)

	var scheduled struct {
		api.CommandResponse
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	c.command(http.StatusCreated, &scheduled, prov, "POST", "/v1/sessions", map[string]any{
		"clientId": client, "title": phiCanaries["title"], "description": phiCanaries["description"],
		"startsAt": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339), "bookIds": []string{books.PHQ9ID},
	})
	session := scheduled.Sessions[0].ID
	otherSession := c.command(http.StatusCreated, nil, prov, "POST", "/v1/sessions", map[string]any{
		"clientId": other, "title": "Robin's week", "startsAt": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339),
	}).IDs["sessionId"]

	kim := c.signIn("kim", e2eClientPassword)
	var mine views.ClientSessionList
	c.eventually("the client sees the session", func() error {
		res, err := c.send(kim, "GET", "/v1/clients/"+client+"/sessions", nil)
		if err != nil || res.Status != http.StatusOK {
			return notYet("%v %d", err, res.Status)
		}
		if err := decodeInto(res.Body, &mine); err != nil {
			return err
		}
		if len(mine.Active) == 0 {
			return notYet("the time reactor has not activated the session yet")
		}
		return nil
	})
	require.Len(t, mine.Active, 1)
	require.Len(t, mine.Active[0].Assignments, 1)
	assignment := mine.Active[0].Assignments[0].ID
	c.command(http.StatusOK, nil, kim, "POST", "/v1/assignments/"+assignment+"/start", nil)
	c.command(http.StatusOK, nil, kim, "POST", "/v1/assignments/"+assignment+"/responses",
		map[string]any{"answers": walkthroughAnswers()})
	feedback := c.command(http.StatusCreated, nil, prov, "POST", "/v1/assignments/"+assignment+"/feedback",
		map[string]string{"text": phiCanaries["feedback"]}).IDs["feedbackId"]
	c.command(http.StatusCreated, nil, kim, "POST", "/v1/assignments/"+assignment+"/comments",
		map[string]string{"feedbackId": feedback, "text": phiCanaries["comment"]})
	c.command(http.StatusCreated, nil, kim, "POST", "/v1/sessions/"+session+"/messages", map[string]string{"text": phiCanaries["message"]})
	c.command(http.StatusCreated, nil, prov, "POST", "/v1/sessions/"+session+"/discussion", map[string]string{"text": phiCanaries["discussion"]})
	c.command(http.StatusCreated, nil, prov, "POST", "/v1/sessions/"+session+"/notes", map[string]string{"text": phiCanaries["note"]})
	closed := c.command(http.StatusOK, nil, prov, "POST", "/v1/sessions/"+session+"/close", map[string]string{"reason": phiCanaries["close"]})

	// The service shows the PHI to those who may see it.
	var detail views.SessionDetail
	c.call(http.StatusOK, &detail, prov, "GET", "/v1/sessions/"+session, nil,
		api.HeaderMinPosition, strconv.FormatInt(closed.Position, 10))
	assert.Equal(t, phiCanaries["title"], detail.Title)
	assert.Equal(t, phiCanaries["close"], detail.CloseReason)

	return canaryRun{client: client, other: other, session: session, otherSession: otherSession}
}

// assertNoCanaryInFiles reads every file below dir (WAL files included)
// and finds no canary in clear; at least min files must have been read.
func assertNoCanaryInFiles(t *testing.T, dir string, min int) {
	t.Helper()
	files := 0
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for field, canary := range phiCanaries {
			assert.False(t, bytes.Contains(raw, []byte(canary)), "%s holds the %s in clear", filepath.Base(path), field)
		}
		return nil
	}))
	assert.GreaterOrEqual(t, files, min, "files read")
}

// forgetAndCheck forgets run's client and checks the erasure: redacted
// views and history, other clients untouched, the timeline kept.
func forgetAndCheck(t *testing.T, c *e2eClient, run canaryRun) {
	t.Helper()
	client, session, otherSession := run.client, run.session, run.otherSession
	admin := c.signIn(e2eAdminUser, e2eAdminPassword)
	prov := c.signIn("ada", e2eProviderPassword)
	clinicAdmin := c.signIn("clinicadmin", e2eClinicAdminPassword)
	var detail views.SessionDetail
	c.call(http.StatusUnprocessableEntity, nil, admin, "POST", "/v1/clients/"+client+"/forget", map[string]string{"reason": " "})
	c.call(http.StatusForbidden, nil, prov, "POST", "/v1/clients/"+client+"/forget", map[string]string{"reason": "no"})
	forgot := c.command(http.StatusOK, nil, admin, "POST", "/v1/clients/"+client+"/forget",
		map[string]string{"reason": "erasure request 2026-118"})

	c.call(http.StatusOK, &detail, prov, "GET", "/v1/sessions/"+session, nil,
		api.HeaderMinPosition, strconv.FormatInt(forgot.Position, 10))
	assert.Equal(t, eventstore.Redacted, detail.Title, "the read model's PHI is gone with the key")
	assert.Equal(t, eventstore.Redacted, detail.CloseReason)
	var robins views.SessionDetail
	c.call(http.StatusOK, &robins, prov, "GET", "/v1/sessions/"+otherSession, nil)
	assert.Equal(t, "Robin's week", robins.Title, "other clients are untouched")

	// Nothing new is recorded for a forgotten client.
	res, err := c.send(prov, "POST", "/v1/sessions/"+session+"/notes", map[string]string{"text": "after"})
	require.NoError(t, err)
	assert.Contains(t, []int{http.StatusGone, http.StatusConflict}, res.Status, "%s", res.Body)

	// The audit timeline still tells who did what and when, ending with
	// the erasure.
	var timeline api.PageResponse[audit.Entry]
	c.call(http.StatusOK, &timeline, clinicAdmin, "GET", "/v1/audit/clients/"+client+"/timeline?limit=200", nil,
		api.HeaderMinPosition, strconv.FormatInt(forgot.Position, 10))
	require.NotEmpty(t, timeline.Items)
	assert.GreaterOrEqual(t, len(timeline.Items), 10)
	assert.Equal(t, "client.forgotten", timeline.Items[len(timeline.Items)-1].Type)

	// The session as of before the erasure replays too, redacted.
	var then audit.SessionSnapshot
	c.call(http.StatusOK, &then, clinicAdmin, "GET", "/v1/sessions/"+session+"?asOf="+asOf(time.Now().UTC()), nil)
	assert.Equal(t, eventstore.Redacted, then.Session.Title)
}

func decodeInto(body []byte, v any) error { return json.Unmarshal(body, v) }

// TestNoPHIInClearInPostgreSQL is the same on a PostgreSQL store: after the
// care loop every table of the database (events, chain, read models, keys,
// access log, tokens, reactions) is read row by row as text, bytea columns
// as hex, and holds no canary; the erasure works the same.
func TestNoPHIInClearInPostgreSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the careflow binary")
	}
	dbURL := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), e2eOverallBound)
	defer cancel()
	bin := buildCareflow(t, ctx)
	dir := t.TempDir()
	_, kek, err := keyring.GenerateKEK(rand.Reader)
	require.NoError(t, err)
	proc := startServeOn(t, ctx, bin, dir, dbURL, "CAREFLOW_KEK="+kek)
	run := writePHICanaries(t, newE2EClient(t, ctx, proc.base))
	proc.stop()

	assertNoCanaryInFiles(t, dir, 0)
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tables, err := queryStrings(ctx, conn,
		`SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables
		 WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(tables), 10, "events, chain, keys, read models, side stores")
	rows := 0
	for _, table := range tables {
		texts, err := queryStrings(ctx, conn, `SELECT t::text FROM `+table+` t`)
		require.NoError(t, err, table)
		for _, text := range texts {
			rows++
			for field, canary := range phiCanaries {
				assert.NotContains(t, text, canary, "%s holds the %s in clear", table, field)
				assert.NotContains(t, text, hex.EncodeToString([]byte(canary)), "%s holds the %s in clear (bytea)", table, field)
			}
		}
	}
	assert.Greater(t, rows, 50, "the tables were read")

	proc = startServeOn(t, ctx, bin, dir, dbURL, "CAREFLOW_KEK="+kek)
	forgetAndCheck(t, newE2EClient(t, ctx, proc.base), run)
	proc.stop()
}

// queryStrings runs a query of one text column and collects it.
func queryStrings(ctx context.Context, conn *pgx.Conn, sql string) ([]string, error) {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
