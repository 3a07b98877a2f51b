package audit_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/projections/audit"
)

func TestAsOfEachStepEqualsWhatTheLiveViewShowed(t *testing.T) {
	for _, backend := range []string{"memory", "sqlite"} {
		t.Run(backend, func(t *testing.T) { testAsOfEachStep(t, runHistoryOn(t, backend)) })
	}
}

func testAsOfEachStep(t *testing.T, h *history) {
	w := h.w
	require.NotEmpty(t, h.steps)
	for _, snap := range h.steps {
		t.Run(snap.step, func(t *testing.T) {
			for id, live := range snap.sessions {
				got, err := w.tt.Session(w.ctx, id, snap.at)
				require.NoError(t, err)
				assert.Equal(t, live, got.Session, "session %s as its aggregate held it", id)
				assert.Equal(t, snap.viewed[id], got.Session, "session %s as the care team's read model showed it", id)
				assert.Equal(t, snap.versions[id], got.Version, "version of session %s", id)
				assert.False(t, got.RecordedAt.After(snap.at))
				for _, a := range live.Assignments {
					ga, err := w.tt.Assignment(w.ctx, id, a.AssignmentID, snap.at)
					require.NoError(t, err)
					assert.Equal(t, a, ga.Assignment)
					assert.Equal(t, live.Status, ga.SessionStatus)
				}
			}
			client, err := w.tt.Client(w.ctx, w.k1.ID, snap.at)
			require.NoError(t, err)
			assert.Equal(t, snap.client, client.Client)

			// The timeline rebuilt from the log equals what the read model
			// listed live, and the read model asked about that instant later
			// still lists the same.
			asOf, err := w.tt.ClientTimeline(w.ctx, w.k1.ID, snap.at)
			require.NoError(t, err)
			assert.Equal(t, snap.timeline, asOf)
			assert.Equal(t, snap.timeline, w.timeline(w.k1.ID, time.Time{}, snap.at))

			// Nothing of a later step shows.
			for _, e := range asOf {
				assert.LessOrEqual(t, e.Position, snap.head)
			}
		})
	}
	// The script went through the states worth checking.
	final := h.steps[len(h.steps)-1]
	assert.Equal(t, string(care.StateClosed), final.sessions[h.s1].Status)
	assert.True(t, final.sessions[h.s1].ClosedEarly)
	assert.Equal(t, string(care.StateCancelled), final.sessions[h.s3].Status)
	assert.Equal(t, string(care.StateActive), final.sessions[h.s2].Status)
	assert.True(t, final.sessions[h.s2].Assignments[0].Overdue)
	a1 := final.sessions[h.s1].Assignments[0]
	assert.Equal(t, "completed", a1.Status)
	require.NotNil(t, a1.Score)
	assert.Equal(t, 18, a1.Score.Total)
	assert.True(t, a1.Done)
	require.Len(t, a1.Feedback, 1)
	assert.Equal(t, 2, a1.Feedback[0].Comments)
	a2 := final.sessions[h.s1].Assignments[1]
	assert.Equal(t, h.a2, a2.AssignmentID)
	assert.Equal(t, "given", a2.Status, "left open when s1 closed early")
	assert.Equal(t, 2, final.sessions[h.s1].Messages)
	assert.Equal(t, 2, final.sessions[h.s1].Notes)
	assert.Equal(t, 1, final.sessions[h.s1].Discussion)
	assert.Equal(t, []string{w.p1.ID, w.p3.ID}, final.client.CareTeam)
}

func TestAsOfShowsTheSessionAsItWasBetweenSteps(t *testing.T) {
	h := runHistory(t)
	w := h.w
	// Halfway between two steps the state is the earlier step's.
	for i := 0; i+1 < len(h.steps); i++ {
		between := h.steps[i].at.Add(h.steps[i+1].at.Sub(h.steps[i].at) / 2)
		got, err := w.tt.Session(w.ctx, h.s1, between)
		require.NoError(t, err)
		assert.Equal(t, h.steps[i].sessions[h.s1], got.Session, "between %q and %q", h.steps[i].step, h.steps[i+1].step)
	}
}

func TestEventAppendedAfterAsOfNeverShows(t *testing.T) {
	h := runHistory(t)
	w := h.w
	asOf := w.clock()
	before, err := w.tt.Session(w.ctx, h.s2, asOf)
	require.NoError(t, err)
	timelineBefore, err := w.tt.ClientTimeline(w.ctx, w.k1.ID, asOf)
	require.NoError(t, err)

	w.at(asOf.Add(time.Second))
	res, err := w.care.PostMessage(w.ctx, meta(w.k1), commands.PostMessage{SessionID: h.s2, Text: canaryClientMsg})
	require.NoError(t, err)
	w.caughtUp()

	again, err := w.tt.Session(w.ctx, h.s2, asOf)
	require.NoError(t, err)
	assert.Equal(t, before, again)
	assert.Equal(t, 0, again.Session.Messages)
	timelineAgain, err := w.tt.ClientTimeline(w.ctx, w.k1.ID, asOf)
	require.NoError(t, err)
	assert.Equal(t, timelineBefore, timelineAgain)
	assert.Equal(t, timelineBefore, w.timeline(w.k1.ID, time.Time{}, asOf), "the read model cut at asOf agrees")

	// A moment later it shows.
	after, err := w.tt.Session(w.ctx, h.s2, asOf.Add(time.Second))
	require.NoError(t, err)
	assert.Equal(t, 1, after.Session.Messages)
	assert.Equal(t, res.Position, after.Position)
	timelineAfter, err := w.tt.ClientTimeline(w.ctx, w.k1.ID, asOf.Add(time.Second))
	require.NoError(t, err)
	require.Len(t, timelineAfter, len(timelineBefore)+1)
	assert.Equal(t, res.Position, timelineAfter[len(timelineAfter)-1].Position)
}

func TestAsOfBeforeAnythingWasRecordedIsNotFound(t *testing.T) {
	h := runHistory(t)
	w := h.w
	scheduled := h.steps[0].at
	_, err := w.tt.Session(w.ctx, h.s1, scheduled.Add(-time.Nanosecond))
	require.ErrorIs(t, err, audit.ErrNotFound)
	_, err = w.tt.Session(w.ctx, h.s1, scheduled)
	require.NoError(t, err)

	// a3 was given in s2 only at its step: before it, s2 exists without it.
	given := slices.IndexFunc(h.steps, func(s snapshot) bool { return s.step == "p3 assigns GAD-7 in s2" })
	require.Positive(t, given)
	_, err = w.tt.Assignment(w.ctx, h.s2, h.a3, h.steps[given-1].at)
	require.ErrorIs(t, err, audit.ErrNotFound)
	a, err := w.tt.Assignment(w.ctx, h.s2, h.a3, h.steps[given].at)
	require.NoError(t, err)
	assert.Equal(t, "given", a.Assignment.Status)

	_, err = w.tt.Client(w.ctx, "nobody", h.steps[0].at)
	require.ErrorIs(t, err, audit.ErrNotFound)
	none, err := w.tt.ClientTimeline(w.ctx, w.k1.ID, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	assert.Empty(t, none)
	_, err = w.tt.ClientTimeline(w.ctx, " ", h.steps[0].at)
	require.ErrorIs(t, err, audit.ErrInvalidQuery)
}

func TestSnapshotsAreJSONWithoutBodies(t *testing.T) {
	h := runHistory(t)
	w := h.w
	final := h.steps[len(h.steps)-1].at
	s, err := w.tt.Session(w.ctx, h.s1, final)
	require.NoError(t, err)
	data, err := json.Marshal(s)
	require.NoError(t, err)
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(data, &decoded))
	session := decoded["session"].(map[string]any)
	assert.Equal(t, "closed", session["status"])
	assert.EqualValues(t, 2, session["messages"])
	assignment := session["assignments"].([]any)[0].(map[string]any)
	assert.Equal(t, "completed", assignment["status"])
	assert.EqualValues(t, 18, assignment["score"].(map[string]any)["total"])
	assert.EqualValues(t, 9, assignment["answered"])

	c, err := w.tt.Client(w.ctx, w.k1.ID, final)
	require.NoError(t, err)
	clientJSON, err := json.Marshal(c)
	require.NoError(t, err)
	timeline, err := w.tt.ClientTimeline(w.ctx, w.k1.ID, final)
	require.NoError(t, err)
	timelineJSON, err := json.Marshal(timeline)
	require.NoError(t, err)
	for _, canary := range canaries {
		assert.NotContains(t, string(data), canary)
		assert.NotContains(t, string(clientJSON), canary)
		assert.NotContains(t, string(timelineJSON), canary)
	}
}

func TestStreamHistoryListsEveryVersion(t *testing.T) {
	h := runHistory(t)
	w := h.w
	stream := eventstore.NewStreamID(care.StreamType, h.s1)
	history, err := audit.StreamHistory(w.ctx, w.store, stream)
	require.NoError(t, err)
	final := h.steps[len(h.steps)-1].versions[h.s1]
	require.Len(t, history, int(final))
	for i, e := range history {
		assert.Equal(t, int64(i+1), e.Version)
		assert.Equal(t, stream.String(), e.Stream)
	}
	assert.Equal(t, "session.scheduled", history[0].Type)
	assert.Equal(t, w.p1.ID, history[0].ActorID)
	assert.Equal(t, "provider", history[0].ActorRole)
	assert.NotEmpty(t, history[0].CommandID)
	assert.Equal(t, history[0].CommandID, history[0].CorrelationID)
	assert.Equal(t, w.clinic, history[0].ClinicID)
	assert.Equal(t, h.steps[0].at, history[0].OccurredAt)
	assert.Equal(t, h.steps[0].at, history[0].RecordedAt)
	assert.Equal(t, "assignment:"+h.a1, history[1].Subject, "the homework given with the session")

	// The read model's entries of the session, in the client's timeline,
	// are the same: the trail copies the envelope exactly.
	w.caughtUp()
	var trail []audit.Entry
	for _, e := range w.timeline(w.k1.ID, time.Time{}, time.Time{}) {
		if e.Stream == stream.String() {
			trail = append(trail, e)
		}
	}
	assert.Equal(t, history, trail)

	empty, err := audit.StreamHistory(w.ctx, w.store, eventstore.NewStreamID(care.StreamType, "nothing"))
	require.NoError(t, err)
	assert.Empty(t, empty)
	_, err = audit.StreamHistory(w.ctx, w.store, eventstore.StreamID{})
	require.ErrorIs(t, err, audit.ErrInvalidQuery)
}
