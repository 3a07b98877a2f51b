package commands_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
)

// Meta.IfVersion (HTTP If-Match) holds for every command: a command decided
// on a version the stream has moved past is refused, not retried.
func TestIfVersionRefusesAStaleDecision(t *testing.T) {
	w := newOrgWorld(t)
	v := w.version(commands.StreamClient, "k1")

	// Someone else changes the team after our caller read version v.
	_, err := w.org.ChangeCareTeam(w.ctx, orgMeta(orgCA1), commands.ChangeCareTeam{ClientID: "k1", CareTeam: []string{"p1", "p2"}})
	require.NoError(t, err)
	before := w.head()

	m := orgMeta(orgCA1)
	m.IfVersion = v
	_, err = w.org.ChangeCareTeam(w.ctx, m, commands.ChangeCareTeam{ClientID: "k1", CareTeam: []string{"p2"}})
	var stale *commands.StaleVersionError
	require.True(t, errors.As(err, &stale), "got %v", err)
	assert.Equal(t, v, stale.Expected)
	assert.Equal(t, v+1, stale.Actual)
	assert.Equal(t, before, w.head(), "a stale command writes nothing")

	m = orgMeta(orgCA1)
	m.IfVersion = v + 1
	res, err := w.org.ChangeCareTeam(w.ctx, m, commands.ChangeCareTeam{ClientID: "k1", CareTeam: []string{"p2"}})
	require.NoError(t, err)
	assert.Equal(t, v+2, res.Version)
}
