package api

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/identity"
)

// The staff, provider and client routes create two things at once: the
// clinic's record (a membership, a provider, a client) and the account that
// signs in as it. They are separate streams written by separate commands,
// so a request can fail between them. Each sub-command's id is derived
// from the request's command id (the Idempotency-Key's), so a retry with
// the same key re-runs both: the one that was written answers as a
// duplicate, the missing one is written, and nothing is created twice.

// provisioningNamespace seeds the ids of the sub-commands of one request.
var provisioningNamespace = uuid.MustParse("5c0f7a2e-8d41-4b6a-9e3f-71d2c4b8a590")

// provisioningActorID registers the accounts of people a clinic takes on.
// Account registration admits only system admins, and the caller's own role
// must not be recorded as one; the account event's correlation id (the
// request id) and causation id (the clinic command) lead to the caller,
// whom the clinic command authorized and recorded.
const provisioningActorID = "careflow-provisioning"

// provisioning holds the sub-command envelopes of one request.
type provisioning struct {
	org      commands.Meta
	account  commands.Meta
	username string
}

func subCommandID(requestCommandID, part string) string {
	return uuid.NewSHA1(provisioningNamespace, []byte(requestCommandID+"\x00"+part)).String()
}

// provision validates the account fields before anything is written (422
// with every field error at once), splits m into the sub-commands, and
// refuses a username already taken by another request (409, nothing
// written). A username taken by this request's own account command is a
// retry and goes ahead.
func (o *orgRoutes) provision(ctx context.Context, m commands.Meta, username, password string, extra ...*domain.Error) (provisioning, error) {
	var errs domain.ValidationErrors
	collect := func(err error) {
		var de *domain.Error
		if errors.As(err, &de) {
			errs = append(errs, de)
		}
	}
	normalized, err := identity.NormalizeUsername(username)
	collect(err)
	collect(identity.CheckPassword("password", password))
	for _, e := range extra {
		if e != nil {
			errs = append(errs, e)
		}
	}
	if err := errs.Err(); err != nil {
		return provisioning{}, err
	}
	if m.CommandID == "" {
		m.CommandID = uuid.NewString()
	}
	p := provisioning{org: m, account: m, username: normalized}
	p.org.CommandID = subCommandID(m.CommandID, "organization")
	p.org.CausationID = m.CommandID
	p.account.CommandID = subCommandID(m.CommandID, "account")
	p.account.CausationID = p.org.CommandID
	if !m.Actor.Is(domain.RoleSystemAdmin) {
		p.account.Actor = domain.Actor{ID: provisioningActorID, Role: domain.RoleSystemAdmin}
	}
	taken, err := o.usernameTakenByOther(ctx, normalized, p.account.CommandID)
	if err != nil {
		return provisioning{}, err
	}
	if taken {
		return provisioning{}, domain.Conflict("username-taken", "the username is already taken")
	}
	return p, nil
}

// usernameTakenByOther reports whether the account stream of username was
// started by another command than accountCommandID.
func (o *orgRoutes) usernameTakenByOther(ctx context.Context, username, accountCommandID string) (bool, error) {
	recs, err := o.store.ReadStream(ctx, commands.AccountStream(username), 1)
	if err != nil {
		return false, err
	}
	return len(recs) > 0 && recs[0].Metadata.CommandID != accountCommandID, nil
}

// combined is the answer of a multi-command request: the version of the
// primary stream (the ETag a later If-Match names), the position of the
// last event written, and a duplicate only if every part was one.
func combined(primary commands.Result, others ...commands.Result) commands.Result {
	out := primary
	for _, r := range others {
		out.Position = max(out.Position, r.Position)
		out.Duplicate = out.Duplicate && r.Duplicate
	}
	return out
}

type createStaffRequest struct {
	Username string      `json:"username"`
	Password string      `json:"password"`
	Role     domain.Role `json:"role"`
}

// staffRoles are the roles a clinic gives its staff: providers are
// registered with createProvider, and nobody creates system or institute
// admins through a clinic.
func staffRoles() []domain.Role { return []domain.Role{domain.RoleClinicAdmin, domain.RoleAuditor} }

// callerInClinic checks, on the clinic stream, that the caller holds its
// role in the clinic of the path now (a system admin everywhere): an
// outsider gets clinic-not-found before any validation or write. The
// commands check again on the state they decide on.
func (o *orgRoutes) callerInClinic(r *http.Request) error {
	principal, ok := PrincipalFrom(r.Context())
	if !ok {
		return Unauthorized("this route needs an access token", "")
	}
	return ClinicStaffInPath(o.org, "clinicId")(r, principal)
}

// createStaff creates a staff account (clinic_admin or auditor) and gives it
// that role in the clinic. The account comes first (the membership names
// its user id), so the caller's right to manage the clinic is checked on
// the clinic stream before anything is written; AddStaff checks it again.
func (o *orgRoutes) createStaff(w http.ResponseWriter, r *http.Request) {
	var req createStaffRequest
	m, err := commandRequest(w, r, false, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if err := o.callerInClinic(r); err != nil {
		WriteError(w, r, err)
		return
	}
	clinicID := r.PathValue("clinicId")
	var roleErr *domain.Error
	if !slices.Contains(staffRoles(), req.Role) {
		roleErr = domain.Validation("invalid-staff-role", "role", "role must be clinic_admin or auditor")
	}
	p, err := o.provision(r.Context(), m, req.Username, req.Password, roleErr)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	acc, err := o.accounts.RegisterAccount(r.Context(), p.account, commands.RegisterAccount{
		Username: p.username, Password: req.Password, Role: req.Role})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	member, err := o.org.AddStaff(r.Context(), p.org, commands.AddStaff{ClinicID: clinicID, UserID: acc.UserID, Role: req.Role})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteCommandResult(w, http.StatusCreated, map[string]string{"userId": acc.UserID}, combined(acc.Result, member))
}

type createProviderRequest struct {
	DisplayName string `json:"displayName"`
	Username    string `json:"username"`
	Password    string `json:"password"`
}

// createProvider registers a provider in the clinic (the provider stream
// and the clinic membership) and the provider's account, which acts as the
// provider. RegisterProvider authorizes the caller before anything is
// written.
func (o *orgRoutes) createProvider(w http.ResponseWriter, r *http.Request) {
	var req createProviderRequest
	m, err := commandRequest(w, r, false, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if err := o.callerInClinic(r); err != nil {
		WriteError(w, r, err)
		return
	}
	p, err := o.provision(r.Context(), m, req.Username, req.Password)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	reg, err := o.org.RegisterProvider(r.Context(), p.org, commands.RegisterProvider{
		ClinicID: r.PathValue("clinicId"), DisplayName: req.DisplayName})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	acc, err := o.accounts.RegisterAccount(r.Context(), p.account, commands.RegisterAccount{
		Username: p.username, Password: req.Password, Role: domain.RoleProvider, ProviderID: reg.ProviderID})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteCommandResult(w, http.StatusCreated, map[string]string{"providerId": reg.ProviderID, "userId": acc.UserID},
		combined(reg.Provider, reg.Membership, acc.Result))
}

type createClientRequest struct {
	DisplayName string   `json:"displayName"`
	Username    string   `json:"username"`
	Password    string   `json:"password"`
	CareTeam    []string `json:"careTeam"`
}

// createClient takes on a client in the clinic with a first care team and
// creates the client's account, which acts as the client. RegisterClient
// authorizes the caller before anything is written.
func (o *orgRoutes) createClient(w http.ResponseWriter, r *http.Request) {
	var req createClientRequest
	m, err := commandRequest(w, r, false, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if err := o.callerInClinic(r); err != nil {
		WriteError(w, r, err)
		return
	}
	p, err := o.provision(r.Context(), m, req.Username, req.Password)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	res, err := o.org.RegisterClient(r.Context(), p.org, commands.RegisterClient{
		ClinicID: r.PathValue("clinicId"), DisplayName: req.DisplayName, CareTeam: req.CareTeam})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	clientID := res.Stream.ID
	acc, err := o.accounts.RegisterAccount(r.Context(), p.account, commands.RegisterAccount{
		Username: p.username, Password: req.Password, Role: domain.RoleClient, ClientID: clientID})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteCommandResult(w, http.StatusCreated, map[string]string{"clientId": clientID, "userId": acc.UserID},
		combined(res, acc.Result))
}
