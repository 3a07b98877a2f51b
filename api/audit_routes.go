package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections/audit"
)

// The audit routes are for auditors and clinic admins of the clinic the
// records belong to. They show envelopes (who, what type, when, which
// stream and version), never event bodies.

func invalidAuditQuery(err error) error {
	switch {
	case errors.Is(err, audit.ErrInvalidQuery):
		return badRequest(SlugInvalidRequest, "the timeline query cannot be answered: check from, to and limit")
	case errors.Is(err, audit.ErrTrailRebuilding):
		return &Error{Status: http.StatusServiceUnavailable, Slug: SlugUnavailable, Code: "audit-trail-rebuilding",
			Detail: "the audit trail is being rebuilt after an upgrade: ask without from and to, or retry once it has caught up",
			Header: http.Header{"Retry-After": {"30"}}}
	}
	return err
}

// positionCursor reads a page cursor holding a global position.
func positionCursor(page Page) (int64, error) {
	if page.After == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(page.After, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest(SlugInvalidRequest, "cursor is not one this server made; start again without it",
			FieldError{Field: "cursor", Message: "unknown cursor", Slug: "invalid-cursor"})
	}
	return n, nil
}

// clientTimeline lists every event that touched a client, recorded
// between from and to. Without asOf it reads the audit trail read model
// (waiting for X-Careflow-Min-Position when sent); with asOf it reads the
// event log itself up to that instant, which proves what the trail says.
func (c *careRoutes) clientTimeline(w http.ResponseWriter, r *http.Request) {
	p, minPos, err := readParams(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	page, err := ParsePage(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	after, err := positionCursor(page)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var instants [3]time.Time
	for i, name := range []string{"from", "to", "asOf"} {
		if instants[i], err = parseInstant(r, name); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	from, to, asOf := instants[0], instants[1], instants[2]
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		WriteError(w, r, badRequest(SlugInvalidRequest, "to must not be before from",
			FieldError{Field: "to", Message: "must not be before from", Slug: "invalid-range"}))
		return
	}
	clientID := r.PathValue("clientId")
	clinicID, err := c.mayReadClient(r.Context(), p, clientID, careClientNotFound())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var out PageResponse[audit.Entry]
	if asOf.IsZero() {
		if err := c.await(w, r, audit.TrailName, minPos); err != nil {
			WriteError(w, r, err)
			return
		}
		tl, err := audit.ClientTimeline(r.Context(), c.cfg.Views, c.store, clientID, from, to, audit.Page{After: after, Limit: page.Limit})
		if err != nil {
			WriteError(w, r, invalidAuditQuery(err))
			return
		}
		out.Items = tl.Entries
		if tl.Next > 0 {
			out.NextCursor = EncodeCursor(strconv.FormatInt(tl.Next, 10))
		}
	} else {
		entries, err := c.cfg.TimeTravel.ClientTimeline(r.Context(), clientID, asOf)
		if err != nil {
			WriteError(w, r, invalidAuditQuery(err))
			return
		}
		out.Items = []audit.Entry{}
		for _, e := range entries {
			if e.Position <= after || (!from.IsZero() && e.RecordedAt.Before(from)) || (!to.IsZero() && e.RecordedAt.After(to)) {
				continue
			}
			if len(out.Items) == page.Limit {
				out.NextCursor = EncodeCursor(strconv.FormatInt(out.Items[len(out.Items)-1].Position, 10))
				break
			}
			out.Items = append(out.Items, e)
		}
	}
	out.Items = emptyIfNil(out.Items)
	objects := map[string]string{"clientId": clientID}
	if !asOf.IsZero() {
		objects["asOf"] = r.URL.Query().Get("asOf")
	}
	c.answer(w, r, access{clinicID: clinicID, clients: []string{clientID}, objects: objects}, out)
}

// streamHistory lists every version of one stream ("session-<id>") from
// the event store, up to ?asOf= when given.
func (c *careRoutes) streamHistory(w http.ResponseWriter, r *http.Request) {
	p, _, err := readParams(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	asOf, err := parseInstant(r, "asOf")
	if err != nil {
		WriteError(w, r, err)
		return
	}
	notFound := domain.NotFound("stream-not-found", "no such stream")
	raw := r.PathValue("streamId")
	stream, err := eventstore.ParseStreamID(raw)
	if err != nil {
		WriteError(w, r, notFound)
		return
	}
	entries, err := audit.StreamHistory(r.Context(), c.store, stream)
	if err != nil {
		WriteError(w, r, invalidAuditQuery(err))
		return
	}
	clinicID := ""
	for _, e := range entries {
		if e.ClinicID != "" {
			clinicID = e.ClinicID
			break
		}
	}
	// A stream outside every clinic (accounts, institutes) is no clinic
	// auditor's business.
	if err := c.mayReadClinic(r.Context(), p, clinicID, notFound); err != nil {
		WriteError(w, r, err)
		return
	}
	items := make([]audit.Entry, 0, len(entries))
	for _, e := range entries {
		if !asOf.IsZero() && e.RecordedAt.After(asOf) {
			break
		}
		items = append(items, e)
	}
	a := access{clinicID: clinicID, objects: map[string]string{"stream": stream.String()}}
	switch stream.Type {
	case commands.StreamClient:
		a.clients = []string{stream.ID}
	case care.StreamType:
		h, err := c.session(r.Context(), stream.ID)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		a.clients = []string{h.ClientID}
	}
	c.answer(w, r, a, PageResponse[audit.Entry]{Items: items})
}
