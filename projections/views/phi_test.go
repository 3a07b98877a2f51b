package views_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/commands"
	"github.com/careflow/careflow/domain"
	"github.com/careflow/careflow/domain/books"
	"github.com/careflow/careflow/domain/care"
	"github.com/careflow/careflow/eventstore"
	"github.com/careflow/careflow/eventstore/codec"
	"github.com/careflow/careflow/projections"
	"github.com/careflow/careflow/projections/views"
	"github.com/careflow/careflow/projections/views/viewstest"
)

// phiLoop is one client's care loop with a distinctive canary string in
// every PHI text it writes.
type phiLoop struct {
	tag    string
	client domain.Actor
	// s1 holds the conversation and two completed questionnaires (the
	// PHQ-9 urgent and awaiting feedback, the GAD-7 with a feedback
	// thread); s2 is cancelled and s3 closed, each with a reason.
	s1, s2, s3 string
	phq, gad   string
}

// canary is the loop's canary for one field.
func (l phiLoop) canary(field string) string { return "CANARY-" + l.tag + "-" + field }

// canaries are every canary the loop writes.
func (l phiLoop) canaries() []string {
	var out []string
	for _, f := range []string{"NAME", "TITLE", "DESC", "MSG-CLIENT", "MSG-TEAM", "MSG-OPEN", "FEEDBACK", "COMMENT-CLIENT",
		"COMMENT-TEAM", "DISCUSSION", "NOTE", "CANCEL", "CLOSE"} {
		out = append(out, l.canary(f))
	}
	return out
}

// runPHILoops drives one loop per tag, step by step for all of them so
// the clock only moves forward.
func runPHILoops(t *testing.T, w *world, tags ...string) []*phiLoop {
	t.Helper()
	ctx := w.ctx
	loops := make([]*phiLoop, len(tags))
	for i, tag := range tags {
		l := &phiLoop{tag: tag}
		l.client = w.registerClient(l.canary("NAME"), w.p1.ID)
		sched, err := w.care.ScheduleSession(ctx, w.meta(w.p1), commands.ScheduleSession{
			ClientID: l.client.ID, Title: l.canary("TITLE"), Description: l.canary("DESC"), Start: careStart, Repeat: 2,
			Homework: []string{books.PHQ9ID, books.GAD7ID},
		})
		require.NoError(t, err)
		l.s1, l.s2 = sched.Sessions[0].ID, sched.Sessions[1].ID
		single, err := w.care.ScheduleSession(ctx, w.meta(w.p1), commands.ScheduleSession{
			ClientID: l.client.ID, Title: l.canary("TITLE"), Start: careStart,
		})
		require.NoError(t, err)
		l.s3 = single.Sessions[0].ID
		as := w.session(l.s1).Assignments
		l.phq, l.gad = as[0].ID, as[1].ID
		loops[i] = l
	}
	w.at(careStart)
	for _, l := range loops {
		for _, s := range []string{l.s1, l.s3} {
			_, err := w.care.ActivateSession(ctx, w.meta(w.sys), commands.ActivateSession{SessionID: s})
			require.NoError(t, err)
		}
	}
	w.at(careStart.Add(time.Hour))
	for _, l := range loops {
		_, err := w.care.PostMessage(ctx, w.meta(l.client), commands.PostMessage{SessionID: l.s1, Text: l.canary("MSG-CLIENT")})
		require.NoError(t, err)
		for _, a := range []struct {
			id      string
			answers []books.Answer
		}{{l.phq, answers(books.PHQ9ID, 1, 1, 1, 1, 1, 1, 1, 1, 2)}, {l.gad, answers(books.GAD7ID, 2)}} {
			_, err = w.care.StartAssignment(ctx, w.meta(l.client), commands.StartAssignment{SessionID: l.s1, AssignmentID: a.id})
			require.NoError(t, err)
			_, err = w.care.CompleteAssignment(ctx, w.meta(l.client), commands.CompleteAssignment{
				SessionID: l.s1, AssignmentID: a.id, Answers: a.answers,
			})
			require.NoError(t, err)
		}
	}
	w.at(careStart.Add(2 * time.Hour))
	for _, l := range loops {
		fb, err := w.care.GiveFeedback(ctx, w.meta(w.p1), commands.GiveFeedback{SessionID: l.s1, AssignmentID: l.gad, Text: l.canary("FEEDBACK")})
		require.NoError(t, err)
		for _, c := range []struct {
			by   domain.Actor
			text string
		}{{l.client, l.canary("COMMENT-CLIENT")}, {w.p1, l.canary("COMMENT-TEAM")}} {
			_, err = w.care.CommentOnFeedback(ctx, w.meta(c.by), commands.CommentOnFeedback{
				SessionID: l.s1, AssignmentID: l.gad, FeedbackID: fb.ID, Text: c.text,
			})
			require.NoError(t, err)
		}
		_, err = w.care.PostMessage(ctx, w.meta(w.p1), commands.PostMessage{SessionID: l.s1, Text: l.canary("MSG-TEAM")})
		require.NoError(t, err)
		_, err = w.care.PostMessage(ctx, w.meta(l.client), commands.PostMessage{SessionID: l.s1, Text: l.canary("MSG-OPEN")})
		require.NoError(t, err)
		_, err = w.care.PostDiscussion(ctx, w.meta(w.p1), commands.PostDiscussion{SessionID: l.s1, Text: l.canary("DISCUSSION")})
		require.NoError(t, err)
		_, err = w.care.WriteNote(ctx, w.meta(w.p1), commands.WriteNote{SessionID: l.s1, Text: l.canary("NOTE")})
		require.NoError(t, err)
		_, err = w.care.CancelSession(ctx, w.meta(w.p1), commands.CancelSession{SessionID: l.s2, Reason: l.canary("CANCEL")})
		require.NoError(t, err)
		_, err = w.care.CloseSession(ctx, w.meta(w.p1), commands.CloseSession{SessionID: l.s3, Reason: l.canary("CLOSE")})
		require.NoError(t, err)
	}
	w.caughtUp()
	return loops
}

// phqScore is what the loop's PHQ-9 (total 10, item 9 at 2) scores as.
func phqScore(t *testing.T) books.Score {
	t.Helper()
	b, ok := books.BuiltInBook(books.PHQ9ID)
	require.True(t, ok)
	score, err := b.Score(answers(books.PHQ9ID, 1, 1, 1, 1, 1, 1, 1, 1, 2))
	require.NoError(t, err)
	require.Equal(t, 10, score.Total)
	require.NotEmpty(t, score.Severity)
	require.Len(t, score.Flags, 1)
	require.NotEmpty(t, score.Flags[0].Reason)
	return score
}

// TestReadModelFileHoldsNoPHI: after a care loop with canaries in every
// PHI field, neither the read-model file nor its WAL holds any of them,
// nor the severity, flag reason or answers in clear, and every PHI column
// holds sealed values only; the query functions return them in clear.
func TestReadModelFileHoldsNoPHI(t *testing.T) {
	w := newWorld(t)
	loops := runPHILoops(t, w, "A", "B")
	score := phqScore(t)
	for _, l := range loops {
		assertLoopReads(t, w, w.db, l, func(canary string) string { return canary }, true)
	}
	assertPHIColumnsSealed(t, w.ctx, w.db)

	secrets := []string{score.Severity, score.Flags[0].Reason, `"itemId"`}
	for _, l := range loops {
		secrets = append(secrets, l.canaries()...)
	}
	scan := func(when string) {
		t.Helper()
		clearSeen := false
		for _, suffix := range []string{"", "-wal"} {
			raw, err := os.ReadFile(w.dbPath + suffix)
			if errors.Is(err, os.ErrNotExist) && suffix != "" {
				continue
			}
			require.NoError(t, err)
			for _, s := range secrets {
				assert.False(t, bytes.Contains(raw, []byte(s)), "%s: %s%s holds %q", when, filepath.Base(w.dbPath), suffix, s)
			}
			// What is not PHI stays in clear: the scan reads real rows.
			clearSeen = clearSeen || bytes.Contains(raw, []byte("Dr One"))
		}
		assert.True(t, clearSeen, "%s: a provider's name, kept in clear, is in the files", when)
	}
	scan("before the checkpoint")
	checkpoint(t, w.dbPath)
	scan("after the checkpoint")
}

// TestForgottenClientReadsRedacted: once one client's key is destroyed,
// every PHI field of theirs reads eventstore.Redacted while another
// client's read in clear, and a full rebuild (in place, and into a fresh
// database) succeeds and reads the same.
func TestForgottenClientReadsRedacted(t *testing.T) {
	w := newWorld(t)
	loops := runPHILoops(t, w, "A", "B")
	forgotten, kept := loops[0], loops[1]
	w.sealer.Destroy(forgotten.client.ID)

	redacted := func(string) string { return eventstore.Redacted }
	clear := func(canary string) string { return canary }
	check := func(db *projections.DB, when string) {
		t.Run(when, func(t *testing.T) {
			assertLoopReads(t, w, db, forgotten, redacted, false)
			assertLoopReads(t, w, db, kept, clear, true)
		})
	}
	check(w.db, "in place")
	before := openedTables(t, w.ctx, w.db)

	require.NoError(t, w.runner.Rebuild(w.ctx, projections.AllProjections))
	w.caughtUp()
	check(w.db, "rebuilt in place")
	assert.Equal(t, before, openedTables(t, w.ctx, w.db))
	assertPHIColumnsSealed(t, w.ctx, w.db)

	fresh, runner := startViews(t, t.Cleanup, w.store, w.reg, w.sealer, filepath.Join(t.TempDir(), "fresh.db"))
	waitViews(t, w.ctx, w.store, runner)
	check(fresh, "rebuilt afresh")
	assert.Equal(t, before, openedTables(t, w.ctx, fresh))
}

// assertLoopReads checks every PHI field of l's views as the query
// functions return them: each text is want(its canary); scored is whether
// the scores, severities, flags and answers read in clear (else they read
// as redacted: no total, flags or answers, Redacted severity).
func assertLoopReads(t *testing.T, w *world, db *projections.DB, l *phiLoop, want func(string) string, scored bool) {
	t.Helper()
	ctx := w.ctx
	score := phqScore(t)
	severity := eventstore.Redacted
	if scored {
		severity = score.Severity
	}

	in, err := views.Inbox(ctx, db, w.p1.ID, careStart.Add(6*day))
	require.NoError(t, err)
	var kinds []string
	for _, it := range in.Items {
		if it.ClientID != l.client.ID {
			continue
		}
		kinds = append(kinds, it.Kind)
		assert.Equal(t, want(l.canary("NAME")), it.ClientName, it.Kind)
		assert.Equal(t, want(l.canary("TITLE")), it.SessionTitle, it.Kind)
		if it.Kind == views.KindRisk {
			assert.Equal(t, severity, it.Severity)
			if scored {
				require.NotNil(t, it.Total)
				assert.Equal(t, 10, *it.Total)
				assert.Equal(t, score.Flags, it.Flags)
			} else {
				assert.Nil(t, it.Total)
				assert.Empty(t, it.Flags)
			}
		}
	}
	assert.ElementsMatch(t, []string{views.KindRisk, views.KindClientMessage, views.KindSessionEnding}, kinds)

	list, err := views.ClientSessions(ctx, db, l.client.ID)
	require.NoError(t, err)
	require.Len(t, list.Active, 1)
	require.Len(t, list.Cancelled, 1)
	require.Len(t, list.Closed, 1)
	active := list.Active[0]
	assert.Equal(t, want(l.canary("TITLE")), active.Title)
	assert.Equal(t, want(l.canary("DESC")), active.Description)
	assert.Equal(t, want(l.canary("CANCEL")), list.Cancelled[0].CancelReason)
	assert.Equal(t, want(l.canary("TITLE")), list.Closed[0].Title)
	require.Len(t, active.Assignments, 2)
	phq, gad := active.Assignments[0], active.Assignments[1]
	assert.Equal(t, severity, phq.Severity)
	if scored {
		require.NotNil(t, phq.Total)
		assert.Equal(t, 10, *phq.Total)
		assert.NotEmpty(t, gad.Severity)
		assert.NotEqual(t, eventstore.Redacted, gad.Severity)
	} else {
		assert.Nil(t, phq.Total)
		assert.Nil(t, gad.Total)
		assert.Equal(t, eventstore.Redacted, gad.Severity)
	}
	require.Len(t, gad.Feedback, 1)
	assert.Equal(t, want(l.canary("FEEDBACK")), gad.Feedback[0].Text)
	require.Len(t, gad.Feedback[0].Comments, 2)
	assert.Equal(t, want(l.canary("COMMENT-CLIENT")), gad.Feedback[0].Comments[0].Text)
	assert.Equal(t, want(l.canary("COMMENT-TEAM")), gad.Feedback[0].Comments[1].Text)
	detail, err := views.ClientSessionDetail(ctx, db, l.client.ID, l.s1)
	require.NoError(t, err)
	assert.Equal(t, []string{want(l.canary("MSG-CLIENT")), want(l.canary("MSG-TEAM")), want(l.canary("MSG-OPEN"))},
		postTexts(detail.Messages))

	sv, err := views.SessionView(ctx, db, l.s1)
	require.NoError(t, err)
	assert.Equal(t, want(l.canary("TITLE")), sv.Title)
	assert.Equal(t, want(l.canary("DESC")), sv.Description)
	assert.Equal(t, []string{want(l.canary("MSG-CLIENT")), want(l.canary("MSG-TEAM")), want(l.canary("MSG-OPEN"))},
		postTexts(sv.Messages))
	assert.Equal(t, []string{want(l.canary("DISCUSSION"))}, postTexts(sv.Discussion))
	assert.Equal(t, []string{want(l.canary("NOTE"))}, postTexts(sv.Notes))
	require.Len(t, sv.Assignments, 2)
	svPHQ, svGAD := sv.Assignments[0], sv.Assignments[1]
	assert.Equal(t, severity, svPHQ.Severity)
	assert.Equal(t, scored, svPHQ.Urgent)
	if scored {
		assert.Equal(t, answers(books.PHQ9ID, 1, 1, 1, 1, 1, 1, 1, 1, 2), svPHQ.Answers)
		assert.Equal(t, score.Flags, svPHQ.Flags)
		require.NotNil(t, svPHQ.Total)
		assert.Equal(t, 10, *svPHQ.Total)
	} else {
		assert.Empty(t, svPHQ.Answers)
		assert.Empty(t, svPHQ.Flags)
		assert.Nil(t, svPHQ.Total)
	}
	assert.Equal(t, string(care.AssignmentCompletedStatus), svPHQ.Status, "what is not PHI reads in clear")
	require.Len(t, svGAD.Feedback, 1)
	assert.Equal(t, want(l.canary("FEEDBACK")), svGAD.Feedback[0].Text)
	assert.Equal(t, []string{want(l.canary("COMMENT-CLIENT")), want(l.canary("COMMENT-TEAM"))}, postTexts(svGAD.Feedback[0].Comments))
	cancelled, err := views.SessionView(ctx, db, l.s2)
	require.NoError(t, err)
	assert.Equal(t, want(l.canary("CANCEL")), cancelled.CancelReason)
	closed, err := views.SessionView(ctx, db, l.s3)
	require.NoError(t, err)
	assert.Equal(t, want(l.canary("CLOSE")), closed.CloseReason)
	assert.Equal(t, string(care.StateClosed), closed.State)

	scores, err := views.ScoreHistory(ctx, db, l.client.ID, books.PHQ9ID)
	require.NoError(t, err)
	require.Len(t, scores.Points, 1)
	p := scores.Points[0]
	assert.Equal(t, severity, p.Severity)
	assert.Equal(t, scored, p.Urgent)
	if scored {
		assert.Equal(t, 10, p.Total)
		assert.Equal(t, score.Flags, p.Flags)
	} else {
		assert.Zero(t, p.Total)
		assert.Empty(t, p.Flags)
	}
}

func postTexts(posts []views.Post) []string {
	out := []string{}
	for _, p := range posts {
		out = append(out, p.Text)
	}
	return out
}

// assertPHIColumnsSealed checks, in the stored rows of every view, that
// every PHI column holds only sealed values (or nothing), and that each
// PHI column was filled at least once.
func assertPHIColumnsSealed(t *testing.T, ctx context.Context, db *projections.DB) {
	t.Helper()
	filled := map[string]bool{}
	for _, name := range viewNames {
		tables, err := views.RawTables(ctx, db, name)
		require.NoError(t, err)
		for logical, table := range tables {
			for i, col := range table.Columns {
				qualified := logical + "." + col
				if !slices.Contains(views.PHIColumns, qualified) {
					continue
				}
				for _, row := range table.Rows {
					s, isText := row[i].(string)
					if row[i] == nil || s == "" {
						continue
					}
					require.True(t, isText, "%s holds %T", qualified, row[i])
					assert.True(t, strings.HasPrefix(s, views.SealedPrefix) || s == "redacted:", "%s holds %q", qualified, s)
					filled[qualified] = true
				}
			}
		}
	}
	for _, col := range views.PHIColumns {
		assert.True(t, filled[col], "the loop fills %s", col)
	}
}

// checkpoint moves the WAL into the main file, as SQLite does on its own
// from time to time. The read-model DB's own checkpointer may be running
// one at that moment: the busy timeout waits for it instead of failing.
func checkpoint(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	var busy, logged, moved int
	require.NoError(t, db.QueryRow(`PRAGMA wal_checkpoint(FULL)`).Scan(&busy, &logged, &moved))
	require.Zero(t, busy, "the checkpoint ran to the end")
	require.Equal(t, logged, moved)
}

// TestViewsRefuseNoSealer: without a Sealer the read models would have to
// store PHI in clear, so they are not made.
func TestViewsRefuseNoSealer(t *testing.T) {
	reg, err := commands.NewRegistry()
	require.NoError(t, err)
	_, err = views.All(reg, nil)
	assert.ErrorIs(t, err, views.ErrNoSealer)
	for name, make := range map[string]func(*codec.Registry, eventstore.Sealer) (projections.Projection, error){
		"inbox": views.NewProviderInbox, "client sessions": views.NewClientSessions, "session view": views.NewSessionView,
		"score history": views.NewScoreHistory,
	} {
		_, err := make(reg, nil)
		assert.ErrorIs(t, err, views.ErrNoSealer, name)
		p, err := make(reg, viewstest.NewSealer())
		require.NoError(t, err, name)
		assert.NotNil(t, p, name)
	}
}
