package api

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/eventstore"
)

// OrganizationService is what the organization, book and design plan
// routes need of the organization handlers (*commands.Organization).
type OrganizationService interface {
	CreateInstitute(ctx context.Context, m commands.Meta, cmd commands.CreateInstitute) (commands.Result, error)
	AppointInstituteAdmin(ctx context.Context, m commands.Meta, cmd commands.AppointInstituteAdmin) (commands.Result, error)
	DismissInstituteAdmin(ctx context.Context, m commands.Meta, cmd commands.DismissInstituteAdmin) (commands.Result, error)
	CreateClinic(ctx context.Context, m commands.Meta, cmd commands.CreateClinic) (commands.Result, error)
	AddStaff(ctx context.Context, m commands.Meta, cmd commands.AddStaff) (commands.Result, error)
	RemoveStaff(ctx context.Context, m commands.Meta, cmd commands.RemoveStaff) (commands.Result, error)
	RegisterProvider(ctx context.Context, m commands.Meta, cmd commands.RegisterProvider) (commands.ProviderRegistration, error)
	JoinClinic(ctx context.Context, m commands.Meta, cmd commands.JoinClinic) (commands.Result, error)
	LeaveClinic(ctx context.Context, m commands.Meta, cmd commands.LeaveClinic) (commands.Result, error)
	DeactivateProvider(ctx context.Context, m commands.Meta, cmd commands.DeactivateProvider) (commands.Result, error)
	ReactivateProvider(ctx context.Context, m commands.Meta, cmd commands.ReactivateProvider) (commands.Result, error)
	RegisterClient(ctx context.Context, m commands.Meta, cmd commands.RegisterClient) (commands.Result, error)
	ChangeCareTeam(ctx context.Context, m commands.Meta, cmd commands.ChangeCareTeam) (commands.Result, error)
	DeactivateClient(ctx context.Context, m commands.Meta, cmd commands.DeactivateClient) (commands.Result, error)
	ReactivateClient(ctx context.Context, m commands.Meta, cmd commands.ReactivateClient) (commands.Result, error)
	GrantEmergencyAccess(ctx context.Context, m commands.Meta, cmd commands.GrantEmergencyAccess) (commands.EmergencyAccessGrant, error)
	ForgetClient(ctx context.Context, m commands.Meta, cmd commands.ForgetClient) (commands.Result, error)
	DefineBook(ctx context.Context, m commands.Meta, cmd commands.DefineBook) (commands.Result, error)
	ReviseBook(ctx context.Context, m commands.Meta, cmd commands.ReviseBook) (commands.Result, error)
	CreateDesignPlan(ctx context.Context, m commands.Meta, cmd commands.CreateDesignPlan) (commands.Result, error)
	commands.BookCatalog
	commands.DesignPlanCatalog
	commands.StaffDirectory
}

var _ OrganizationService = (*commands.Organization)(nil)

// orgRoutes serve institutes, clinics, staff, providers, clients, books
// and design plans. Every write is one command (or, for the routes that
// also create an account, a few: see org_provision.go); the command
// handlers authorize on the streams, the router's policy only filters by
// role and by the clinics of the token.
type orgRoutes struct {
	org      OrganizationService
	accounts AccountService
	// store is read only to tell a retried account registration from a
	// username taken by someone else (see provisioning).
	store eventstore.Store
	dir   *Directory
}

// newOrgRoutes builds the organization routes of cfg, filling in its
// defaults: the organization handlers over cfg.Store and, when
// cfg.Memberships is nil, the Directory as the token memberships.
// cfg.Store and cfg.Clock must be set.
func newOrgRoutes(cfg *Config) (*orgRoutes, error) {
	reg := cfg.Codec
	if reg == nil {
		// Tests only: the service passes its sealing registry, so that PHI
		// is never written in clear.
		var err error
		if reg, err = commands.NewRegistry(); err != nil {
			return nil, err
		}
	}
	if cfg.Organization == nil {
		cfg.Organization = commands.NewOrganization(commands.Deps{
			Store: cfg.Store, Codec: reg, Clock: cfg.Clock,
			NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) },
		})
	}
	dir := NewDirectory(cfg.Store, reg)
	if cfg.Memberships == nil {
		cfg.Memberships = dir
	}
	return &orgRoutes{org: cfg.Organization, accounts: cfg.Accounts, store: cfg.Store, dir: dir}, nil
}

func (o *orgRoutes) register(rt *Router) {
	rt.HandleFunc("POST /v1/institutes", o.createInstitute)
	rt.HandleFunc("POST /v1/institutes/{instituteId}/admins", o.appointInstituteAdmin)
	rt.HandleFunc("DELETE /v1/institutes/{instituteId}/admins/{userId}", o.dismissInstituteAdmin)
	rt.HandleFunc("POST /v1/institutes/{instituteId}/clinics", o.createClinic)

	rt.HandleFunc("POST /v1/clinics/{clinicId}/staff", o.createStaff)
	rt.HandleFunc("PUT /v1/clinics/{clinicId}/staff/{userId}/roles/{role}", o.addStaffRole)
	rt.HandleFunc("DELETE /v1/clinics/{clinicId}/staff/{userId}/roles/{role}", o.removeStaffRole)

	rt.HandleFunc("POST /v1/clinics/{clinicId}/providers", o.createProvider)
	rt.HandleFunc("PUT /v1/clinics/{clinicId}/providers/{providerId}", o.joinClinic)
	rt.HandleFunc("DELETE /v1/clinics/{clinicId}/providers/{providerId}", o.leaveClinic)
	rt.HandleFunc("POST /v1/providers/{providerId}/deactivate", o.deactivateProvider)
	rt.HandleFunc("POST /v1/providers/{providerId}/reactivate", o.reactivateProvider)

	rt.HandleFunc("POST /v1/clinics/{clinicId}/clients", o.createClient)
	rt.HandleFunc("PUT /v1/clients/{clientId}/care-team", o.changeCareTeam)
	rt.HandleFunc("POST /v1/clients/{clientId}/deactivate", o.deactivateClient)
	rt.HandleFunc("POST /v1/clients/{clientId}/reactivate", o.reactivateClient)
	rt.HandleFunc("POST /v1/clients/{clientId}/forget", o.forgetClient)

	rt.HandleFunc("GET /v1/books", o.listBooks)
	rt.HandleFunc("GET /v1/books/{bookId}", o.getBook)
	rt.HandleFunc("POST /v1/clinics/{clinicId}/books", o.defineBook)
	rt.HandleFunc("POST /v1/clinics/{clinicId}/books/{bookId}/versions", o.reviseBook)
	rt.HandleFunc("POST /v1/clinics/{clinicId}/design-plans", o.createDesignPlan)
	rt.HandleFunc("GET /v1/clinics/{clinicId}/design-plans/{planId}", o.getDesignPlan)
}

// commandRequest reads what every command route reads: the envelope
// (actor, Idempotency-Key), If-Match as the command's IfVersion when
// ifMatch is set, and the JSON body into body when it is not nil.
func commandRequest(w http.ResponseWriter, r *http.Request, ifMatch bool, body any) (commands.Meta, error) {
	m, err := CommandMeta(r)
	if err != nil {
		return commands.Meta{}, err
	}
	if ifMatch {
		im, err := ParseIfMatch(r)
		if err != nil {
			return commands.Meta{}, err
		}
		// "*" adds nothing: every such command needs its resource anyway.
		if im.Set && !im.Any {
			m.IfVersion = im.Version
		}
	}
	if body != nil {
		if err := DecodeJSON(w, r, body); err != nil {
			return commands.Meta{}, err
		}
	}
	return m, nil
}

// runCommand answers a one-command route: the command's result with status
// (201 for creates), ids naming what it created.
func runCommand(w http.ResponseWriter, r *http.Request, status int, run func() (map[string]string, commands.Result, error)) {
	ids, res, err := run()
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteCommandResult(w, status, ids, res)
}

type nameRequest struct {
	Name string `json:"name"`
}

type userRequest struct {
	UserID string `json:"userId"`
}

type reasonRequest struct {
	Reason string `json:"reason"`
}

func (o *orgRoutes) createInstitute(w http.ResponseWriter, r *http.Request) {
	var req nameRequest
	m, err := commandRequest(w, r, false, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusCreated, func() (map[string]string, commands.Result, error) {
		res, err := o.org.CreateInstitute(r.Context(), m, commands.CreateInstitute{Name: req.Name})
		return map[string]string{"instituteId": res.Stream.ID}, res, err
	})
}

func (o *orgRoutes) appointInstituteAdmin(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	m, err := commandRequest(w, r, true, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		res, err := o.org.AppointInstituteAdmin(r.Context(), m, commands.AppointInstituteAdmin{
			InstituteID: r.PathValue("instituteId"), UserID: req.UserID})
		return nil, res, err
	})
}

func (o *orgRoutes) dismissInstituteAdmin(w http.ResponseWriter, r *http.Request) {
	m, err := commandRequest(w, r, true, nil)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		res, err := o.org.DismissInstituteAdmin(r.Context(), m, commands.DismissInstituteAdmin{
			InstituteID: r.PathValue("instituteId"), UserID: r.PathValue("userId")})
		return nil, res, err
	})
}

func (o *orgRoutes) createClinic(w http.ResponseWriter, r *http.Request) {
	var req nameRequest
	m, err := commandRequest(w, r, false, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusCreated, func() (map[string]string, commands.Result, error) {
		res, err := o.org.CreateClinic(r.Context(), m, commands.CreateClinic{InstituteID: r.PathValue("instituteId"), Name: req.Name})
		return map[string]string{"clinicId": res.Stream.ID}, res, err
	})
}

func (o *orgRoutes) addStaffRole(w http.ResponseWriter, r *http.Request) {
	m, err := commandRequest(w, r, true, nil)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		res, err := o.org.AddStaff(r.Context(), m, commands.AddStaff{
			ClinicID: r.PathValue("clinicId"), UserID: r.PathValue("userId"), Role: domain.Role(r.PathValue("role"))})
		return nil, res, err
	})
}

func (o *orgRoutes) removeStaffRole(w http.ResponseWriter, r *http.Request) {
	m, err := commandRequest(w, r, true, nil)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		res, err := o.org.RemoveStaff(r.Context(), m, commands.RemoveStaff{
			ClinicID: r.PathValue("clinicId"), UserID: r.PathValue("userId"), Role: domain.Role(r.PathValue("role"))})
		return nil, res, err
	})
}

func (o *orgRoutes) joinClinic(w http.ResponseWriter, r *http.Request) {
	m, err := commandRequest(w, r, true, nil)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		res, err := o.org.JoinClinic(r.Context(), m, commands.JoinClinic{
			ClinicID: r.PathValue("clinicId"), ProviderID: r.PathValue("providerId")})
		return nil, res, err
	})
}

func (o *orgRoutes) leaveClinic(w http.ResponseWriter, r *http.Request) {
	m, err := commandRequest(w, r, true, nil)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		res, err := o.org.LeaveClinic(r.Context(), m, commands.LeaveClinic{
			ClinicID: r.PathValue("clinicId"), ProviderID: r.PathValue("providerId")})
		return nil, res, err
	})
}

func (o *orgRoutes) deactivateProvider(w http.ResponseWriter, r *http.Request) {
	var req reasonRequest
	m, err := commandRequest(w, r, true, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		res, err := o.org.DeactivateProvider(r.Context(), m, commands.DeactivateProvider{
			ProviderID: r.PathValue("providerId"), Reason: req.Reason})
		return nil, res, err
	})
}

func (o *orgRoutes) reactivateProvider(w http.ResponseWriter, r *http.Request) {
	m, err := commandRequest(w, r, true, nil)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		res, err := o.org.ReactivateProvider(r.Context(), m, commands.ReactivateProvider{ProviderID: r.PathValue("providerId")})
		return nil, res, err
	})
}

type careTeamRequest struct {
	CareTeam []string `json:"careTeam"`
}

func (o *orgRoutes) changeCareTeam(w http.ResponseWriter, r *http.Request) {
	var req careTeamRequest
	m, err := commandRequest(w, r, true, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		res, err := o.org.ChangeCareTeam(r.Context(), m, commands.ChangeCareTeam{
			ClientID: r.PathValue("clientId"), CareTeam: req.CareTeam})
		return nil, res, err
	})
}

func (o *orgRoutes) deactivateClient(w http.ResponseWriter, r *http.Request) {
	var req reasonRequest
	m, err := commandRequest(w, r, true, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		res, err := o.org.DeactivateClient(r.Context(), m, commands.DeactivateClient{
			ClientID: r.PathValue("clientId"), Reason: req.Reason})
		return nil, res, err
	})
}

func (o *orgRoutes) reactivateClient(w http.ResponseWriter, r *http.Request) {
	m, err := commandRequest(w, r, true, nil)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		res, err := o.org.ReactivateClient(r.Context(), m, commands.ReactivateClient{ClientID: r.PathValue("clientId")})
		return nil, res, err
	})
}

func (o *orgRoutes) forgetClient(w http.ResponseWriter, r *http.Request) {
	var req reasonRequest
	m, err := commandRequest(w, r, true, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		res, err := o.org.ForgetClient(r.Context(), m, commands.ForgetClient{
			ClientID: r.PathValue("clientId"), Reason: req.Reason})
		return nil, res, err
	})
}

// clinicManagers may manage a clinic's staff and providers.
func clinicManagers() []domain.Role {
	return []domain.Role{domain.RoleSystemAdmin, domain.RoleInstituteAdmin, domain.RoleClinicAdmin}
}

// clinicReaders may read a clinic's books and design plans.
func clinicReaders() []domain.Role {
	return []domain.Role{domain.RoleInstituteAdmin, domain.RoleClinicAdmin, domain.RoleProvider, domain.RoleAuditor}
}

// clinicManagersAndProviders may end a provider's clinic membership (a
// provider only their own).
func clinicManagersAndProviders() []domain.Role {
	return append(clinicManagers(), domain.RoleProvider)
}
