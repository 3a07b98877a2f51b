package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/careflow/careflow/eventstore"
)

// Health serves /healthz (the process answers) and /readyz (it can reach
// its event store).
type Health struct {
	Store  eventstore.Store
	Logger *slog.Logger
}

// Register adds the health routes to mux.
func (h Health) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", h.live)
	mux.HandleFunc("GET /readyz", h.ready)
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
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "store": map[string]any{"headPosition": head}})
}
