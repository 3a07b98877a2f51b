package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
)

func TestOrganizationIsBuiltThroughTheAPI(t *testing.T) {
	w := newOrgWorld(t)

	// Every create answered an id that names a stream of its kind.
	for typ, id := range map[string]string{
		commands.StreamInstitute: w.institute, commands.StreamClinic: w.c1, commands.StreamProvider: w.p1, commands.StreamClient: w.k1,
	} {
		assert.NotEmpty(t, w.streamEvents(typ, id), "%s %s", typ, id)
	}

	// The tokens carry the clinics each one belongs to now.
	assert.Equal(t, []string{w.c1}, w.me(w.admin1).Clinics)
	assert.Equal(t, []string{w.c2}, w.me(w.admin2).Clinics)
	assert.Equal(t, []string{w.c1}, w.me(w.auditor1).Clinics)
	assert.Equal(t, []string{}, w.me(w.root).Clinics, "system admins pass everywhere without clinics")

	me := w.me(w.prov1)
	assert.Equal(t, domain.RoleProvider, me.Role)
	assert.Equal(t, w.p1, me.ActorID, "a provider account acts as its provider")
	assert.Equal(t, []string{w.c1}, me.Clinics)

	me = w.me(w.client1)
	assert.Equal(t, domain.RoleClient, me.Role)
	assert.Equal(t, w.k1, me.ActorID, "a client account acts as its client")
	assert.Equal(t, []string{w.c1}, me.Clinics)
}

func TestCreateProviderAnswersBothIDsAndTheProviderVersion(t *testing.T) {
	w := newOrgWorld(t)
	before := w.head()
	rec := w.do("POST", "/v1/clinics/"+w.c1+"/providers", providerBody("Dr Four", "Prov4"), "Authorization", w.admin1)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	res := commandResponse(t, rec)
	assert.NotEmpty(t, res.IDs["providerId"])
	assert.NotEmpty(t, res.IDs["userId"])
	assert.EqualValues(t, 1, res.Version, "the ETag is the new provider's version")
	assert.Equal(t, before+3, res.Position, "provider, membership and account: the position of the last")
	assert.False(t, res.Duplicate)

	acc, err := w.accounts.Account(context.Background(), "prov4")
	require.NoError(t, err)
	assert.Equal(t, res.IDs["userId"], acc.UserID())
	assert.Equal(t, res.IDs["providerId"], acc.ActorID())
	assert.Equal(t, []string{w.c1}, w.me(w.orgBearer("prov4")).Clinics)

	// The account was registered by the provisioning actor, linked to the
	// request and to the clinic command that the admin issued.
	accRecs, err := w.store.ReadStream(context.Background(), commands.AccountStream("prov4"), 1)
	require.NoError(t, err)
	provRecs := w.streamEvents(commands.StreamProvider, res.IDs["providerId"])
	require.Len(t, accRecs, 1)
	require.Len(t, provRecs, 1)
	assert.Equal(t, provisioningActorID, accRecs[0].Metadata.ActorID)
	assert.Equal(t, w.admin1User, provRecs[0].Metadata.ActorID)
	assert.Equal(t, string(domain.RoleClinicAdmin), provRecs[0].Metadata.ActorRole)
	assert.Equal(t, provRecs[0].Metadata.CorrelationID, accRecs[0].Metadata.CorrelationID)
	assert.Equal(t, provRecs[0].Metadata.CommandID, accRecs[0].Metadata.CausationID)
}

func TestCreateClientAndStaffAnswerIDs(t *testing.T) {
	w := newOrgWorld(t)
	res := w.create("POST", "/v1/clinics/"+w.c1+"/clients", clientBody("Client Three", "client3", w.p1, w.p2), w.admin1)
	assert.EqualValues(t, 1, res.Version)
	acc, err := w.accounts.Account(context.Background(), "client3")
	require.NoError(t, err)
	assert.Equal(t, domain.RoleClient, acc.Role())
	assert.Equal(t, res.IDs["clientId"], acc.ActorID())
	assert.Equal(t, res.IDs["userId"], acc.UserID())

	res = w.create("POST", "/v1/clinics/"+w.c1+"/staff", staffBody("admin1b", "clinic_admin"), w.admin1)
	assert.EqualValues(t, 1, res.Version, "the ETag of a staff creation is the account's version")
	me := w.me(w.orgBearer("admin1b"))
	assert.Equal(t, res.IDs["userId"], me.UserID)
	assert.Equal(t, res.IDs["userId"], me.ActorID, "staff act as their user id")
	assert.Equal(t, []string{w.c1}, me.Clinics)
}

// flakyAccounts fails the first account registration after the clinic's
// write, as a crash between the two streams would.
type flakyAccounts struct {
	AccountService
	failures int
}

func (a *flakyAccounts) RegisterAccount(ctx context.Context, m commands.Meta, cmd commands.RegisterAccount) (commands.AccountRegistration, error) {
	if a.failures > 0 {
		a.failures--
		return commands.AccountRegistration{}, errors.New("the store went away")
	}
	return a.AccountService.RegisterAccount(ctx, m, cmd)
}

// flakyOrganization fails the first AddStaff, after the staff account
// was written.
type flakyOrganization struct {
	OrganizationService
	failures int
}

func (o *flakyOrganization) AddStaff(ctx context.Context, m commands.Meta, cmd commands.AddStaff) (commands.Result, error) {
	if o.failures > 0 {
		o.failures--
		return commands.Result{}, errors.New("the store went away")
	}
	return o.OrganizationService.AddStaff(ctx, m, cmd)
}

func TestARetriedStaffCreationAddsTheMembershipOfTheAccountItMade(t *testing.T) {
	flaky := &flakyOrganization{}
	w := newOrgWorld(t, func(c *Config) {
		reg, err := commands.NewRegistry()
		require.NoError(t, err)
		flaky.OrganizationService = commands.NewOrganization(commands.Deps{Store: c.Store, Codec: reg, Clock: c.Clock,
			NewID: func() uuid.UUID { return uuid.Must(uuid.NewV7()) }})
		c.Organization = flaky
	})
	path := "/v1/clinics/" + w.c1 + "/staff"
	accounts := w.eventsOfType("account.registered")
	flaky.failures = 1
	requireProblem(t, w.do("POST", path, staffBody("auditor9", "auditor"), "Authorization", w.admin1, HeaderIdempotencyKey, "k9"),
		http.StatusInternalServerError, SlugInternal)
	acc, err := w.accounts.Account(context.Background(), "auditor9")
	require.NoError(t, err, "the account was written")
	require.Empty(t, w.me(w.orgBearer("auditor9")).Clinics, "the membership was not")

	// Without the key, the username is someone else's now.
	p := requireProblem(t, w.do("POST", path, staffBody("auditor9", "auditor"), "Authorization", w.admin1), http.StatusConflict, SlugConflict)
	assert.Equal(t, "username-taken", p.Code)

	res := w.create("POST", path, staffBody("auditor9", "auditor"), w.admin1, HeaderIdempotencyKey, "k9")
	assert.Equal(t, acc.UserID(), res.IDs["userId"], "the retry used the account it made")
	assert.False(t, res.Duplicate)
	assert.Equal(t, []string{w.c1}, w.me(w.orgBearer("auditor9")).Clinics)
	assert.Equal(t, accounts+1, w.eventsOfType("account.registered"), "one account, not two")
}

func TestARetriedCreationCompletesWhatIsMissingAndCreatesNothingTwice(t *testing.T) {
	for _, tc := range []struct {
		name, path, username string
		body                 func(w *orgWorld) any
		bearer               func(w *orgWorld) string
		idKey, eventType     string
	}{
		{"provider", "/providers", "prov9", func(w *orgWorld) any { return providerBody("Dr Nine", "prov9") },
			func(w *orgWorld) string { return w.admin1 }, "providerId", "provider.registered"},
		{"client", "/clients", "client9", func(w *orgWorld) any { return clientBody("Client Nine", "client9", w.p1) },
			func(w *orgWorld) string { return w.prov1 }, "clientId", "client.registered"},
		{"staff", "/staff", "auditor9", func(w *orgWorld) any { return staffBody("auditor9", "auditor") },
			func(w *orgWorld) string { return w.admin1 }, "userId", "clinic.staff_added"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flaky := &flakyAccounts{}
			w := newOrgWorld(t, func(c *Config) {
				flaky.AccountService = c.Accounts
				c.Accounts = flaky
			})
			path := "/v1/clinics/" + w.c1 + tc.path
			created := w.eventsOfType(tc.eventType)

			if tc.name != "staff" {
				// The clinic's record is written, then the account fails.
				flaky.failures = 1
				rec := w.do("POST", path, tc.body(w), "Authorization", tc.bearer(w), HeaderIdempotencyKey, "take-on-9")
				requireProblem(t, rec, http.StatusInternalServerError, SlugInternal)
				assert.Equal(t, created+1, w.eventsOfType(tc.eventType), "the first stream was written")
				_, err := w.accounts.Account(context.Background(), tc.username)
				require.Equal(t, domain.KindNotFound, domain.KindOf(err), "the account was not")
			}

			first := w.create("POST", path, tc.body(w), tc.bearer(w), HeaderIdempotencyKey, "take-on-9")
			assert.False(t, first.Duplicate, "the account is new")
			assert.Equal(t, created+1, w.eventsOfType(tc.eventType), "the retry did not write the first stream again")
			acc, err := w.accounts.Account(context.Background(), tc.username)
			require.NoError(t, err)
			assert.Equal(t, first.IDs["userId"], acc.UserID())

			// A third try is a replay: the first answer, nothing written.
			head := w.head()
			rec := w.do("POST", path, tc.body(w), "Authorization", tc.bearer(w), HeaderIdempotencyKey, "take-on-9")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.Equal(t, "true", rec.Header().Get(HeaderReplayed))
			again := commandResponse(t, rec)
			assert.True(t, again.Duplicate)
			assert.Equal(t, first.IDs, again.IDs)
			assert.Equal(t, first.Version, again.Version)
			assert.Equal(t, first.Position, again.Position)
			assert.Equal(t, head, w.head())
			assert.NotEmpty(t, first.IDs[tc.idKey])
		})
	}
}

func TestProvisioningValidatesEverythingBeforeWriting(t *testing.T) {
	w := newOrgWorld(t)
	head := w.head()

	p := requireProblem(t, w.do("POST", "/v1/clinics/"+w.c1+"/staff",
		map[string]string{"username": "x", "password": "short", "role": "system_admin"}, "Authorization", w.admin1),
		StatusValidation, SlugValidation)
	fields := []string{}
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	assert.ElementsMatch(t, []string{"username", "password", "role"}, fields, "every field error at once")

	p = requireProblem(t, w.do("POST", "/v1/clinics/"+w.c1+"/providers", providerBody("", "prov8"), "Authorization", w.admin1),
		StatusValidation, SlugValidation)
	assert.Equal(t, "displayName", p.Errors[0].Field)

	p = requireProblem(t, w.do("POST", "/v1/clinics/"+w.c1+"/clients", clientBody("Client Eight", "client8", w.p3), "Authorization", w.admin1),
		StatusValidation, SlugValidation)
	assert.Contains(t, p.Errors[0].Field, "careTeam", "a provider of another clinic cannot be on the team")

	// A username taken by someone else is a conflict before anything is written.
	p = requireProblem(t, w.do("POST", "/v1/clinics/"+w.c1+"/providers", providerBody("Dr Alias", "PROV1"), "Authorization", w.admin1),
		http.StatusConflict, SlugConflict)
	assert.Equal(t, "username-taken", p.Code)

	// The body is read strictly; email is not a field (see the report).
	requireProblem(t, w.do("POST", "/v1/clinics/"+w.c1+"/providers",
		map[string]string{"displayName": "Dr E", "username": "prov7", "password": orgPass, "email": "e@example.org"}, "Authorization", w.admin1),
		http.StatusBadRequest, SlugInvalidJSON)

	assert.Equal(t, head, w.head(), "nothing was written")
	assert.NotContains(t, w.logs.String(), "Client Eight", "no PHI in the logs")
}

func TestProblemsCarryNoPHI(t *testing.T) {
	w := newOrgWorld(t)
	rec := w.do("POST", "/v1/clinics/"+w.c1+"/clients", clientBody("Jane Q Patient", "client1", w.p1), "Authorization", w.admin1)
	requireProblem(t, rec, http.StatusConflict, SlugConflict)
	assert.NotContains(t, rec.Body.String(), "Jane")
	assert.NotContains(t, rec.Body.String(), orgPass)
}

func TestInstituteAdminsManageTheirInstituteOnly(t *testing.T) {
	w := newOrgWorld(t)
	other := w.create("POST", "/v1/institutes", map[string]string{"name": "South"}, w.root).IDs["instituteId"]
	reg := w.create("POST", "/v1/accounts", map[string]string{"username": "inst1", "password": orgPass, "role": "institute_admin"}, w.root)
	userID := reg.IDs["userId"]

	res := w.command(http.StatusOK, "POST", "/v1/institutes/"+w.institute+"/admins", map[string]string{"userId": userID}, w.root)
	assert.EqualValues(t, 2, res.Version)
	inst := w.orgBearer("inst1")
	assert.ElementsMatch(t, []string{w.c1, w.c2}, w.me(inst).Clinics, "an institute admin belongs to every clinic of the institute")

	c3 := w.create("POST", "/v1/institutes/"+w.institute+"/clinics", map[string]string{"name": "North Three"}, inst).IDs["clinicId"]
	assert.NotEmpty(t, c3)
	p := requireProblem(t, w.do("POST", "/v1/institutes/"+other+"/clinics", map[string]string{"name": "Not mine"}, "Authorization", inst),
		http.StatusNotFound, SlugNotFound)
	assert.Equal(t, "institute-not-found", p.Code)

	// An institute admin manages the clinics' staff (after a refresh of
	// the token the new clinic is in it too).
	w.create("POST", "/v1/clinics/"+w.c1+"/staff", staffBody("admin1c", "clinic_admin"), inst)
	assert.Contains(t, w.me(w.orgBearer("inst1")).Clinics, c3)

	requireProblem(t, w.do("DELETE", "/v1/institutes/"+w.institute+"/admins/"+userID, nil, "Authorization", w.root, "If-Match", `"1"`),
		http.StatusPreconditionFailed, SlugPrecondition)
	w.command(http.StatusOK, "DELETE", "/v1/institutes/"+w.institute+"/admins/"+userID, nil, w.root, "If-Match", `"2"`)
	assert.Empty(t, w.me(w.orgBearer("inst1")).Clinics)
}

func TestStaffRolesOfExistingUsers(t *testing.T) {
	w := newOrgWorld(t)
	base := "/v1/clinics/" + w.c2 + "/staff/" + w.admin1User + "/roles/"
	clinicVersion := int64(len(w.streamEvents(commands.StreamClinic, w.c2)))

	requireProblem(t, w.do("PUT", base+"clinic_admin", nil, "Authorization", w.admin2, "If-Match", ETag(clinicVersion-1)),
		http.StatusPreconditionFailed, SlugPrecondition)
	res := w.command(http.StatusOK, "PUT", base+"clinic_admin", nil, w.admin2, "If-Match", ETag(clinicVersion))
	assert.Equal(t, clinicVersion+1, res.Version)
	assert.ElementsMatch(t, []string{w.c1, w.c2}, w.me(w.orgBearer("admin1")).Clinics)

	p := requireProblem(t, w.do("PUT", base+"clinic_admin", nil, "Authorization", w.admin2), http.StatusConflict, SlugConflict)
	assert.Equal(t, "staff-role-held", p.Code)
	p = requireProblem(t, w.do("PUT", base+"provider", nil, "Authorization", w.admin2), StatusValidation, SlugValidation)
	assert.Equal(t, "role", p.Errors[0].Field)

	w.command(http.StatusOK, "DELETE", base+"clinic_admin", nil, w.admin2)
	assert.Equal(t, []string{w.c1}, w.me(w.orgBearer("admin1")).Clinics)
	p = requireProblem(t, w.do("DELETE", "/v1/clinics/"+w.c1+"/staff/"+w.admin1User+"/roles/clinic_admin", nil, "Authorization", w.admin1),
		http.StatusConflict, SlugConflict)
	assert.Equal(t, "last-clinic-admin", p.Code)
}

func TestProvidersJoinLeaveAndDeactivate(t *testing.T) {
	w := newOrgWorld(t)
	w.command(http.StatusOK, "PUT", "/v1/clinics/"+w.c1+"/providers/"+w.p3, nil, w.admin1)
	assert.ElementsMatch(t, []string{w.c1, w.c2}, w.me(w.orgBearer("prov3")).Clinics)

	// A provider leaves a clinic themself, but cannot remove another.
	p := requireProblem(t, w.do("DELETE", "/v1/clinics/"+w.c1+"/providers/"+w.p3, nil, "Authorization", w.prov1),
		http.StatusForbidden, SlugForbidden)
	assert.Equal(t, "forbidden", p.Code)
	w.command(http.StatusOK, "DELETE", "/v1/clinics/"+w.c1+"/providers/"+w.p3, nil, w.orgBearer("prov3"))
	assert.Equal(t, []string{w.c2}, w.me(w.orgBearer("prov3")).Clinics)

	requireProblem(t, w.do("POST", "/v1/providers/"+w.p2+"/deactivate", map[string]string{"reason": "left"}, "Authorization", w.root, "If-Match", `"2"`),
		http.StatusPreconditionFailed, SlugPrecondition)
	res := w.command(http.StatusOK, "POST", "/v1/providers/"+w.p2+"/deactivate", map[string]string{"reason": "left"}, w.root, "If-Match", `"1"`)
	assert.EqualValues(t, 2, res.Version)
	p = requireProblem(t, w.do("PUT", "/v1/clinics/"+w.c2+"/providers/"+w.p2, nil, "Authorization", w.admin2), http.StatusConflict, SlugConflict)
	assert.Equal(t, "provider-inactive", p.Code)
	res = w.command(http.StatusOK, "POST", "/v1/providers/"+w.p2+"/reactivate", nil, w.root)
	assert.EqualValues(t, 3, res.Version)
	requireProblem(t, w.do("POST", "/v1/providers/nobody/reactivate", nil, "Authorization", w.root), http.StatusNotFound, SlugNotFound)
}

func TestCareTeamChangesAndClientDeactivation(t *testing.T) {
	w := newOrgWorld(t)
	team := "/v1/clients/" + w.k1 + "/care-team"

	requireProblem(t, w.do("PUT", team, map[string]any{"careTeam": []string{w.p1, w.p2}}, "Authorization", w.prov1, "If-Match", `"2"`),
		http.StatusPreconditionFailed, SlugPrecondition)
	res := w.command(http.StatusOK, "PUT", team, map[string]any{"careTeam": []string{w.p1, w.p2}}, w.prov1, "If-Match", `"1"`)
	assert.EqualValues(t, 2, res.Version)

	// p2 is on the team now and can act for the client.
	w.command(http.StatusOK, "PUT", team, map[string]any{"careTeam": []string{w.p2}}, w.prov2)
	p := requireProblem(t, w.do("PUT", team, map[string]any{"careTeam": []string{w.p1}}, "Authorization", w.prov1), http.StatusForbidden, SlugForbidden)
	assert.Equal(t, "not-on-care-team", p.Code)
	p = requireProblem(t, w.do("PUT", team, map[string]any{"careTeam": []string{}}, "Authorization", w.admin1), StatusValidation, SlugValidation)
	assert.Equal(t, "careTeam", p.Errors[0].Field)

	res = w.command(http.StatusOK, "POST", "/v1/clients/"+w.k1+"/deactivate", map[string]string{"reason": "discharged"}, w.admin1)
	assert.EqualValues(t, 4, res.Version)
	requireProblem(t, w.do("POST", "/v1/clients/"+w.k1+"/deactivate", map[string]string{}, "Authorization", w.admin1), http.StatusConflict, SlugConflict)
	w.command(http.StatusOK, "POST", "/v1/clients/"+w.k1+"/reactivate", nil, w.prov2, "If-Match", `"4"`)
}

func questionnaire(title string) books.Spec {
	return books.Spec{
		Kind: books.KindQuestionnaire, Title: title,
		Items: []books.Item{{ID: "q1", Text: "How often?", Options: []books.Option{{Value: 0, Label: "Never"}, {Value: 1, Label: "Often"}}}},
		Bands: []books.Band{{Min: 0, Max: 0, Severity: "none", Label: "None"}, {Min: 1, Max: 1, Severity: "some", Label: "Some"}},
	}
}

func listBooks(t *testing.T, f *fixture, bearer, query string) PageResponse[BookSummary] {
	t.Helper()
	rec := f.do("GET", "/v1/books"+query, nil, "Authorization", bearer)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var page PageResponse[BookSummary]
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	return page
}

func bookIDs(items []BookSummary) []string {
	ids := []string{}
	for _, b := range items {
		ids = append(ids, b.ID)
	}
	return ids
}

func TestBooks(t *testing.T) {
	w := newOrgWorld(t)
	book := w.create("POST", "/v1/clinics/"+w.c1+"/books", questionnaire("Sleep check"), w.prov1).IDs["bookId"]
	require.NotEmpty(t, book)

	// c1's people see the built-ins and c1's book; c2's only the built-ins.
	page := listBooks(t, w.fixture, w.auditor1, "")
	assert.ElementsMatch(t, []string{books.PHQ9ID, books.GAD7ID, book}, bookIDs(page.Items))
	assert.ElementsMatch(t, []string{books.PHQ9ID, books.GAD7ID}, bookIDs(listBooks(t, w.fixture, w.prov3, "").Items))
	assert.ElementsMatch(t, []string{books.PHQ9ID, books.GAD7ID, book}, bookIDs(listBooks(t, w.fixture, w.admin1, "?clinicId="+w.c1).Items))
	requireProblem(t, w.do("GET", "/v1/books?clinicId="+w.c1, nil, "Authorization", w.prov3), http.StatusNotFound, SlugNotFound)

	// Pages of one follow the cursor through every book once.
	seen := []string{}
	cursor := ""
	for range 5 {
		q := "?limit=1"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		page := listBooks(t, w.fixture, w.prov1, q)
		require.Len(t, page.Items, 1)
		seen = append(seen, page.Items[0].ID)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	assert.ElementsMatch(t, []string{books.PHQ9ID, books.GAD7ID, book}, seen)

	rec := w.do("GET", "/v1/books/"+book, nil, "Authorization", w.prov2)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, `"1"`, rec.Header().Get("ETag"))
	var got BookResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, "Sleep check", got.Spec.Title)
	assert.Equal(t, w.c1, got.ClinicID)

	// Revise with If-Match; the old version stays readable.
	versions := "/v1/clinics/" + w.c1 + "/books/" + book + "/versions"
	requireProblem(t, w.do("POST", versions, questionnaire("Sleep check v2"), "Authorization", w.admin1, "If-Match", `"2"`),
		http.StatusPreconditionFailed, SlugPrecondition)
	res := w.command(http.StatusOK, "POST", versions, questionnaire("Sleep check v2"), w.admin1, "If-Match", `"1"`)
	assert.EqualValues(t, 2, res.Version)
	rec = w.do("GET", "/v1/books/"+book+"?version=1", nil, "Authorization", w.prov1)
	require.Equal(t, http.StatusOK, rec.Code)
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, "Sleep check", got.Spec.Title)
	for _, b := range listBooks(t, w.fixture, w.prov1, "?clinicId="+w.c1).Items {
		if b.ID == book {
			assert.Equal(t, 2, b.Version, "the list shows the current version")
			assert.Equal(t, "Sleep check v2", b.Title)
		}
	}

	rec = w.do("GET", "/v1/books/"+books.PHQ9ID, nil, "Authorization", w.prov3)
	require.Equal(t, http.StatusOK, rec.Code)
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.True(t, got.BuiltIn)

	// Another clinic's book does not exist for c2, nor a version never made.
	p := requireProblem(t, w.do("GET", "/v1/books/"+book, nil, "Authorization", w.prov3), http.StatusNotFound, SlugNotFound)
	assert.Equal(t, "book-not-found", p.Code)
	requireProblem(t, w.do("GET", "/v1/books/"+book+"?version=9", nil, "Authorization", w.prov1), http.StatusNotFound, SlugNotFound)
	requireProblem(t, w.do("GET", "/v1/books/"+book+"?version=x", nil, "Authorization", w.prov1), http.StatusBadRequest, SlugInvalidRequest)
	p = requireProblem(t, w.do("POST", "/v1/clinics/"+w.c1+"/books/"+books.PHQ9ID+"/versions", questionnaire("Mine now"), "Authorization", w.prov1),
		http.StatusConflict, SlugConflict)
	assert.Equal(t, "built-in-book", p.Code)

	p = requireProblem(t, w.do("POST", "/v1/clinics/"+w.c1+"/books", books.Spec{Kind: "poem"}, "Authorization", w.prov1),
		StatusValidation, SlugValidation)
	fields := []string{}
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	assert.Contains(t, fields, "kind")
	assert.Contains(t, fields, "title")
}

func TestDesignPlans(t *testing.T) {
	w := newOrgWorld(t)
	book := w.create("POST", "/v1/clinics/"+w.c1+"/books", questionnaire("Sleep check"), w.prov1).IDs["bookId"]
	body := map[string]any{"title": "Four weeks", "weeks": []map[string]any{
		{"number": 1, "homework": []string{books.PHQ9ID}}, {"number": 2, "homework": []string{book, books.GAD7ID}},
	}}
	res := w.create("POST", "/v1/clinics/"+w.c1+"/design-plans", body, w.admin1)
	plan := res.IDs["designPlanId"]
	require.NotEmpty(t, plan)

	rec := w.do("GET", "/v1/clinics/"+w.c1+"/design-plans/"+plan, nil, "Authorization", w.auditor1)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, `"1"`, rec.Header().Get("ETag"))
	var got DesignPlanResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, "Four weeks", got.Title)
	require.Len(t, got.Weeks, 2)
	assert.Equal(t, []string{book, books.GAD7ID}, got.Weeks[1].Homework)

	// c2 cannot use c1's book, and does not see c1's plan.
	p := requireProblem(t, w.do("POST", "/v1/clinics/"+w.c2+"/design-plans", body, "Authorization", w.prov3), StatusValidation, SlugValidation)
	assert.Equal(t, "weeks[1].homework[0]", p.Errors[0].Field)
	assert.Equal(t, "unknown-book", p.Errors[0].Slug)
	requireProblem(t, w.do("GET", "/v1/clinics/"+w.c2+"/design-plans/"+plan, nil, "Authorization", w.prov3), http.StatusNotFound, SlugNotFound)
	requireProblem(t, w.do("GET", "/v1/clinics/"+w.c1+"/design-plans/"+plan, nil, "Authorization", w.prov3), http.StatusNotFound, SlugNotFound)
}

func TestIdempotencyKeyReplaysAnOrganizationCreate(t *testing.T) {
	w := newOrgWorld(t)
	path := "/v1/institutes/" + w.institute + "/clinics"
	first := w.create("POST", path, map[string]string{"name": "North Three"}, w.root, HeaderIdempotencyKey, "clinic-3")
	head := w.head()

	rec := w.do("POST", path, map[string]string{"name": "North Three"}, "Authorization", w.root, HeaderIdempotencyKey, "clinic-3")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "true", rec.Header().Get(HeaderReplayed))
	again := commandResponse(t, rec)
	assert.Equal(t, first.IDs, again.IDs)
	assert.Equal(t, first.Position, again.Position)
	assert.True(t, again.Duplicate)
	assert.Equal(t, head, w.head(), "nothing written")

	// The same key on another path is another command.
	other := w.create("POST", "/v1/institutes", map[string]string{"name": "South"}, w.root, HeaderIdempotencyKey, "clinic-3")
	assert.NotEqual(t, first.IDs["clinicId"], other.IDs["instituteId"])
	requireProblem(t, w.do("POST", path, map[string]string{"name": "x"}, "Authorization", w.root, HeaderIdempotencyKey, "tab\there"),
		http.StatusBadRequest, SlugInvalidRequest)
	requireProblem(t, w.do("PUT", "/v1/clients/"+w.k1+"/care-team", map[string]any{"careTeam": []string{w.p1}}, "Authorization", w.prov1, "If-Match", "W/\"1\""),
		http.StatusBadRequest, SlugInvalidRequest)
}
