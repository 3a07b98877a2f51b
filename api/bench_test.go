package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
)

// BenchmarkSignIn is one POST /v1/auth/token with the production argon2id
// parameters: the password check dominates.
func BenchmarkSignIn(b *testing.B) {
	reg, err := commands.NewRegistry()
	require.NoError(b, err)
	store := memory.New(eventstore.Options{Types: reg})
	hasher, err := identity.NewHasher(identity.DefaultArgon2Params())
	require.NoError(b, err)
	accounts := commands.NewAccounts(commands.Deps{Store: store, Codec: reg, Clock: time.Now,
		NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }}, hasher)
	_, err = accounts.RegisterAccount(context.Background(), commands.Meta{Actor: domain.Actor{ID: "op", Role: domain.RoleSystemAdmin}},
		commands.RegisterAccount{Username: "root", Password: alicePass, Role: domain.RoleSystemAdmin})
	require.NoError(b, err)
	srv, err := NewServer(Config{Store: store, Accounts: accounts, Refresh: NewMemoryRefreshTokens(time.Now),
		Logger: slog.New(slog.DiscardHandler), Tokens: TokenConfig{Secret: testSecret, Issuer: testIssuer, Audience: testAudience},
		LoginLimits: LoginLimits{PerUsername: rate.Inf, UserBurst: 1, PerAddress: rate.Inf, AddressBurst: 1, MaxKeys: 10}})
	require.NoError(b, err)
	body := `{"username":"root","password":"` + alicePass + `"}`
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/auth/token", strings.NewReader(body))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkVerifyAccessToken is the per-request cost of authentication.
func BenchmarkVerifyAccessToken(b *testing.B) {
	tok, err := NewTokens(TokenConfig{Secret: testSecret, Issuer: testIssuer, Audience: testAudience})
	require.NoError(b, err)
	raw, err := tok.Issue(alicePrincipal)
	require.NoError(b, err)
	b.ResetTimer()
	for b.Loop() {
		if _, err := tok.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}
