package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/careflow/careflow/projections/audit"
)

// The audit queries' errors reach the caller as problems of their own: a
// bad query is the caller's to fix, a trail being rebuilt is worth a retry.
func TestAuditQueryErrorsAreProblems(t *testing.T) {
	for _, c := range []struct {
		err        error
		status     int
		slug       string
		retryAfter string
	}{
		{fmt.Errorf("wrapped: %w", audit.ErrInvalidQuery), http.StatusBadRequest, SlugInvalidRequest, ""},
		{audit.ErrTrailRebuilding, http.StatusServiceUnavailable, SlugUnavailable, "30"},
	} {
		rec := httptest.NewRecorder()
		WriteError(rec, httptest.NewRequest(http.MethodGet, "/v1/audit/clients/k1/timeline", nil), invalidAuditQuery(c.err))
		assert.Equal(t, c.status, rec.Code, c.err)
		p := decodeProblem(t, rec)
		assert.Contains(t, p.Type, c.slug, c.err)
		assert.Equal(t, c.retryAfter, rec.Header().Get("Retry-After"), c.err)
	}
}
