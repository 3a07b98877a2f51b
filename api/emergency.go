package api

import (
	"context"
	"net/http"
	"time"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/organization"
)

// On what basis a read of a client's record was allowed; kept in every
// access record. Reads by the client themself and by their care team are
// not disclosures; every other basis is listed in the accounting of
// disclosures (GET /v1/clients/{clientId}/disclosures).
const (
	BasisSelf        = "self"
	BasisCareTeam    = "care_team"
	BasisClinicRole  = "clinic_role"  // an admin or auditor of the client's clinic, by role
	BasisEmergency   = "emergency"    // break-glass: under a live emergency access grant
	BasisSystemAdmin = "system_admin" // a system admin's read of the accounting itself
)

// emergencyRoles may break the glass, and read under their own grant.
func emergencyRoles() []domain.Role {
	return []domain.Role{domain.RoleSystemAdmin, domain.RoleInstituteAdmin, domain.RoleClinicAdmin}
}

// emergencyRoutes are the reads of a client's record that only the care
// team (and the client) make: an admin makes them only under a live
// emergency grant. Discussion and notes stay the care team's alone, even
// in an emergency; the session itself, the audit timeline and the access
// log remain readable by the clinic's admins and auditors by role.
var emergencyRoutes = map[string]bool{
	"GET /v1/sessions/{sessionId}/messages":       true,
	"GET /v1/assignments/{assignmentId}":          true,
	"GET /v1/assignments/{assignmentId}/comments": true,
	"GET /v1/clients/{clientId}/sessions":         true,
	"GET /v1/clients/{clientId}/scores":           true,
}

// accessNote carries, through one care request, the route and on what
// basis the client's record was opened, from the check (mayReadClient)
// to the access record (answer).
type accessNote struct {
	route string
	basis string
	grant *organization.EmergencyGrant
}

type ctxAccessNoteKey struct{}

func withAccessNote(pattern string, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), ctxAccessNoteKey{}, &accessNote{route: pattern})
		next(w, r.WithContext(ctx))
	})
}

// accessNoteFrom returns the request's note; outside a care route, a
// throw-away one (its methods are safe on it).
func accessNoteFrom(ctx context.Context) *accessNote {
	if n, ok := ctx.Value(ctxAccessNoteKey{}).(*accessNote); ok {
		return n
	}
	return &accessNote{}
}

func (n *accessNote) set(basis string, g *organization.EmergencyGrant) { n.basis, n.grant = basis, g }

// stamp writes the basis into rec. A read that named no single client (an
// inbox, a clinic overview) takes the basis of the reader's role.
func (n *accessNote) stamp(rec *AccessRecord, role domain.Role) {
	rec.Basis = n.basis
	if rec.Basis == "" {
		rec.Basis = roleBasis(role)
	}
	if n.grant != nil {
		rec.EmergencyGrantID, rec.EmergencyReason = n.grant.ID, n.grant.Reason
	}
}

func roleBasis(role domain.Role) string {
	switch role {
	case domain.RoleClient:
		return BasisSelf
	case domain.RoleProvider:
		return BasisCareTeam
	case domain.RoleSystemAdmin:
		return BasisSystemAdmin
	}
	return BasisClinicRole
}

func (o *orgRoutes) registerEmergencyAccess(rt *Router) {
	rt.HandleFunc("POST /v1/clients/{clientId}/emergency-access", o.grantEmergencyAccess)
}

type emergencyAccessRequest struct {
	Reason string `json:"reason"`
	// Minutes the grant lasts, 1 to 1440; absent means 60.
	Minutes *int `json:"minutes"`
}

// emergencyAccessAnswer is a command answer with the grant's expiry.
type emergencyAccessAnswer struct {
	CommandResponse
	ExpiresAt time.Time `json:"expiresAt"`
}

// grantEmergencyAccess breaks the glass for the caller (see
// commands.GrantEmergencyAccess).
func (o *orgRoutes) grantEmergencyAccess(w http.ResponseWriter, r *http.Request) {
	var req emergencyAccessRequest
	m, err := commandRequest(w, r, true, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	minutes := int(commands.DefaultEmergencyAccess / time.Minute)
	if req.Minutes != nil {
		minutes = *req.Minutes
		if minutes < 1 || minutes > int(organization.MaxEmergencyAccess/time.Minute) {
			WriteError(w, r, domain.Validation("invalid-emergency-access", "minutes", "emergency access lasts 1 to 1440 minutes"))
			return
		}
	}
	g, err := o.org.GrantEmergencyAccess(r.Context(), m, commands.GrantEmergencyAccess{
		ClientID: r.PathValue("clientId"), Reason: req.Reason, Duration: time.Duration(minutes) * time.Minute})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeCommandBody(w, http.StatusCreated, g.Result, emergencyAccessAnswer{
		CommandResponse: careCommandResponse(map[string]string{"grantId": g.GrantID}, g.Result),
		ExpiresAt:       g.ExpiresAt,
	})
}

// DisclosureWindow is how far back the accounting of disclosures reaches
// (HIPAA, 45 CFR 164.528: six years).
const DisclosureWindow = 6

// disclosures lists the reads of a client's information by anyone outside
// their care team (admins, auditors, break-glass) in the last six years,
// oldest first: the accounting of disclosures. The client may read their
// own; auditors and clinic admins of the client's clinic, and system
// admins, anyone's. Reading it is itself recorded.
func (c *careRoutes) disclosures(w http.ResponseWriter, r *http.Request) {
	since := c.clock().UTC().AddDate(-DisclosureWindow, 0, 0)
	c.accessRecords(w, r, func(p Principal, clientID string) (string, error) {
		if p.Role == domain.RoleSystemAdmin {
			facts, err := c.cfg.Directory.ClientFacts(r.Context(), clientID)
			return facts.ClinicID, err
		}
		return c.mayReadClient(r.Context(), p, clientID, careClientNotFound())
	}, func(ctx context.Context, clientID string, after int64, limit int) ([]AccessRecord, error) {
		return c.cfg.AccessLog.Disclosures(ctx, clientID, since, after, limit)
	})
}
