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
// PHI columns (names, titles, texts, reasons, answers, scores, severities
// and flags) hold their values sealed under the client's data key, so the
// read-model file reveals no PHI and a forgotten client's rows read as
// eventstore.Redacted (see sealing.go).
//
// Times are stored as BIGINT Unix nanoseconds (NULL when absent) and
// booleans as INTEGER 0/1, so the SQL stays portable to PostgreSQL.
package views

import (
	"errors"

	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/projections"
)

// ErrNotFound: the read model holds nothing under that id.
var ErrNotFound = errors.New("views: not found")

// All returns every read model of this package, sharing one decoder so an
// event is decoded once for all of them. Their PHI columns are sealed with
// sealer under each client's key; a nil sealer is ErrNoSealer.
func All(reg *codec.Registry, sealer eventstore.Sealer) ([]projections.Projection, error) {
	c, err := newCipher(sealer)
	if err != nil {
		return nil, err
	}
	dec := newDecoder(reg)
	all := []interface {
		projections.Projection
		reads() typeSet
	}{
		newInboxProjection(dec, c),
		newClientSessions(dec, c),
		newSessionView(dec, c),
		newClinicOverview(dec),
		newScoreHistory(dec, c),
	}
	out := make([]projections.Projection, len(all))
	for i, p := range all {
		dec.share(p.reads())
		out[i] = p
	}
	return out, nil
}

// NewProviderInbox returns the provider inbox projection alone.
func NewProviderInbox(reg *codec.Registry, sealer eventstore.Sealer) (projections.Projection, error) {
	c, err := newCipher(sealer)
	if err != nil {
		return nil, err
	}
	return newInboxProjection(newDecoder(reg), c), nil
}

// NewClientSessions returns the client session list projection alone.
func NewClientSessions(reg *codec.Registry, sealer eventstore.Sealer) (projections.Projection, error) {
	c, err := newCipher(sealer)
	if err != nil {
		return nil, err
	}
	return newClientSessions(newDecoder(reg), c), nil
}

// NewSessionView returns the session view projection alone.
func NewSessionView(reg *codec.Registry, sealer eventstore.Sealer) (projections.Projection, error) {
	c, err := newCipher(sealer)
	if err != nil {
		return nil, err
	}
	return newSessionView(newDecoder(reg), c), nil
}

// NewClinicOverview returns the clinic overview projection alone. It needs
// no Sealer: it holds no client PHI, only ids, states, times, counts and
// the clinic's and its providers' names.
func NewClinicOverview(reg *codec.Registry) projections.Projection {
	return newClinicOverview(newDecoder(reg))
}

// NewScoreHistory returns the score history projection alone.
func NewScoreHistory(reg *codec.Registry, sealer eventstore.Sealer) (projections.Projection, error) {
	c, err := newCipher(sealer)
	if err != nil {
		return nil, err
	}
	return newScoreHistory(newDecoder(reg), c), nil
}
