package api

import (
	"net/http"
	"slices"
	"sort"
	"strconv"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/plans"
)

// BookResponse is one version of a book in full.
type BookResponse struct {
	ID       string     `json:"id"`
	ClinicID string     `json:"clinicId,omitempty"`
	BuiltIn  bool       `json:"builtIn"`
	Version  int        `json:"version"`
	Spec     books.Spec `json:"spec"`
}

// DesignPlanResponse is a design plan template.
type DesignPlanResponse struct {
	ID       string       `json:"id"`
	ClinicID string       `json:"clinicId"`
	Title    string       `json:"title"`
	Weeks    []plans.Week `json:"weeks"`
	Version  int64        `json:"version"`
}

func bookSummary(b books.Book) BookSummary {
	return BookSummary{ID: b.ID(), ClinicID: b.ClinicID(), BuiltIn: b.IsBuiltIn(), Kind: b.Kind(), Title: b.Title(), Version: b.Version()}
}

// callerClinics are the clinics the caller belongs to now, read from the
// directory rather than the token: a book list must not outlive a
// membership by the token's lifetime.
func (o *orgRoutes) callerClinics(r *http.Request) ([]string, error) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return nil, Unauthorized("this route needs an access token", "")
	}
	return o.dir.Clinics(r.Context(), p.Actor())
}

// singleQuery reads an optional query parameter given at most once.
func singleQuery(r *http.Request, name string) (string, error) {
	vs, ok := r.URL.Query()[name]
	if !ok {
		return "", nil
	}
	if len(vs) != 1 || vs[0] == "" {
		return "", badRequest(SlugInvalidRequest, name+" must be given once, not empty",
			FieldError{Field: name, Message: "must be given once, not empty", Slug: "invalid-" + name})
	}
	return vs[0], nil
}

// listBooks lists the books the caller's clinics can assign: the built-in
// books and the clinics' own (current versions), by id. ?clinicId= narrows
// to one of the caller's clinics.
func (o *orgRoutes) listBooks(w http.ResponseWriter, r *http.Request) {
	page, err := ParsePage(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	only, err := singleQuery(r, "clinicId")
	if err != nil {
		WriteError(w, r, err)
		return
	}
	clinics, err := o.callerClinics(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if only != "" {
		if !slices.Contains(clinics, only) {
			WriteError(w, r, domain.NotFound("clinic-not-found", "no clinic %q", only))
			return
		}
		clinics = []string{only}
	}
	all, err := o.dir.ClinicBooks(r.Context(), clinics)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	for _, b := range books.BuiltIn() {
		all = append(all, bookSummary(b))
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	start := sort.Search(len(all), func(i int) bool { return all[i].ID > page.After })
	end := min(start+page.Limit, len(all))
	resp := PageResponse[BookSummary]{Items: all[start:end]}
	if end < len(all) {
		resp.NextCursor = EncodeCursor(all[end-1].ID)
	}
	writeJSON(w, http.StatusOK, resp)
}

// getBook answers one book: the current version, or ?version=N. A clinic
// book of a clinic the caller does not belong to is not found.
func (o *orgRoutes) getBook(w http.ResponseWriter, r *http.Request) {
	version := 0
	raw, err := singleQuery(r, "version")
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || raw[0] == '+' {
			WriteError(w, r, badRequest(SlugInvalidRequest, "version must be a positive integer",
				FieldError{Field: "version", Message: "must be a positive integer", Slug: "invalid-version"}))
			return
		}
		version = n
	}
	bookID := r.PathValue("bookId")
	notFound := domain.NotFound("book-not-found", "no book %q in your clinics", bookID)
	clinicID := ""
	if _, builtIn := books.BuiltInBook(bookID); !builtIn {
		owner, ok, err := o.dir.BookClinic(r.Context(), bookID)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		clinics, err := o.callerClinics(r)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if !ok || !slices.Contains(clinics, owner) {
			WriteError(w, r, notFound)
			return
		}
		clinicID = owner
	}
	var b books.Book
	if version > 0 {
		b, err = o.org.BookVersion(r.Context(), clinicID, bookID, version)
	} else {
		b, err = o.org.Book(r.Context(), clinicID, bookID)
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.Header().Set("ETag", ETag(int64(b.Version())))
	writeJSON(w, http.StatusOK, BookResponse{ID: b.ID(), ClinicID: b.ClinicID(), BuiltIn: b.IsBuiltIn(), Version: b.Version(), Spec: b.Spec()})
}

// defineBook defines a clinic's own book at version 1; the body is the
// book's content (books.Spec).
func (o *orgRoutes) defineBook(w http.ResponseWriter, r *http.Request) {
	var spec books.Spec
	m, err := commandRequest(w, r, false, &spec)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusCreated, func() (map[string]string, commands.Result, error) {
		res, err := o.org.DefineBook(r.Context(), m, commands.DefineBook{ClinicID: r.PathValue("clinicId"), Spec: spec})
		return map[string]string{"bookId": res.Stream.ID}, res, err
	})
}

// reviseBook publishes the next version of a clinic's book; the answer's
// version (and ETag) is the book's version. A revision equal to the current
// version writes nothing and answers the current version.
func (o *orgRoutes) reviseBook(w http.ResponseWriter, r *http.Request) {
	var spec books.Spec
	m, err := commandRequest(w, r, true, &spec)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusOK, func() (map[string]string, commands.Result, error) {
		bookID := r.PathValue("bookId")
		res, err := o.org.ReviseBook(r.Context(), m, commands.ReviseBook{ClinicID: r.PathValue("clinicId"), BookID: bookID, Spec: spec})
		return map[string]string{"bookId": bookID}, res, err
	})
}

type createDesignPlanRequest struct {
	Title string       `json:"title"`
	Weeks []plans.Week `json:"weeks"`
}

func (o *orgRoutes) createDesignPlan(w http.ResponseWriter, r *http.Request) {
	var req createDesignPlanRequest
	m, err := commandRequest(w, r, false, &req)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	runCommand(w, r, http.StatusCreated, func() (map[string]string, commands.Result, error) {
		res, err := o.org.CreateDesignPlan(r.Context(), m, commands.CreateDesignPlan{
			ClinicID: r.PathValue("clinicId"), Title: req.Title, Weeks: req.Weeks})
		return map[string]string{"designPlanId": res.Stream.ID}, res, err
	})
}

func (o *orgRoutes) getDesignPlan(w http.ResponseWriter, r *http.Request) {
	p, err := o.org.DesignPlan(r.Context(), r.PathValue("clinicId"), r.PathValue("planId"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.Header().Set("ETag", ETag(p.Version()))
	writeJSON(w, http.StatusOK, DesignPlanResponse{ID: p.ID(), ClinicID: p.ClinicID(), Title: p.Title(), Weeks: p.Weeks(), Version: p.Version()})
}
