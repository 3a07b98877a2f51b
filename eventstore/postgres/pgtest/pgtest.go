// Package pgtest gives tests a throw-away PostgreSQL database.
//
// The server is the one in CAREFLOW_TEST_POSTGRES_URL or, when that is
// empty, postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable. Each
// NewDatabase creates a database named careflow_test_<random> on it and
// drops it when the test ends. Without a reachable server the test is
// skipped, except under CI=true, where it fails: CI must not pass by
// skipping the PostgreSQL tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// URLEnv names the variable holding the test server's URL.
const URLEnv = "CAREFLOW_TEST_POSTGRES_URL"

// DefaultURL is the server tried when URLEnv is empty.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// The server is probed once per test binary: a missing server should cost
// one connection timeout, not one per test.
var probe = sync.OnceValues(func() (string, error) {
	server := os.Getenv(URLEnv)
	if server == "" {
		server = DefaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return server, err
	}
	defer conn.Close(ctx)
	return server, conn.Ping(ctx)
})

// ServerURL is the URL of the test server, or a skip (a failure under
// CI=true) when none is reachable.
func ServerURL(t testing.TB) string {
	t.Helper()
	server, err := probe()
	if err != nil {
		msg := fmt.Sprintf("pgtest: no PostgreSQL server at %s (set %s): %v", redact(server), URLEnv, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return server
}

// NewDatabase creates an empty database for this test and returns its URL.
// The database is dropped (with any connections still open to it) when the
// test ends.
func NewDatabase(t testing.TB) (dbURL string) {
	t.Helper()
	server := ServerURL(t)
	name := "careflow_test_" + randomSuffix(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", redact(server), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() { drop(t, server, name) })
	return withDatabase(t, server, name)
}

func drop(t testing.TB, server, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Errorf("pgtest: drop database %s: %v", name, err)
		return
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Errorf("pgtest: drop database %s: %v", name, err)
	}
}

// withDatabase is server's URL pointing at database name instead.
func withDatabase(t testing.TB, server, name string) string {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("pgtest: %s must be a postgres:// URL", URLEnv)
	}
	u.Path = "/" + name
	return u.String()
}

func randomSuffix(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("pgtest: random name: %v", err)
	}
	return hex.EncodeToString(b)
}

// redact hides a password in a URL before it is printed.
func redact(server string) string {
	u, err := url.Parse(server)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
