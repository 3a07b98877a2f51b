package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
)

// Policy says who may call a route. It is either Public (no
// authentication at all) or lists the Roles that may call it, with an
// optional Tenant check run on the verified principal before the handler.
// The zero Policy admits nobody.
type Policy struct {
	Public bool
	Roles  []domain.Role
	Tenant TenantCheck
}

// TenantCheck refuses a principal the resource a request names (a clinic
// id in the path, a client's own record...). It returns a domain or API
// error: NotFound for things outside the caller's clinics, so their
// existence is not revealed.
type TenantCheck func(r *http.Request, p Principal) error

// Public admits everyone without a token.
func Public() Policy { return Policy{Public: true} }

// Roles admits authenticated principals in one of roles.
func Roles(roles ...domain.Role) Policy { return Policy{Roles: roles} }

// WithTenant adds a tenant check to a role policy.
func (p Policy) WithTenant(check TenantCheck) Policy {
	p.Tenant = check
	return p
}

// admitsNobody reports whether the policy lets no request through.
func (p Policy) admitsNobody() bool { return !p.Public && len(p.Roles) == 0 }

// AllRoles is every role: any authenticated principal.
func AllRoles() []domain.Role {
	return []domain.Role{domain.RoleSystemAdmin, domain.RoleInstituteAdmin, domain.RoleClinicAdmin,
		domain.RoleProvider, domain.RoleAuditor, domain.RoleClient}
}

// ClinicInPath is the tenant check of routes under a clinic: the path
// value named param must be one of the principal's clinics. A system admin
// passes everywhere. Anyone else gets clinic-not-found.
func ClinicInPath(param string) TenantCheck {
	return func(r *http.Request, p Principal) error {
		id := r.PathValue(param)
		if p.Role == domain.RoleSystemAdmin || (id != "" && p.InClinic(id)) {
			return nil
		}
		return domain.NotFound("clinic-not-found", "no clinic %q", id)
	}
}

// ClinicStaffInPath is the tenant check of staff routes under a clinic
// when memberships must be current rather than as of the token: the
// principal must hold its role in the clinic the path names, read from the
// clinic stream through staff (institute admins of the clinic's institute
// included). A system admin passes everywhere; anyone else gets
// clinic-not-found, as for an unknown clinic.
func ClinicStaffInPath(staff commands.StaffDirectory, param string) TenantCheck {
	return func(r *http.Request, p Principal) error {
		if p.Role == domain.RoleSystemAdmin {
			return nil
		}
		id := r.PathValue(param)
		notFound := domain.NotFound("clinic-not-found", "no clinic %q", id)
		if id == "" {
			return notFound
		}
		roles, err := staff.ClinicRoles(r.Context(), id, p.ActorID)
		if err != nil {
			if domain.KindOf(err) == domain.KindNotFound {
				return notFound
			}
			return err
		}
		if !slices.Contains(roles, p.Role) {
			return notFound
		}
		return nil
	}
}

// Policies maps a route pattern ("METHOD /path/{param}") to its policy.
type Policies map[string]Policy

// DefaultPolicies is THE policy table: every route careflow serves has
// its entry here, and nowhere else. A route registered without an entry
// refuses every request (see Router.Handle).
func DefaultPolicies() Policies {
	return Policies{
		// Operations and documentation.
		"GET /healthz":      Public(),
		"GET /readyz":       Public(),
		"GET /openapi.yaml": Public(),
		// Prometheus scrapes: counts and latencies by route pattern, append
		// rate, projection lag; no ids, no PHI.
		"GET /metrics": Public(),

		// Authentication: these routes are how a caller gets a token.
		"POST /v1/auth/token":   Public(),
		"POST /v1/auth/refresh": Public(),
		"POST /v1/auth/revoke":  Public(),

		// Any signed-in principal: who am I, change my password (the
		// command checks the current password, or a system admin resets).
		"GET /v1/auth/me":        Roles(AllRoles()...),
		"POST /v1/auth/password": Roles(AllRoles()...),

		// Ending a user's sessions everywhere (sessions.go): refresh tokens
		// revoked, access tokens refused at once. System admins only: a
		// user id does not say which clinics the user belongs to.
		"POST /v1/users/{userId}/sessions/end": Roles(domain.RoleSystemAdmin),

		// Account administration.
		"POST /v1/accounts":                    Roles(domain.RoleSystemAdmin),
		"POST /v1/accounts/{username}/disable": Roles(domain.RoleSystemAdmin),

		// Organization, books and design plans (api/org_*.go). Routes under
		// a clinic check the token's clinics here (another clinic is 404);
		// routes naming an institute, provider or client leave the tenant
		// check to the command, which reads the streams: an institute admin
		// only their institute, a clinic admin only their clinic's clients,
		// a provider only clients on their care team (403 within the
		// clinic, 404 outside it). Book reads are scoped to the caller's
		// current clinics by the handler (directory.go).
		"POST /v1/institutes":                                       Roles(domain.RoleSystemAdmin),
		"POST /v1/institutes/{instituteId}/admins":                  Roles(domain.RoleSystemAdmin),
		"DELETE /v1/institutes/{instituteId}/admins/{userId}":       Roles(domain.RoleSystemAdmin),
		"POST /v1/institutes/{instituteId}/clinics":                 Roles(domain.RoleSystemAdmin, domain.RoleInstituteAdmin),
		"POST /v1/clinics/{clinicId}/staff":                         Roles(clinicManagers()...).WithTenant(ClinicInPath("clinicId")),
		"PUT /v1/clinics/{clinicId}/staff/{userId}/roles/{role}":    Roles(clinicManagers()...).WithTenant(ClinicInPath("clinicId")),
		"DELETE /v1/clinics/{clinicId}/staff/{userId}/roles/{role}": Roles(clinicManagers()...).WithTenant(ClinicInPath("clinicId")),
		"POST /v1/clinics/{clinicId}/providers":                     Roles(clinicManagers()...).WithTenant(ClinicInPath("clinicId")),
		"PUT /v1/clinics/{clinicId}/providers/{providerId}":         Roles(clinicManagers()...).WithTenant(ClinicInPath("clinicId")),
		"DELETE /v1/clinics/{clinicId}/providers/{providerId}":      Roles(clinicManagersAndProviders()...).WithTenant(ClinicInPath("clinicId")),
		"POST /v1/providers/{providerId}/deactivate":                Roles(domain.RoleSystemAdmin),
		"POST /v1/providers/{providerId}/reactivate":                Roles(domain.RoleSystemAdmin),
		"POST /v1/clinics/{clinicId}/clients":                       Roles(domain.RoleClinicAdmin, domain.RoleProvider).WithTenant(ClinicInPath("clinicId")),
		"PUT /v1/clients/{clientId}/care-team":                      Roles(domain.RoleClinicAdmin, domain.RoleProvider),
		"POST /v1/clients/{clientId}/deactivate":                    Roles(domain.RoleClinicAdmin, domain.RoleProvider),
		"POST /v1/clients/{clientId}/forget":                        Roles(domain.RoleSystemAdmin, domain.RoleInstituteAdmin),
		"POST /v1/clients/{clientId}/reactivate":                    Roles(domain.RoleClinicAdmin, domain.RoleProvider),
		"GET /v1/books":                                             Roles(clinicReaders()...),
		"GET /v1/books/{bookId}":                                    Roles(clinicReaders()...),
		"POST /v1/clinics/{clinicId}/books":                         Roles(domain.RoleClinicAdmin, domain.RoleProvider).WithTenant(ClinicInPath("clinicId")),
		"POST /v1/clinics/{clinicId}/books/{bookId}/versions":       Roles(domain.RoleClinicAdmin, domain.RoleProvider).WithTenant(ClinicInPath("clinicId")),
		"POST /v1/clinics/{clinicId}/design-plans":                  Roles(domain.RoleClinicAdmin, domain.RoleProvider).WithTenant(ClinicInPath("clinicId")),
		"GET /v1/clinics/{clinicId}/design-plans/{planId}":          Roles(clinicReaders()...).WithTenant(ClinicInPath("clinicId")),

		// Care (api/care_*.go, view_routes.go, audit_routes.go,
		// access_routes.go). The roles are checked here; which sessions,
		// clients and clinics a principal may touch is checked per object
		// against current memberships (care_access.go for reads, the
		// commands for writes): a client only their own, a provider only
		// clients on their care team, admins and auditors only their
		// clinic. Discussion and notes are the care team's alone.
		"POST /v1/sessions":                             Roles(domain.RoleProvider),
		"GET /v1/sessions/{sessionId}":                  Roles(domain.RoleProvider, domain.RoleClient, domain.RoleClinicAdmin, domain.RoleAuditor, domain.RoleInstituteAdmin, domain.RoleSystemAdmin),
		"POST /v1/sessions/{sessionId}/assignments":     Roles(domain.RoleProvider),
		"POST /v1/sessions/{sessionId}/close":           Roles(domain.RoleProvider),
		"POST /v1/sessions/{sessionId}/cancel":          Roles(domain.RoleProvider),
		"POST /v1/sessions/{sessionId}/activate":        Roles(domain.RoleProvider),
		"POST /v1/sessions/{sessionId}/reschedule":      Roles(domain.RoleProvider),
		"POST /v1/sessions/{sessionId}/messages":        Roles(domain.RoleProvider, domain.RoleClient),
		"GET /v1/sessions/{sessionId}/messages":         Roles(careTeamReaders()...),
		"POST /v1/sessions/{sessionId}/discussion":      Roles(domain.RoleProvider),
		"GET /v1/sessions/{sessionId}/discussion":       Roles(domain.RoleProvider),
		"POST /v1/sessions/{sessionId}/notes":           Roles(domain.RoleProvider),
		"GET /v1/sessions/{sessionId}/notes":            Roles(domain.RoleProvider),
		"GET /v1/assignments/{assignmentId}":            Roles(careTeamReaders()...),
		"POST /v1/assignments/{assignmentId}/start":     Roles(domain.RoleClient),
		"POST /v1/assignments/{assignmentId}/responses": Roles(domain.RoleClient),
		"POST /v1/assignments/{assignmentId}/feedback":  Roles(domain.RoleProvider),
		"POST /v1/assignments/{assignmentId}/comments":  Roles(domain.RoleProvider, domain.RoleClient),
		"GET /v1/assignments/{assignmentId}/comments":   Roles(careTeamReaders()...),
		"GET /v1/clients/{clientId}/sessions":           Roles(careTeamReaders()...),
		"GET /v1/clients/{clientId}/scores":             Roles(careTeamReaders()...),
		"GET /v1/providers/{providerId}/inbox":          Roles(domain.RoleProvider),
		"GET /v1/clinics/{clinicId}/overview":           Roles(domain.RoleClinicAdmin, domain.RoleInstituteAdmin, domain.RoleAuditor),
		"GET /v1/audit/clients/{clientId}/timeline":     Roles(domain.RoleAuditor, domain.RoleClinicAdmin),
		"GET /v1/audit/streams/{streamId}":              Roles(domain.RoleAuditor, domain.RoleClinicAdmin),
		"GET /v1/clients/{clientId}/access-log":         Roles(domain.RoleAuditor, domain.RoleClinicAdmin),

		// Break-glass and the accounting of disclosures (emergency.go). An
		// admin of the client's clinic (or its institute, or a system
		// admin) grants themself time-limited read access, with a reason;
		// the admin roles above (careTeamReaders, GET session) read the
		// care team's records only under a live grant (care_access.go).
		// The accounting lists reads by anyone outside the care team: the
		// client reads their own (HIPAA gives them that right), auditors
		// and clinic admins those of their clinic, system admins any.
		"POST /v1/clients/{clientId}/emergency-access": Roles(emergencyRoles()...),
		"GET /v1/clients/{clientId}/disclosures":       Roles(domain.RoleAuditor, domain.RoleClinicAdmin, domain.RoleSystemAdmin, domain.RoleClient),

		// Notifications and webhooks (api/notify_routes.go,
		// webhook_routes.go). Notifications are the caller's own (another
		// recipient's is 404). Webhooks: the token's clinics here; the
		// reactions check current admin memberships again, the handler an
		// auditor's, who may only read.
		"GET /v1/me/notifications":                                 Roles(AllRoles()...),
		"POST /v1/me/notifications/{notificationId}/read":          Roles(AllRoles()...),
		"POST /v1/me/notifications/read":                           Roles(AllRoles()...),
		"POST /v1/clinics/{clinicId}/webhooks":                     Roles(clinicManagers()...).WithTenant(ClinicInPath("clinicId")),
		"GET /v1/clinics/{clinicId}/webhooks":                      Roles(webhookReaders()...).WithTenant(ClinicInPath("clinicId")),
		"GET /v1/clinics/{clinicId}/webhooks/{webhookId}":          Roles(webhookReaders()...).WithTenant(ClinicInPath("clinicId")),
		"GET /v1/clinics/{clinicId}/webhooks/{webhookId}/attempts": Roles(webhookReaders()...).WithTenant(ClinicInPath("clinicId")),
		"POST /v1/clinics/{clinicId}/webhooks/{webhookId}/enable":  Roles(clinicManagers()...).WithTenant(ClinicInPath("clinicId")),
		"DELETE /v1/clinics/{clinicId}/webhooks/{webhookId}":       Roles(clinicManagers()...).WithTenant(ClinicInPath("clinicId")),
	}
}

// careTeamReaders may call the reads of a client's record made by the
// care team and the client; the admin roles only under a live emergency
// access grant (see emergencyRoutes).
func careTeamReaders() []domain.Role {
	return append([]domain.Role{domain.RoleProvider, domain.RoleClient}, emergencyRoles()...)
}

// Route is one registered route and the policy it runs under.
type Route struct {
	Pattern string
	Policy  Policy
	// HasPolicy is false when the table has no entry: the route refuses
	// everything.
	HasPolicy bool
}

// Router wraps http.ServeMux so that no route can be served without going
// through its policy: Handle looks the pattern up in the policy table and
// wraps the handler with authentication, the role check and the tenant
// check. A pattern missing from the table is still registered (so it does
// not fall through to another route) but answers 403 to everyone.
type Router struct {
	mux      *http.ServeMux
	policies Policies
	tokens   *Tokens
	log      *slog.Logger
	routes   []Route
	// sessions, when set, refuses tokens issued before their user's
	// sessions were ended (sessions.go).
	sessions *sessionGate
	// external, when set, verifies the tokens of an external OpenID
	// Connect issuer (oidc.go).
	external *externalTokens
}

// NewRouter returns a router enforcing policies, verifying bearer tokens
// with tokens.
func NewRouter(policies Policies, tokens *Tokens, log *slog.Logger) *Router {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{mux: http.NewServeMux(), policies: policies, tokens: tokens, log: log}
}

// Handle registers h for pattern under the pattern's policy. The pattern
// must name a method. A malformed pattern or policy panics, as
// http.ServeMux does: it is a programming error found at start-up.
func (rt *Router) Handle(pattern string, h http.Handler) {
	method, _, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || strings.ToUpper(method) != method {
		panic(fmt.Sprintf("api: route %q must start with a method, e.g. \"GET /path\"", pattern))
	}
	p, has := rt.policies[pattern]
	if has && p.Public && (len(p.Roles) > 0 || p.Tenant != nil) {
		panic(fmt.Sprintf("api: policy of %q is public and also names roles or a tenant check", pattern))
	}
	if !has {
		rt.log.Error("route has no policy and refuses every request", "route", pattern)
	}
	rt.routes = append(rt.routes, Route{Pattern: pattern, Policy: p, HasPolicy: has})
	rt.mux.Handle(pattern, rt.guard(p, h))
}

// HandleFunc is Handle for a function.
func (rt *Router) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	rt.Handle(pattern, http.HandlerFunc(f))
}

// Routes lists the registered routes in pattern order.
func (rt *Router) Routes() []Route {
	out := slices.Clone(rt.routes)
	sort.Slice(out, func(i, j int) bool { return out[i].Pattern < out[j].Pattern })
	return out
}

// guard wraps h with its policy.
func (rt *Router) guard(p Policy, h http.Handler) http.Handler {
	if p.Public {
		return h
	}
	if p.admitsNobody() {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			WriteError(w, r, &Error{Status: http.StatusForbidden, Slug: SlugForbidden, Code: "no-policy",
				Detail: "this route admits nobody"})
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.tokens == nil {
			WriteError(w, r, fmt.Errorf("route %s needs authentication but the router has no token verifier", r.Pattern))
			return
		}
		principal, err := rt.authenticate(r)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if rt.sessions != nil {
			if err := rt.sessions.check(r.Context(), principal); err != nil {
				WriteError(w, r, err)
				return
			}
		}
		if !slices.Contains(p.Roles, principal.Role) {
			WriteError(w, r, domain.Forbidden("forbidden", "a %s may not call this route", principal.Role))
			return
		}
		if p.Tenant != nil {
			if err := p.Tenant(r, principal); err != nil {
				WriteError(w, r, err)
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), principal)))
	})
}

// authenticate verifies the request's bearer token: with the external
// issuer's keys when its iss is that issuer's, else as careflow's own.
func (rt *Router) authenticate(r *http.Request) (Principal, error) {
	if rt.external == nil {
		return rt.tokens.authenticate(r)
	}
	raw, err := bearerToken(r)
	if err != nil {
		return Principal{}, err
	}
	if rt.external.issuedBy(raw) {
		return rt.external.Verify(r.Context(), raw)
	}
	return rt.tokens.Verify(raw)
}

// ServeHTTP routes r. Requests no route matches get a problem too: 404
// not-found, or 405 method-not-allowed with Allow.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := rt.mux.Handler(r)
	if pattern != "" {
		rt.mux.ServeHTTP(w, r)
		return
	}
	rec := &fallbackRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusNotFound:
		WriteError(w, r, &Error{Status: http.StatusNotFound, Slug: SlugNotFound, Detail: "no such route"})
	case http.StatusMethodNotAllowed:
		e := &Error{Status: http.StatusMethodNotAllowed, Slug: SlugMethodNotAllowed,
			Detail: "the route does not accept this method"}
		if allow := rec.header.Get("Allow"); allow != "" {
			e.Header = http.Header{"Allow": {allow}}
		}
		WriteError(w, r, e)
	default:
		// A redirect to the canonical path: pass it on as is.
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
	}
}

// fallbackRecorder captures the ServeMux's own 404/405/redirect answer so
// it can be replaced by a problem.
type fallbackRecorder struct {
	header http.Header
	status int
}

func (f *fallbackRecorder) Header() http.Header { return f.header }
func (f *fallbackRecorder) Write(b []byte) (int, error) {
	if f.status == 0 {
		f.status = http.StatusOK
	}
	return len(b), nil
}
func (f *fallbackRecorder) WriteHeader(code int) {
	if f.status == 0 {
		f.status = code
	}
}
