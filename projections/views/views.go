// Package views holds careflow's main read models, each a
// projections.Projection with tables of its own in the read-model database:
//
//   - provider_inbox: what needs each provider of a client's care team;
//   - client_sessions: a client's sessions as the client may see them;
//   - session_view: one session in full, for the care team;
//   - clinic_overview: a clinic's clients, sessions and overdue work;
//   - score_history: a client's questionnaire scores over time.
//
// Every read model answers through query functions that return plain
// structs with JSON tags (camelCase, RFC 3339 times) for the API. Who may
// call which query (a client only for their own sessions, a provider only
// for their clients) is the API's authorization, not the read model's.
//
// Times are stored as BIGINT Unix nanoseconds (NULL when absent) and
// booleans as INTEGER 0/1, so the SQL stays portable to PostgreSQL.
package views

import (
	"errors"

	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/projections"
)

// ErrNotFound: the read model holds nothing under that id.
var ErrNotFound = errors.New("views: not found")

// All returns every read model of this package, sharing one decoder so an
// event is decoded once for all of them.
func All(reg *codec.Registry) []projections.Projection {
	dec := newDecoder(reg)
	all := []interface {
		projections.Projection
		reads() typeSet
	}{
		newInboxProjection(dec),
		newClientSessions(dec),
		newSessionView(dec),
		newClinicOverview(dec),
		newScoreHistory(dec),
	}
	out := make([]projections.Projection, len(all))
	for i, p := range all {
		dec.share(p.reads())
		out[i] = p
	}
	return out
}

// NewProviderInbox returns the provider inbox projection alone.
func NewProviderInbox(reg *codec.Registry) projections.Projection {
	return newInboxProjection(newDecoder(reg))
}

// NewClientSessions returns the client session list projection alone.
func NewClientSessions(reg *codec.Registry) projections.Projection {
	return newClientSessions(newDecoder(reg))
}

// NewSessionView returns the session view projection alone.
func NewSessionView(reg *codec.Registry) projections.Projection {
	return newSessionView(newDecoder(reg))
}

// NewClinicOverview returns the clinic overview projection alone.
func NewClinicOverview(reg *codec.Registry) projections.Projection {
	return newClinicOverview(newDecoder(reg))
}

// NewScoreHistory returns the score history projection alone.
func NewScoreHistory(reg *codec.Registry) projections.Projection {
	return newScoreHistory(newDecoder(reg))
}
