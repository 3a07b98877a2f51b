package api

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain"
)

func tokenFor(t *testing.T, tok *Tokens, role domain.Role, clinics ...string) string {
	t.Helper()
	raw, err := tok.Issue(Principal{UserID: "u-" + string(role), ActorID: "a-" + string(role), Role: role, Clinics: clinics})
	require.NoError(t, err)
	return "Bearer " + raw
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// concretePath turns a pattern's path into a request path.
func concretePath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = pathParam.ReplaceAllStringFunc(path, func(p string) string {
		return strings.Trim(strings.TrimSuffix(strings.Trim(p, "{}"), "..."), " ") + "-x"
	})
	return method, path
}

// TestEveryRouteRunsUnderItsPolicy walks every route the server registers:
// each has an entry in the policy table, a protected route answers 401
// without a token and 403 to a role it does not admit.
func TestEveryRouteRunsUnderItsPolicy(t *testing.T) {
	f := newFixture(t)
	tok := newTestTokens(t, f.clock)
	routes := f.server.Routes()
	require.NotEmpty(t, routes)
	table := DefaultPolicies()
	for _, r := range routes {
		t.Run(r.Pattern, func(t *testing.T) {
			require.True(t, r.HasPolicy, "route %s has no entry in DefaultPolicies: add one", r.Pattern)
			_, inTable := table[r.Pattern]
			require.True(t, inTable)
			if r.Policy.Public {
				return
			}
			require.NotEmpty(t, r.Policy.Roles, "a protected route names the roles it admits")
			method, path := concretePath(r.Pattern)
			requireProblem(t, f.do(method, path, nil), http.StatusUnauthorized, SlugUnauthorized)
			for _, role := range AllRoles() {
				if slices.Contains(r.Policy.Roles, role) {
					continue
				}
				rec := f.do(method, path, nil, "Authorization", tokenFor(t, tok, role))
				requireProblem(t, rec, http.StatusForbidden, SlugForbidden)
			}
		})
	}
}

// TestEveryPolicyHasARoute: a table entry without a route is a typo in
// one of them.
func TestEveryPolicyHasARoute(t *testing.T) {
	f := newFixture(t)
	registered := map[string]bool{}
	for _, r := range f.server.Routes() {
		registered[r.Pattern] = true
	}
	for pattern := range DefaultPolicies() {
		assert.True(t, registered[pattern], "policy %q names no registered route", pattern)
	}
}

func okHandler(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]string{"actor": p.ActorID})
}

func TestARouteWithoutAPolicyRefusesEveryone(t *testing.T) {
	clock := newTestClock()
	tok := newTestTokens(t, clock)
	rt := NewRouter(Policies{}, tok, nil)
	rt.HandleFunc("GET /v1/secret", okHandler)

	require.Len(t, rt.Routes(), 1)
	assert.False(t, rt.Routes()[0].HasPolicy)
	for name, auth := range map[string]string{
		"anonymous":    "",
		"system admin": tokenFor(t, tok, domain.RoleSystemAdmin),
		"provider":     tokenFor(t, tok, domain.RoleProvider),
	} {
		var rec = serve(t, rt, "GET", "/v1/secret", nil)
		if auth != "" {
			rec = serve(t, rt, "GET", "/v1/secret", nil, "Authorization", auth)
		}
		p := requireProblem(t, rec, http.StatusForbidden, SlugForbidden)
		assert.Equal(t, "no-policy", p.Code, name)
	}
}

func TestAnEmptyPolicyEntryRefusesEveryone(t *testing.T) {
	tok := newTestTokens(t, newTestClock())
	rt := NewRouter(Policies{"GET /v1/secret": {}}, tok, nil)
	rt.HandleFunc("GET /v1/secret", okHandler)
	rec := serve(t, rt, "GET", "/v1/secret", nil, "Authorization", tokenFor(t, tok, domain.RoleSystemAdmin))
	requireProblem(t, rec, http.StatusForbidden, SlugForbidden)
}

func TestRolePolicy(t *testing.T) {
	tok := newTestTokens(t, newTestClock())
	rt := NewRouter(Policies{"GET /v1/work": Roles(domain.RoleProvider, domain.RoleClinicAdmin)}, tok, nil)
	rt.HandleFunc("GET /v1/work", okHandler)

	rec := serve(t, rt, "GET", "/v1/work", nil, "Authorization", tokenFor(t, tok, domain.RoleProvider))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"actor":"a-provider"}`, rec.Body.String(), "the handler sees the principal")

	rec = serve(t, rt, "GET", "/v1/work", nil, "Authorization", tokenFor(t, tok, domain.RoleClient))
	p := requireProblem(t, rec, http.StatusForbidden, SlugForbidden)
	assert.Contains(t, p.Detail, "client")
}

func TestClinicTenantCheck(t *testing.T) {
	tok := newTestTokens(t, newTestClock())
	rt := NewRouter(Policies{
		"GET /v1/clinics/{clinicId}/sessions": Roles(domain.RoleProvider, domain.RoleSystemAdmin).WithTenant(ClinicInPath("clinicId")),
	}, tok, nil)
	rt.HandleFunc("GET /v1/clinics/{clinicId}/sessions", okHandler)

	provider := tokenFor(t, tok, domain.RoleProvider, "c1")
	assert.Equal(t, http.StatusOK, serve(t, rt, "GET", "/v1/clinics/c1/sessions", nil, "Authorization", provider).Code)
	p := requireProblem(t, serve(t, rt, "GET", "/v1/clinics/c2/sessions", nil, "Authorization", provider), http.StatusNotFound, SlugNotFound)
	assert.Equal(t, "clinic-not-found", p.Code, "another clinic is invisible, not forbidden")
	admin := tokenFor(t, tok, domain.RoleSystemAdmin)
	assert.Equal(t, http.StatusOK, serve(t, rt, "GET", "/v1/clinics/c2/sessions", nil, "Authorization", admin).Code)
}

// staffDirectory is a fixed StaffDirectory: clinic -> user -> roles.
type staffDirectory map[string]map[string][]domain.Role

func (s staffDirectory) ClinicRoles(_ context.Context, clinicID, userID string) ([]domain.Role, error) {
	users, ok := s[clinicID]
	if !ok {
		return nil, domain.NotFound("clinic-not-found", "no clinic")
	}
	return users[userID], nil
}

func TestClinicStaffTenantCheckReadsCurrentMemberships(t *testing.T) {
	tok := newTestTokens(t, newTestClock())
	dir := staffDirectory{
		"c1": {"a-provider": {domain.RoleProvider}, "a-clinic_admin": {domain.RoleProvider}},
		"c2": {},
	}
	pattern := "GET /v1/clinics/{clinicId}/staff"
	rt := NewRouter(Policies{pattern: Roles(domain.RoleProvider, domain.RoleClinicAdmin, domain.RoleSystemAdmin).
		WithTenant(ClinicStaffInPath(dir, "clinicId"))}, tok, nil)
	rt.HandleFunc(pattern, okHandler)

	// The token claims no clinics: the directory decides.
	provider := tokenFor(t, tok, domain.RoleProvider)
	assert.Equal(t, http.StatusOK, serve(t, rt, "GET", "/v1/clinics/c1/staff", nil, "Authorization", provider).Code)
	requireProblem(t, serve(t, rt, "GET", "/v1/clinics/c2/staff", nil, "Authorization", provider), http.StatusNotFound, SlugNotFound)
	requireProblem(t, serve(t, rt, "GET", "/v1/clinics/c9/staff", nil, "Authorization", provider), http.StatusNotFound, SlugNotFound)
	// Holding another role in the clinic is not holding this one.
	admin := tokenFor(t, tok, domain.RoleClinicAdmin, "c1")
	requireProblem(t, serve(t, rt, "GET", "/v1/clinics/c1/staff", nil, "Authorization", admin), http.StatusNotFound, SlugNotFound)
	assert.Equal(t, http.StatusOK, serve(t, rt, "GET", "/v1/clinics/c9/staff", nil, "Authorization", tokenFor(t, tok, domain.RoleSystemAdmin)).Code)
}

func TestHandleRefusesMalformedRoutes(t *testing.T) {
	rt := NewRouter(Policies{"GET /a": {Public: true, Roles: []domain.Role{domain.RoleClient}}}, nil, nil)
	assert.Panics(t, func() { rt.HandleFunc("/no-method", okHandler) })
	assert.Panics(t, func() { rt.HandleFunc("get /lower", okHandler) })
	assert.Panics(t, func() { rt.HandleFunc("GET /a", okHandler) }, "public and roles at once")
}

func TestUnmatchedRequestsGetProblems(t *testing.T) {
	f := newFixture(t)
	requireProblem(t, f.do("GET", "/v2/nothing", nil), http.StatusNotFound, SlugNotFound)
	rec := f.do("DELETE", "/healthz", nil)
	requireProblem(t, rec, http.StatusMethodNotAllowed, SlugMethodNotAllowed)
	assert.Contains(t, rec.Header().Get("Allow"), "GET")
	rec = f.do("GET", "/v1/../healthz", nil)
	assert.True(t, rec.Code >= 300 && rec.Code < 400, "non-canonical paths redirect: %d", rec.Code)
	assert.Equal(t, "/healthz", rec.Header().Get("Location"))
}
