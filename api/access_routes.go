package api

import (
	"net/http"
	"strconv"
)

// accessLog lists the reads of a client's information, oldest first, to
// auditors and clinic admins of the client's clinic. Reading the log is
// itself recorded.
func (c *careRoutes) accessLog(w http.ResponseWriter, r *http.Request) {
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
	clinicID, err := c.mayReadClient(r.Context(), p, clientID, careClientNotFound())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	// One more than asked tells whether another page follows.
	recs, err := c.cfg.AccessLog.ForClient(r.Context(), clientID, after, page.Limit+1)
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
