package commands_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
)

// raceOnce is a store that, on the first append to one stream, lets
// something else happen first (another writer's command), so the append
// loses the version race and the handler decides again.
type raceOnce struct {
	eventstore.Store
	stream  eventstore.StreamID
	meddled bool
	meddle  func()
}

func (r *raceOnce) Append(ctx context.Context, s eventstore.StreamID, v eventstore.ExpectedVersion, evs []eventstore.NewEvent) (eventstore.AppendResult, error) {
	if s == r.stream && !r.meddled {
		r.meddled = true
		r.meddle()
	}
	return r.Store.Append(ctx, s, v, evs)
}

// A provider taken off the care team while their command was being
// decided is refused when the command is decided again, not let through
// on the standing checked before the race.
func TestCareCommandRechecksTheTeamAfterAConcurrentChange(t *testing.T) {
	w := newCareWorld(t)
	session, _ := w.active()
	racing := &raceOnce{Store: w.store, stream: eventstore.NewStreamID(care.StreamType, session), meddle: func() {
		// Another writer posts in the session (the version moves on) and
		// an admin takes p2 off k1's team.
		_, err := w.care.PostMessage(w.ctx, careMeta(w.k1), commands.PostMessage{SessionID: session, Text: "hello"})
		require.NoError(t, err)
		_, err = w.org.ChangeCareTeam(w.ctx, careMeta(w.p1), commands.ChangeCareTeam{ClientID: w.k1.ID, CareTeam: []string{w.p1.ID}})
		require.NoError(t, err)
	}}
	deps := w.deps
	deps.Store = racing
	org := commands.NewOrganization(deps)
	handlers := commands.NewCare(deps, org)

	before := w.version(session)
	_, err := handlers.PostMessage(w.ctx, careMeta(w.p2), commands.PostMessage{SessionID: session, Text: "from p2"})
	require.Error(t, err)
	assert.Equal(t, domain.KindForbidden, domain.KindOf(err), "%v", err)
	assert.Equal(t, before+1, w.version(session), "only the other writer's message was stored")
}
