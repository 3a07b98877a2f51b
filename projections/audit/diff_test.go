package audit_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections/audit"
)

// changesByPath indexes a diff's changes, decoding both sides.
func changesByPath(t *testing.T, d audit.StreamDiff) map[string][2]any {
	t.Helper()
	out := map[string][2]any{}
	decode := func(raw json.RawMessage) any {
		if raw == nil {
			return nil
		}
		var v any
		require.NoError(t, json.Unmarshal(raw, &v))
		return v
	}
	for _, c := range d.Changes {
		_, dup := out[c.Path]
		require.False(t, dup, "path %s listed twice", c.Path)
		out[c.Path] = [2]any{decode(c.From), decode(c.To)}
	}
	return out
}

func TestDiffBetweenTwoVersionsOfASession(t *testing.T) {
	h := runHistory(t)
	w := h.w
	stream := eventstore.NewStreamID(care.StreamType, h.s1)

	d, err := audit.NewTimeTravel(w.store, w.codec).Diff(w.ctx, stream, h.activatedS1, h.closedS1)
	require.NoError(t, err)
	assert.Equal(t, audit.ModelSession, d.Model)
	require.Len(t, d.Events, int(h.closedS1-h.activatedS1))
	for i, e := range d.Events {
		assert.Equal(t, h.activatedS1+int64(i)+1, e.Version)
	}
	assert.Equal(t, "assignment.started", d.Events[0].Type)
	assert.Equal(t, "session.closed", d.Events[len(d.Events)-1].Type)

	changes := changesByPath(t, d)
	assert.Equal(t, [2]any{"active", "closed"}, changes["status"])
	assert.Equal(t, [2]any{"given", "completed"}, changes["assignments[0].status"])
	assert.Equal(t, [2]any{false, true}, changes["assignments[0].done"])
	assert.Equal(t, [2]any{float64(0), float64(9)}, changes["assignments[0].answered"])
	assert.Equal(t, [2]any{float64(1), float64(2)}, changes["messages"])
	assert.Equal(t, [2]any{nil, true}, changes["closedEarly"])
	assert.Equal(t, [2]any{nil, w.p1.ID}, changes["closedBy"])
	score := changes["assignments[0].score"]
	assert.Nil(t, score[0])
	assert.EqualValues(t, 18, score[1].(map[string]any)["total"])
	feedback := changes["assignments[0].feedback[0]"]
	assert.Nil(t, feedback[0])
	assert.EqualValues(t, 2, feedback[1].(map[string]any)["comments"])
	assert.NotContains(t, changes, "title", "unchanged fields are not listed")
	assert.NotContains(t, changes, "assignments[1].status", "the GAD-7 stayed given")

	// The diff is the difference of the two rebuilt states: the time-travel
	// views at those versions' instants.
	before, err := w.tt.Session(w.ctx, h.s1, d.Events[0].RecordedAt.Add(-1))
	require.NoError(t, err)
	require.Equal(t, h.activatedS1, before.Version)
	after, err := w.tt.Session(w.ctx, h.s1, d.Events[len(d.Events)-1].RecordedAt)
	require.NoError(t, err)
	require.Equal(t, h.closedS1, after.Version)
	assert.Equal(t, "active", before.Session.Status)
	assert.Equal(t, "closed", after.Session.Status)

	raw, err := json.Marshal(d)
	require.NoError(t, err)
	for _, canary := range canaries {
		assert.NotContains(t, string(raw), canary)
	}
}

func TestDiffFromTheStartAndOfNothing(t *testing.T) {
	h := runHistory(t)
	w := h.w
	stream := eventstore.NewStreamID(care.StreamType, h.s1)

	fromStart, err := w.tt.Diff(w.ctx, stream, 0, 1)
	require.NoError(t, err)
	changes := changesByPath(t, fromStart)
	assert.Equal(t, [2]any{"", "scheduled"}, changes["status"])
	assert.Equal(t, [2]any{"", h.s1}, changes["sessionId"])
	require.Len(t, fromStart.Events, 1)
	assert.Equal(t, "session.scheduled", fromStart.Events[0].Type)

	same, err := w.tt.Diff(w.ctx, stream, 3, 3)
	require.NoError(t, err)
	assert.Empty(t, same.Events)
	assert.Empty(t, same.Changes)

	for _, bad := range [][2]int64{{-1, 2}, {3, 2}, {0, h.closedS1 + 100}} {
		_, err := w.tt.Diff(w.ctx, stream, bad[0], bad[1])
		assert.ErrorIs(t, err, audit.ErrInvalidQuery, "versions %v", bad)
	}
}

func TestDiffOfAClientAndOfAStreamWithoutStateModel(t *testing.T) {
	h := runHistory(t)
	w := h.w

	d, err := w.tt.Diff(w.ctx, h.clientStreamK1, h.teamChangedAt-1, h.teamChangedAt)
	require.NoError(t, err)
	assert.Equal(t, audit.ModelClient, d.Model)
	require.Len(t, d.Events, 1)
	assert.Equal(t, "client.care_team_changed", d.Events[0].Type)
	changes := changesByPath(t, d)
	assert.Equal(t, [2]any{w.p2.ID, w.p3.ID}, changes["careTeam[1]"])
	assert.Len(t, d.Changes, 1)

	clinic := eventstore.NewStreamID(commands.StreamClinic, w.clinic)
	cd, err := w.tt.Diff(w.ctx, clinic, 0, 2)
	require.NoError(t, err)
	assert.Empty(t, cd.Model)
	assert.Empty(t, cd.Changes)
	require.Len(t, cd.Events, 2)
	assert.Equal(t, "clinic.created", cd.Events[0].Type)
}
