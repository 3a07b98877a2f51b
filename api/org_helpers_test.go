package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/careflow/careflow/eventstore"
)

const orgPass = "a long enough password"

// orgWorld is an organization built through the API itself: one
// institute with clinics c1 and c2, a clinic admin each, providers p1 and
// p2 in c1 and p3 in c2, client k1 of c1 (team p1), client k2 of c2 (team
// p3) and an auditor of c1. Everyone signs in through /v1/auth/token, so
// their tokens carry the clinics the Directory finds.
type orgWorld struct {
	*fixture
	institute, c1, c2  string
	p1, p2, p3, k1, k2 string
	admin1User         string
	auditor1User       string

	root, admin1, admin2, auditor1 string // bearer headers
	prov1, prov2, prov3            string
	client1, client2               string
}

// newOrgFixture serves the API with the real Directory as memberships and
// sign-in limits that a test's dozen sign-ins from one address never hit.
func newOrgFixture(t *testing.T, adjust ...func(*Config)) *fixture {
	t.Helper()
	return newFixture(t, append([]func(*Config){func(c *Config) {
		c.Memberships = nil
		c.LoginLimits = LoginLimits{PerUsername: rate.Every(time.Millisecond), UserBurst: 100,
			PerAddress: rate.Every(time.Millisecond), AddressBurst: 1000, MaxKeys: 1000}
	}}, adjust...)...)
}

func newOrgWorld(t *testing.T, adjust ...func(*Config)) *orgWorld {
	t.Helper()
	w := &orgWorld{fixture: newOrgFixture(t, adjust...)}
	w.root = w.bearer("root")

	w.institute = w.create("POST", "/v1/institutes", map[string]string{"name": "North"}, w.root).IDs["instituteId"]
	w.c1 = w.create("POST", "/v1/institutes/"+w.institute+"/clinics", map[string]string{"name": "North One"}, w.root).IDs["clinicId"]
	w.c2 = w.create("POST", "/v1/institutes/"+w.institute+"/clinics", map[string]string{"name": "North Two"}, w.root).IDs["clinicId"]

	w.admin1User = w.create("POST", "/v1/clinics/"+w.c1+"/staff", staffBody("admin1", "clinic_admin"), w.root).IDs["userId"]
	w.create("POST", "/v1/clinics/"+w.c2+"/staff", staffBody("admin2", "clinic_admin"), w.root)
	w.admin1 = w.orgBearer("admin1")
	w.admin2 = w.orgBearer("admin2")
	w.auditor1User = w.create("POST", "/v1/clinics/"+w.c1+"/staff", staffBody("auditor1", "auditor"), w.admin1).IDs["userId"]
	w.auditor1 = w.orgBearer("auditor1")

	w.p1 = w.create("POST", "/v1/clinics/"+w.c1+"/providers", providerBody("Dr One", "prov1"), w.admin1).IDs["providerId"]
	w.p2 = w.create("POST", "/v1/clinics/"+w.c1+"/providers", providerBody("Dr Two", "prov2"), w.admin1).IDs["providerId"]
	w.p3 = w.create("POST", "/v1/clinics/"+w.c2+"/providers", providerBody("Dr Three", "prov3"), w.admin2).IDs["providerId"]
	w.prov1, w.prov2, w.prov3 = w.orgBearer("prov1"), w.orgBearer("prov2"), w.orgBearer("prov3")

	w.k1 = w.create("POST", "/v1/clinics/"+w.c1+"/clients", clientBody("Client One", "client1", w.p1), w.prov1).IDs["clientId"]
	w.k2 = w.create("POST", "/v1/clinics/"+w.c2+"/clients", clientBody("Client Two", "client2", w.p3), w.admin2).IDs["clientId"]
	w.client1, w.client2 = w.orgBearer("client1"), w.orgBearer("client2")
	return w
}

func staffBody(username, role string) map[string]string {
	return map[string]string{"username": username, "password": orgPass, "role": role}
}

func providerBody(name, username string) map[string]string {
	return map[string]string{"displayName": name, "username": username, "password": orgPass}
}

func clientBody(name, username string, team ...string) map[string]any {
	return map[string]any{"displayName": name, "username": username, "password": orgPass, "careTeam": team}
}

// orgBearer signs in with orgPass.
func (f *fixture) orgBearer(username string) string {
	f.t.Helper()
	return "Bearer " + f.signIn(username, orgPass).AccessToken
}

// create runs a command that must answer 201 and returns its answer.
func (f *fixture) create(method, path string, body any, bearer string, header ...string) CommandResponse {
	f.t.Helper()
	return f.command(http.StatusCreated, method, path, body, bearer, header...)
}

// command runs a command that must answer status and checks that the
// answer's headers agree with its body.
func (f *fixture) command(status int, method, path string, body any, bearer string, header ...string) CommandResponse {
	f.t.Helper()
	rec := f.do(method, path, body, append([]string{"Authorization", bearer}, header...)...)
	require.Equal(f.t, status, rec.Code, "%s %s: %s", method, path, rec.Body.String())
	return commandResponse(f.t, rec)
}

func commandResponse(t *testing.T, rec *httptest.ResponseRecorder) CommandResponse {
	t.Helper()
	var res CommandResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &res))
	assert.Equal(t, ETag(res.Version), rec.Header().Get("ETag"))
	assert.Equal(t, strconv.FormatInt(res.Position, 10), rec.Header().Get(HeaderPosition))
	return res
}

// head is the store's last position: a refused request must not move it.
func (f *fixture) head() int64 {
	f.t.Helper()
	pos, err := f.store.HeadPosition(context.Background())
	require.NoError(f.t, err)
	return pos
}

// eventsOfType counts the stored events of one type.
func (f *fixture) eventsOfType(typ string) int {
	f.t.Helper()
	recs, err := f.store.ReadAll(context.Background(), 0, 100_000)
	require.NoError(f.t, err)
	n := 0
	for _, r := range recs {
		if r.Type == typ {
			n++
		}
	}
	return n
}

// streamEvents reads one stream.
func (f *fixture) streamEvents(typ, id string) []eventstore.RecordedEvent {
	f.t.Helper()
	recs, err := f.store.ReadStream(context.Background(), eventstore.NewStreamID(typ, id), 1)
	require.NoError(f.t, err)
	return recs
}

// me answers /v1/auth/me for a bearer.
func (f *fixture) me(bearer string) MeResponse {
	f.t.Helper()
	rec := f.do("GET", "/v1/auth/me", nil, "Authorization", bearer)
	require.Equal(f.t, http.StatusOK, rec.Code, rec.Body.String())
	var me MeResponse
	require.NoError(f.t, json.Unmarshal(rec.Body.Bytes(), &me))
	return me
}
