package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/memory"
)

// BenchmarkDirectoryClinics measures the membership lookup of a sign-in
// once the directory has caught up: 200 clinics, the user in each.
func BenchmarkDirectoryClinics(b *testing.B) {
	ctx := context.Background()
	reg, err := commands.NewRegistry()
	require.NoError(b, err)
	store := memory.New(eventstore.Options{Types: reg})
	b.Cleanup(func() { _ = store.Close() })
	org := commands.NewOrganization(commands.Deps{Store: store, Codec: reg, Clock: newTestClock().Now,
		NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }})
	root := commands.Meta{Actor: domain.Actor{ID: "root", Role: domain.RoleSystemAdmin}}
	inst, err := org.CreateInstitute(ctx, root, commands.CreateInstitute{Name: "North"})
	require.NoError(b, err)
	for range 200 {
		c, err := org.CreateClinic(ctx, root, commands.CreateClinic{InstituteID: inst.Stream.ID, Name: "Clinic"})
		require.NoError(b, err)
		_, err = org.AddStaff(ctx, root, commands.AddStaff{ClinicID: c.Stream.ID, UserID: "u1", Role: domain.RoleAuditor})
		require.NoError(b, err)
	}
	dir := NewDirectory(store, reg)
	actor := domain.Actor{ID: "u1", Role: domain.RoleAuditor}
	_, err = dir.Clinics(ctx, actor)
	require.NoError(b, err)
	b.ResetTimer()
	for b.Loop() {
		if _, err := dir.Clinics(ctx, actor); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateProvider measures POST /v1/clinics/{id}/providers through
// the whole server: three streams written and one account registered (with
// the tests' cheap argon2 parameters, so the hash is not what is measured).
func BenchmarkCreateProvider(b *testing.B) {
	ctx := context.Background()
	clock := newTestClock()
	reg, err := commands.NewRegistry()
	require.NoError(b, err)
	store := memory.New(eventstore.Options{Types: reg})
	b.Cleanup(func() { _ = store.Close() })
	hasher, err := identity.NewHasher(identity.TestArgon2Params())
	require.NoError(b, err)
	deps := commands.Deps{Store: store, Codec: reg, Clock: clock.Now, NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }}
	org := commands.NewOrganization(deps)
	root := commands.Meta{Actor: domain.Actor{ID: "root", Role: domain.RoleSystemAdmin}}
	inst, err := org.CreateInstitute(ctx, root, commands.CreateInstitute{Name: "North"})
	require.NoError(b, err)
	clinic, err := org.CreateClinic(ctx, root, commands.CreateClinic{InstituteID: inst.Stream.ID, Name: "One"})
	require.NoError(b, err)
	_, err = org.AddStaff(ctx, root, commands.AddStaff{ClinicID: clinic.Stream.ID, UserID: "admin", Role: domain.RoleClinicAdmin})
	require.NoError(b, err)
	srv, err := NewServer(Config{Store: store, Accounts: commands.NewAccounts(deps, hasher), Refresh: NewMemoryRefreshTokens(clock.Now),
		Organization: org, Tokens: testTokenConfig(clock.Now), Clock: clock.Now})
	require.NoError(b, err)
	tokens, err := NewTokens(testTokenConfig(clock.Now))
	require.NoError(b, err)
	token, err := tokens.Issue(Principal{UserID: "admin", ActorID: "admin", Role: domain.RoleClinicAdmin, Clinics: []string{clinic.Stream.ID}})
	require.NoError(b, err)

	path := "/v1/clinics/" + clinic.Stream.ID + "/providers"
	i := 0
	for b.Loop() {
		i++
		body, err := json.Marshal(providerBody("Dr Bench", fmt.Sprintf("bench%d", i)))
		require.NoError(b, err)
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	}
}
