package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/careflow/careflow/api"
	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/sqlite"
)

// ExampleNewServer wires the API the way careflow serve does: the SQLite
// event store, the refresh tokens in a file next to it, production
// password hashing, and the token secret from the configuration.
func ExampleNewServer() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "careflow-example")
	defer os.RemoveAll(dir)
	storePath := filepath.Join(dir, "careflow.db")

	types, _ := commands.NewRegistry()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: storePath}, eventstore.Options{Types: types})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	refresh, err := api.OpenSQLiteRefreshTokens(ctx, filepath.Join(filepath.Dir(storePath), "careflow-auth.db"), time.Now)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer refresh.Close()
	hasher, _ := identity.NewHasher(identity.DefaultArgon2Params())
	deps := commands.Deps{Store: store, Codec: types, Clock: time.Now, NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }}

	srv, err := api.NewServer(api.Config{
		Store:    store,
		Logger:   slog.New(slog.DiscardHandler),
		Accounts: commands.NewAccounts(deps, hasher),
		Refresh:  refresh,
		Tokens: api.TokenConfig{
			Secret:   []byte("a secret of at least 32 bytes from the config"),
			Issuer:   "https://careflow.example",
			Audience: "careflow",
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	fmt.Println(rec.Code == http.StatusOK)
	// Output: true
}
