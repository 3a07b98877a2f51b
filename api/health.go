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
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", h.ready)
}

func (h Health) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	head, err := h.Store.HeadPosition(ctx)
	if err != nil {
		if h.Logger != nil {
			h.Logger.Warn("readiness check failed", "err", err)
		}
		writeProblem(w, http.StatusServiceUnavailable, "not-ready", "the event store is not reachable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "store": map[string]any{"headPosition": head}})
}
