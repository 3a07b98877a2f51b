package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/eventstore/keyring"
	"github.com/careflow/careflow/eventstore/postgres/pgtest"
	"github.com/careflow/careflow/projections/pgsql"
)

// With a PostgreSQL store and no views_url the read models, the event
// bus, the reactions, the refresh tokens and the access log live in the
// store's database: a clinic created over the API shows in the clinic
// overview, its rows are in PostgreSQL tables, and `careflow projections`
// reads and rebuilds them, through the running service and without it.
func TestServeProjectsIntoPostgreSQL(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	t.Chdir(t.TempDir())
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.StoreURL = dbURL
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.AdminUsername, cfg.AdminPassword = "pg-admin", "a long enough password"
	_, kek, err := keyring.GenerateKEK(rand.Reader)
	require.NoError(t, err)
	cfg.KEK = kek
	t.Setenv("CAREFLOW_KEK", kek)
	require.NoError(t, cfg.Validate())
	views, err := cfg.viewsPath()
	require.NoError(t, err)
	require.Equal(t, dbURL, views, "the read models default to the store's database")
	out, err := runCLI(t, "migrate", "--store", dbURL)
	require.NoError(t, err, out)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("careflow serve log:\n%s", logs.String())
		}
	})
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)), ready) }()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("serve stopped at start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}

	send := func(token, method, path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, base+path, rd)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, raw
	}
	call := func(token, method, path string, body any, want int, out any) {
		t.Helper()
		status, raw := send(token, method, path, body)
		require.Equal(t, want, status, "%s %s: %s", method, path, raw)
		if out != nil {
			require.NoError(t, json.Unmarshal(raw, out), "%s", raw)
		}
	}
	signIn := func(user, password string) string {
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		call("", "POST", "/v1/auth/token", map[string]string{"username": user, "password": password}, http.StatusOK, &tok)
		require.NotEmpty(t, tok.AccessToken)
		return tok.AccessToken
	}
	var ids struct {
		IDs map[string]string `json:"ids"`
	}
	admin := signIn("pg-admin", "a long enough password")
	call(admin, "POST", "/v1/institutes", map[string]string{"name": "North"}, http.StatusCreated, &ids)
	institute := ids.IDs["instituteId"]
	call(admin, "POST", "/v1/institutes/"+institute+"/clinics", map[string]string{"name": "North Main"}, http.StatusCreated, &ids)
	clinic := ids.IDs["clinicId"]
	call(admin, "POST", "/v1/clinics/"+clinic+"/staff",
		map[string]string{"username": "clinicadmin", "password": "clinic admin password", "role": "clinic_admin"}, http.StatusCreated, nil)
	cadmin := signIn("clinicadmin", "clinic admin password")

	require.Eventually(t, func() bool {
		var report struct {
			ClinicName string `json:"clinicName"`
		}
		status, raw := send(cadmin, "GET", "/v1/clinics/"+clinic+"/overview", nil)
		return status == http.StatusOK && json.Unmarshal(raw, &report) == nil && report.ClinicName == "North Main"
	}, 30*time.Second, 20*time.Millisecond, "the clinic overview, projected into PostgreSQL, shows the clinic")

	// The rows are in PostgreSQL, in the store's database.
	pg, err := pgsql.Open(dbURL)
	require.NoError(t, err)
	defer pg.Close()
	clinicName := func() (generation int64, name string) {
		t.Helper()
		require.NoError(t, pg.QueryRow(`SELECT generation FROM projection_state WHERE name = ?`, "clinic_overview").Scan(&generation))
		require.NoError(t, pg.QueryRow(`SELECT name FROM co_clinics_g`+strconv.FormatInt(generation, 10)+` WHERE clinic_id = ?`, clinic).Scan(&name))
		return generation, name
	}
	gen, name := clinicName()
	assert.Equal(t, "North Main", name)

	// The event bus and the reactions keep their tables there too, and the
	// relay has published the log.
	var sideTables int
	require.NoError(t, pg.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()
		AND table_name IN ('reaction_timers', 'notifications', 'webhook_endpoints', 'bus_inbox', 'bus_relay_checkpoints')`).Scan(&sideTables))
	assert.Equal(t, 5, sideTables)
	require.Eventually(t, func() bool {
		var position int64
		err := pg.QueryRow(`SELECT position FROM bus_relay_checkpoints WHERE name = ?`, "relay").Scan(&position)
		return err == nil && position > 0
	}, 30*time.Second, 20*time.Millisecond, "the relay checkpoints in PostgreSQL")
	// So do the refresh tokens (one per sign-in) and the access log.
	var tokens int
	require.NoError(t, pg.QueryRow(`SELECT count(*) FROM refresh_tokens`).Scan(&tokens))
	assert.Equal(t, 2, tokens)
	var accessRecords int
	require.NoError(t, pg.QueryRow(`SELECT count(*) FROM access_records`).Scan(&accessRecords),
		"the access log's table is in PostgreSQL")
	for _, file := range []string{"careflow-reactions.db", "careflow-auth.db", "careflow-access.db", "careflow-views.db"} {
		assert.NoFileExists(t, filepath.Join(cfg.DataDir, file))
	}

	out, err = runCLI(t, "projections", "status", "--store", dbURL, "--json", "--log-level", "error")
	require.NoError(t, err, out)
	var rows []struct {
		Name       string `json:"name"`
		Generation int64  `json:"generation"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
	require.NotEmpty(t, rows)

	// While serve runs it holds the advisory lock: the tool asks it.
	out, err = runCLI(t, "projections", "rebuild", "clinic_overview", "--store", dbURL, "--log-level", "error")
	require.NoError(t, err, out)
	assert.Contains(t, out, "asking it to rebuild")
	assert.Contains(t, out, "rebuilt clinic_overview")

	cancel()
	require.NoError(t, <-done)

	// Stopped: the tool takes the lock and rebuilds itself.
	out, err = runCLI(t, "projections", "rebuild", "clinic_overview", "--store", dbURL, "--log-level", "error")
	require.NoError(t, err, out)
	assert.NotContains(t, out, "asking it to rebuild")
	assert.Contains(t, out, "rebuilt clinic_overview")
	rebuiltGen, name := clinicName()
	assert.Equal(t, gen+2, rebuiltGen, "each rebuild swapped in a new generation")
	assert.Equal(t, "North Main", name, "the rebuilt generation holds the same rows")
}

func TestViewsPathOnPostgreSQL(t *testing.T) {
	c := DefaultConfig()
	c.StoreURL = "postgres://careflow:secret@db.internal:5432/careflow"
	p, err := c.viewsPath()
	require.NoError(t, err)
	assert.Equal(t, c.StoreURL, p, "no views_url: the store's database")

	c.ViewsURL = "postgres://careflow@views.internal/careflow_views"
	p, err = c.viewsPath()
	require.NoError(t, err)
	assert.Equal(t, c.ViewsURL, p, "views_url may name another PostgreSQL database")

	c.ViewsURL = "sqlite:///var/lib/careflow/views.db"
	p, err = c.viewsPath()
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/careflow/views.db", p, "or a SQLite file beside a PostgreSQL store")

	assert.Equal(t, "postgres://careflow:xxxxx@db.internal:5432/careflow", describeLocation(c.StoreURL),
		"messages never show the password")
	assert.Equal(t, "/var/lib/careflow/views.db", describeLocation(p))
}
