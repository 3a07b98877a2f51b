package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections"
)

// Health serves /healthz (the process answers) and /readyz (it can reach
// its event store and its read models).
type Health struct {
	Store eventstore.Store
	// Projections, when set, must answer for the service to be ready; a
	// projection stopped on a failing event is reported, not fatal: the
	// others still serve.
	Projections ProjectionStatus
	Logger      *slog.Logger
}

// ProjectionStatus reports the projections (*projections.Runner).
type ProjectionStatus interface {
	Status(ctx context.Context) ([]projections.Status, error)
}

// Routes adds the health routes to a policy-enforcing router.
func (h Health) Routes(rt *Router) {
	rt.HandleFunc("GET /healthz", h.live)
	rt.HandleFunc("GET /readyz", h.ready)
}

func (h Health) live(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h Health) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	head, err := h.Store.HeadPosition(ctx)
	if err != nil {
		if h.Logger != nil {
			h.Logger.Warn("readiness check failed", "err", err)
		}
		WriteError(w, r, &Error{Status: http.StatusServiceUnavailable, Slug: "not-ready",
			Detail: "the event store is not reachable", Header: http.Header{"Retry-After": {"5"}}})
		return
	}
	body := map[string]any{"status": "ready", "store": map[string]any{"headPosition": head}}
	if h.Projections != nil {
		st, err := h.Projections.Status(ctx)
		if err != nil {
			if h.Logger != nil {
				h.Logger.Warn("readiness check failed", "err", err)
			}
			WriteError(w, r, &Error{Status: http.StatusServiceUnavailable, Slug: "not-ready",
				Detail: "the read models are not reachable", Header: http.Header{"Retry-After": {"5"}}})
			return
		}
		failed := []string{}
		var maxLag int64
		for _, s := range st {
			if s.State == projections.StateFailed {
				failed = append(failed, s.Name)
			}
			maxLag = max(maxLag, s.LagEvents)
		}
		body["projections"] = map[string]any{"count": len(st), "failed": failed, "maxLagEvents": maxLag}
	}
	writeJSON(w, http.StatusOK, body)
}
