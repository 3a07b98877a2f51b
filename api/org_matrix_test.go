package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/domain/books"
)

// TestOrganizationRoutesRefuseOutsiders sends every organization route,
// aimed at clinic c1, its client k1 and provider p1, as each kind of
// caller who must not get through: the answer is the refusal the design
// promises (401 without a token, 403 for a role or function the caller
// does not have, 404 for another clinic's things) and nothing is written.
func TestOrganizationRoutesRefuseOutsiders(t *testing.T) {
	w := newOrgWorld(t)
	book := w.create("POST", "/v1/clinics/"+w.c1+"/books", questionnaire("Sleep check"), w.prov1).IDs["bookId"]
	plan := w.create("POST", "/v1/clinics/"+w.c1+"/design-plans", map[string]any{"title": "Two weeks", "weeks": []map[string]any{
		{"number": 1, "homework": []string{books.PHQ9ID}}}}, w.prov1).IDs["designPlanId"]

	const (
		unauthorized = http.StatusUnauthorized
		forbidden    = http.StatusForbidden
		notFound     = http.StatusNotFound
		allowed      = 0 // the caller may: not part of this test
	)
	callers := []struct{ name, bearer string }{
		{"no token", ""},
		{"other clinic's admin", w.admin2},
		{"other client", w.client2},
		{"provider not on the team", w.prov2},
		{"client on provider routes", w.client1},
		{"auditor on write routes", w.auditor1},
	}
	c1 := "/v1/clinics/" + w.c1
	routes := []struct {
		method, path string
		body         any
		// want per caller, in the order of callers.
		want [6]int
	}{
		{"POST", "/v1/institutes", map[string]string{"name": "Mine"}, [6]int{unauthorized, forbidden, forbidden, forbidden, forbidden, forbidden}},
		{"POST", "/v1/institutes/" + w.institute + "/admins", map[string]string{"userId": w.admin1User}, [6]int{unauthorized, forbidden, forbidden, forbidden, forbidden, forbidden}},
		{"DELETE", "/v1/institutes/" + w.institute + "/admins/" + w.admin1User, nil, [6]int{unauthorized, forbidden, forbidden, forbidden, forbidden, forbidden}},
		{"POST", "/v1/institutes/" + w.institute + "/clinics", map[string]string{"name": "Mine"}, [6]int{unauthorized, forbidden, forbidden, forbidden, forbidden, forbidden}},
		{"POST", c1 + "/staff", staffBody("mallory", "clinic_admin"), [6]int{unauthorized, notFound, forbidden, forbidden, forbidden, forbidden}},
		{"PUT", c1 + "/staff/" + w.auditor1User + "/roles/clinic_admin", nil, [6]int{unauthorized, notFound, forbidden, forbidden, forbidden, forbidden}},
		{"DELETE", c1 + "/staff/" + w.auditor1User + "/roles/auditor", nil, [6]int{unauthorized, notFound, forbidden, forbidden, forbidden, forbidden}},
		{"POST", c1 + "/providers", providerBody("Dr Mallory", "mallory"), [6]int{unauthorized, notFound, forbidden, forbidden, forbidden, forbidden}},
		{"PUT", c1 + "/providers/" + w.p3, nil, [6]int{unauthorized, notFound, forbidden, forbidden, forbidden, forbidden}},
		{"DELETE", c1 + "/providers/" + w.p1, nil, [6]int{unauthorized, notFound, forbidden, forbidden, forbidden, forbidden}},
		{"POST", "/v1/providers/" + w.p1 + "/deactivate", map[string]string{}, [6]int{unauthorized, forbidden, forbidden, forbidden, forbidden, forbidden}},
		{"POST", "/v1/providers/" + w.p1 + "/reactivate", nil, [6]int{unauthorized, forbidden, forbidden, forbidden, forbidden, forbidden}},
		{"POST", c1 + "/clients", clientBody("Client M", "mallory", w.p1), [6]int{unauthorized, notFound, forbidden, allowed, forbidden, forbidden}},
		{"PUT", "/v1/clients/" + w.k1 + "/care-team", map[string]any{"careTeam": []string{w.p2}}, [6]int{unauthorized, notFound, forbidden, forbidden, forbidden, forbidden}},
		{"POST", "/v1/clients/" + w.k1 + "/deactivate", map[string]string{}, [6]int{unauthorized, notFound, forbidden, forbidden, forbidden, forbidden}},
		{"POST", "/v1/clients/" + w.k1 + "/reactivate", nil, [6]int{unauthorized, notFound, forbidden, forbidden, forbidden, forbidden}},
		{"POST", c1 + "/books", questionnaire("Mine"), [6]int{unauthorized, notFound, forbidden, allowed, forbidden, forbidden}},
		{"POST", c1 + "/books/" + book + "/versions", questionnaire("Mine"), [6]int{unauthorized, notFound, forbidden, allowed, forbidden, forbidden}},
		{"POST", c1 + "/design-plans", map[string]any{"title": "Mine", "weeks": []map[string]any{{"number": 1, "homework": []string{books.GAD7ID}}}},
			[6]int{unauthorized, notFound, forbidden, allowed, forbidden, forbidden}},
		{"GET", "/v1/books/" + book, nil, [6]int{unauthorized, notFound, forbidden, allowed, forbidden, allowed}},
		{"GET", "/v1/books?clinicId=" + w.c1, nil, [6]int{unauthorized, notFound, forbidden, allowed, forbidden, allowed}},
		{"GET", c1 + "/design-plans/" + plan, nil, [6]int{unauthorized, notFound, forbidden, allowed, forbidden, allowed}},
	}
	for _, rt := range routes {
		for i, caller := range callers {
			want := rt.want[i]
			if want == allowed {
				continue
			}
			t.Run(rt.method+" "+rt.path+" as "+caller.name, func(t *testing.T) {
				head := w.head()
				var header []string
				if caller.bearer != "" {
					header = []string{"Authorization", caller.bearer}
				}
				rec := w.do(rt.method, rt.path, rt.body, header...)
				require.Equal(t, want, rec.Code, rec.Body.String())
				decodeProblem(t, rec)
				assert.Equal(t, head, w.head(), "a refused request writes nothing")
			})
		}
	}
}
