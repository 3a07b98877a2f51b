package api

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/projections/reactions"
)

// webhookRoutes serve a clinic's webhook endpoints (docs/webhooks.md).
// The router's policy admits the roles and checks the token's clinics; the
// reactions authorize admins again against current memberships, and this
// file does the same for auditors, who may only read.
type webhookRoutes struct {
	hooks WebhookService
	staff commands.StaffDirectory
}

// endpointView is an endpoint as the API shows it. The secret is never
// read back.
type endpointView struct {
	ID           string     `json:"id"`
	ClinicID     string     `json:"clinicId"`
	URL          string     `json:"url"`
	Types        []string   `json:"types"`
	RegisteredBy string     `json:"registeredBy"`
	CreatedAt    time.Time  `json:"createdAt"`
	State        string     `json:"state"`
	DisabledAt   *time.Time `json:"disabledAt,omitempty"`
}

func viewEndpoint(e reactions.Endpoint) endpointView {
	types := e.Types
	if types == nil {
		types = []string{}
	}
	return endpointView{
		ID: e.ID, ClinicID: e.ClinicID, URL: e.URL, Types: types, RegisteredBy: e.RegisteredBy,
		CreatedAt: e.CreatedAt, State: string(e.State), DisabledAt: optionalTime(e.DisabledAt),
	}
}

// attemptView is one delivery attempt: ids, the receiver's status and the
// failure, never a response body.
type attemptView struct {
	DeliveryID string    `json:"deliveryId"`
	EventID    string    `json:"eventId"`
	EventType  string    `json:"eventType"`
	Stream     string    `json:"stream"`
	Version    int64     `json:"version"`
	Number     int       `json:"number"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode"`
	Error      string    `json:"error,omitempty"`
	Succeeded  bool      `json:"succeeded"`
}

type registerWebhookRequest struct {
	URL    string   `json:"url"`
	Types  []string `json:"types"`
	Secret string   `json:"secret"`
}

type endpointList struct {
	Items []endpointView `json:"items"`
}

type attemptList struct {
	Items []attemptView `json:"items"`
}

func (h *webhookRoutes) register(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	var req registerWebhookRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	clinicID := r.PathValue("clinicId")
	ep, err := h.hooks.RegisterWebhook(r.Context(), p.Actor(), clinicID, req.URL, req.Types, req.Secret)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/clinics/"+clinicID+"/webhooks/"+ep.ID)
	writeJSON(w, http.StatusCreated, viewEndpoint(ep))
}

func (h *webhookRoutes) list(w http.ResponseWriter, r *http.Request) {
	actor, err := h.reader(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	eps, err := h.hooks.Endpoints(r.Context(), actor, r.PathValue("clinicId"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := endpointList{Items: make([]endpointView, 0, len(eps))}
	for _, ep := range eps {
		out.Items = append(out.Items, viewEndpoint(ep))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *webhookRoutes) get(w http.ResponseWriter, r *http.Request) {
	actor, err := h.reader(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	ep, err := h.hooks.Endpoint(r.Context(), actor, r.PathValue("clinicId"), r.PathValue("webhookId"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewEndpoint(ep))
}

// attempts lists the latest attempts, newest first: ?limit= 1 to 500
// (default 100).
func (h *webhookRoutes) attempts(w http.ResponseWriter, r *http.Request) {
	actor, err := h.reader(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	limit := 0
	if raw, ok := r.URL.Query()["limit"]; ok {
		n, err := strconv.Atoi(raw[0])
		if len(raw) != 1 || err != nil {
			WriteError(w, r, badRequest(SlugInvalidRequest, "limit must be an integer",
				FieldError{Field: "limit", Message: "must be an integer from 1 to 500", Slug: "invalid-limit"}))
			return
		}
		if n == 0 {
			// 0 is the reactions' "default": refuse it like any other
			// out-of-range value.
			n = -1
		}
		limit = n
	}
	got, err := h.hooks.Attempts(r.Context(), actor, r.PathValue("clinicId"), r.PathValue("webhookId"), limit)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := attemptList{Items: make([]attemptView, 0, len(got))}
	for _, a := range got {
		out.Items = append(out.Items, attemptView{
			DeliveryID: a.DeliveryID, EventID: a.EventID, EventType: a.EventType, Stream: a.Stream, Version: a.Version,
			Number: a.Number, At: a.At, StatusCode: a.StatusCode, Error: a.Error, Succeeded: a.Succeeded,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *webhookRoutes) enable(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	ep, err := h.hooks.EnableWebhook(r.Context(), p.Actor(), r.PathValue("clinicId"), r.PathValue("webhookId"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewEndpoint(ep))
}

func (h *webhookRoutes) delete(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	if err := h.hooks.DeleteWebhook(r.Context(), p.Actor(), r.PathValue("clinicId"), r.PathValue("webhookId")); err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// reader is the actor a webhook read runs as. Admins read as themselves
// and the reactions authorize them. The reactions know only admins, so an
// auditor is authorized here, against the clinic's current staff, and the
// read then runs as a system admin carrying the auditor's own id: this is
// used for the three read routes only, never for a write.
func (h *webhookRoutes) reader(r *http.Request) (domain.Actor, error) {
	p, _ := PrincipalFrom(r.Context())
	if p.Role != domain.RoleAuditor {
		return p.Actor(), nil
	}
	if err := holdsRole(r.Context(), h.staff, r.PathValue("clinicId"), p.ActorID, domain.RoleAuditor); err != nil {
		return domain.Actor{}, err
	}
	return domain.Actor{ID: p.ActorID, Role: domain.RoleSystemAdmin}, nil
}

// holdsRole checks that userID holds role in clinicID now; otherwise the
// clinic is not found, as it is for an unknown clinic.
func holdsRole(ctx context.Context, staff commands.StaffDirectory, clinicID, userID string, role domain.Role) error {
	notFound := domain.NotFound("clinic-not-found", "no such clinic")
	if clinicID == "" || userID == "" {
		return notFound
	}
	roles, err := staff.ClinicRoles(ctx, clinicID, userID)
	if domain.KindOf(err) == domain.KindNotFound {
		return notFound
	}
	if err != nil {
		return err
	}
	if !slices.Contains(roles, role) {
		return notFound
	}
	return nil
}

// webhookReaders may read a clinic's webhook endpoints and attempts.
func webhookReaders() []domain.Role {
	return append(clinicManagers(), domain.RoleAuditor)
}
