package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetricsCountRequestsByRoutePattern(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/sessions/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.HandleFunc("GET /metrics", m.serve)
	h := withMetrics(m, time.Now, mux)

	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/sessions/0190-secret-id", nil))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	assert.Contains(t, text, `careflow_http_requests_total{code="418",method="GET",route="GET /v1/sessions/{id}"} 3`)
	assert.Contains(t, text, `careflow_http_request_duration_seconds_count{method="GET",route="GET /v1/sessions/{id}"} 3`)
	assert.NotContains(t, text, "0190-secret-id", "labels carry route patterns, never ids")
}

func TestMetricsAbsentAnswers404(t *testing.T) {
	var m *Metrics
	rec := httptest.NewRecorder()
	m.serve(rec, httptest.NewRequest("GET", "/metrics", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
}
