package api

import (
	"context"
	"net/http"
	"strconv"
)

// accessLog lists the reads of a client's information, oldest first, to
// auditors and clinic admins of the client's clinic. Reading the log is
// itself recorded.
func (c *careRoutes) accessLog(w http.ResponseWriter, r *http.Request) {
	c.accessRecords(w, r, func(p Principal, clientID string) (string, error) {
		return c.mayReadClient(r.Context(), p, clientID, careClientNotFound())
	}, c.cfg.AccessLog.ForClient)
}

// accessRecords answers one page of a client's access records from list,
// once authorize has said the caller may read them (and in which clinic).
func (c *careRoutes) accessRecords(w http.ResponseWriter, r *http.Request,
	authorize func(p Principal, clientID string) (clinicID string, err error),
	list func(ctx context.Context, clientID string, after int64, limit int) ([]AccessRecord, error)) {
	p, _, err := readParams(r)
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
	clientID := r.PathValue("clientId")
	clinicID, err := authorize(p, clientID)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	// One more than asked tells whether another page follows.
	recs, err := list(r.Context(), clientID, after, page.Limit+1)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := PageResponse[AccessRecord]{Items: recs}
	if len(recs) > page.Limit {
		out.Items = recs[:page.Limit]
		out.NextCursor = EncodeCursor(strconv.FormatInt(out.Items[page.Limit-1].Seq, 10))
	}
	c.answer(w, r, access{clinicID: clinicID, clients: []string{clientID}, objects: map[string]string{"clientId": clientID}}, out)
}
