package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPercentileIsNearestRank(t *testing.T) {
	var samples []time.Duration
	for i := 1; i <= 100; i++ {
		samples = append(samples, time.Duration(i)*time.Millisecond)
	}
	assert.Equal(t, 50*time.Millisecond, percentile(samples, 50))
	assert.Equal(t, 99*time.Millisecond, percentile(samples, 99))
	assert.Equal(t, 100*time.Millisecond, percentile(samples, 100))
	assert.Equal(t, 1*time.Millisecond, percentile(samples, 0.5))

	assert.Equal(t, time.Duration(0), percentile(nil, 50), "no samples")
	assert.Equal(t, 7*time.Millisecond, percentile([]time.Duration{7 * time.Millisecond}, 99))
	// Ten samples: p99 is the largest, p50 the fifth.
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	assert.Equal(t, time.Duration(5), percentile(ten, 50))
	assert.Equal(t, time.Duration(10), percentile(ten, 99))
}

func TestSummarizeSortsAndRates(t *testing.T) {
	s := summarize("x", kindRead, []time.Duration{30, 10, 20}, 2, 2*time.Second)
	assert.Equal(t, 3, s.Count)
	assert.Equal(t, 2, s.Errors)
	assert.InDelta(t, 1.5, s.PerSec, 1e-9)
	assert.Equal(t, time.Duration(20), s.P50)
	assert.Equal(t, time.Duration(30), s.P99)
	assert.Equal(t, time.Duration(30), s.Max)
}

func TestLoopbackURLRefusesEverythingElse(t *testing.T) {
	for _, ok := range []string{
		"http://127.0.0.1:8080", "http://127.0.0.1:8080/", "http://127.9.8.7:1", "https://localhost:8443", "http://[::1]:8080",
	} {
		u, err := loopbackURL(ok)
		require.NoError(t, err, ok)
		assert.Empty(t, u.Path)
	}
	for _, bad := range []string{
		"http://10.0.0.1:8080", "http://192.168.1.5", "http://example.com", "http://0.0.0.0:8080", "http://[::]:8080",
		"http://localhost.example.com", "http://127.0.0.1.nip.io", "ftp://127.0.0.1", "127.0.0.1:8080",
		"http://user:pw@127.0.0.1:8080", "http://127.0.0.1:8080/v1", "http://127.0.0.1:8080?x=1",
	} {
		_, err := loopbackURL(bad)
		assert.Error(t, err, bad)
	}
}

func TestBenchOptionsAreBounded(t *testing.T) {
	_, err := defaultBenchOptions().validate()
	require.NoError(t, err)
	for name, change := range map[string]func(*benchOptions){
		"no clients":       func(o *benchOptions) { o.Clients = 0 },
		"too many clients": func(o *benchOptions) { o.Clients = benchMaxClients + 1 },
		"too long":         func(o *benchOptions) { o.Duration = benchMaxDuration + time.Second },
		"no duration":      func(o *benchOptions) { o.Duration = 0 },
		"too many loops":   func(o *benchOptions) { o.MaxLoops = benchMaxLoops + 1 },
		"too many reads":   func(o *benchOptions) { o.Reads = benchMaxReads + 1 },
		"no clients given": func(o *benchOptions) { o.ClientUsers = nil },
		"remote":           func(o *benchOptions) { o.URL = "http://203.0.113.7:8080" },
	} {
		o := defaultBenchOptions()
		change(&o)
		_, err := o.validate()
		assert.Error(t, err, name)
	}
}

func TestBenchCommandRefusesARemoteServerBeforeSendingAnything(t *testing.T) {
	cmd := newBenchCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"--url", "http://192.0.2.10:8080", "--duration", "1s"})
	err := cmd.ExecuteContext(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "only drives a server on this machine")
	assert.NotContains(t, out.String(), "signed in", "nothing was sent")
}

// fakeCareServer answers the routes the harness uses and records, per
// session, which operation came in with which identity, in order.
type fakeCareServer struct {
	// noActivate leaves out POST /v1/sessions/{id}/activate.
	noActivate bool
	// raceReactor answers every other activation with session-not-scheduled,
	// as when the time reactor activated the session first.
	raceReactor bool
	// reactorAfter, when above 0, plays a time reactor: a session becomes
	// active on its own after that many refused starts.
	reactorAfter int
	mu           sync.Mutex
	active       map[string]bool     // session id -> activated
	refused      map[string]int      // session id -> starts refused
	sessions     map[string][]string // session id -> "op by who"
	assignments  map[string]string   // assignment id -> session id
	reads        map[string]int
}

func newFakeCareServer() *fakeCareServer {
	return &fakeCareServer{sessions: map[string][]string{}, assignments: map[string]string{}, reads: map[string]int{},
		active: map[string]bool{}, refused: map[string]int{}}
}

func (f *fakeCareServer) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	who := func(r *http.Request) string {
		return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer tok-")
	}
	answer := func(w http.ResponseWriter, status int, body any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	record := func(session, op string, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.sessions[session] = append(f.sessions[session], op+" by "+who(r))
	}
	mux.HandleFunc("POST /v1/auth/token", func(w http.ResponseWriter, r *http.Request) {
		var req map[string]string
		assert.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		if req["password"] != demoPassword {
			answer(w, http.StatusUnauthorized, map[string]string{"title": "Unauthorized"})
			return
		}
		answer(w, http.StatusOK, map[string]string{"access_token": "tok-" + req["username"]})
	})
	mux.HandleFunc("GET /v1/auth/me", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK, map[string]string{"actorId": "actor-" + who(r)})
	})
	mux.HandleFunc("POST /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ClientID string    `json:"clientId"`
			StartsAt time.Time `json:"startsAt"`
		}
		assert.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		id := uuid.NewString()
		assert.True(t, req.StartsAt.Before(time.Now()), "a session the provider can activate at once")
		record(id, "schedule for "+req.ClientID, r)
		answer(w, http.StatusCreated, map[string]any{"ids": map[string]string{"sessionId": id}, "sessions": []map[string]string{{"id": id}}})
	})
	for _, op := range []string{"activate", "close", "cancel", "messages"} {
		if op == "activate" && f.noActivate {
			continue
		}
		mux.HandleFunc("POST /v1/sessions/{id}/"+op, func(w http.ResponseWriter, r *http.Request) {
			if op == "activate" {
				f.mu.Lock()
				first := f.raceReactor && len(f.active)%2 == 0
				f.active[r.PathValue("id")] = true
				f.mu.Unlock()
				if first {
					record(r.PathValue("id"), op, r)
					answer(w, http.StatusConflict, map[string]string{"title": "Conflict", "code": "session-not-scheduled"})
					return
				}
			}
			record(r.PathValue("id"), op, r)
			answer(w, http.StatusOK, map[string]any{"ids": map[string]string{}})
		})
	}
	mux.HandleFunc("POST /v1/sessions/{id}/assignments", func(w http.ResponseWriter, r *http.Request) {
		id := uuid.NewString()
		f.mu.Lock()
		f.assignments[id] = r.PathValue("id")
		f.mu.Unlock()
		record(r.PathValue("id"), "assign", r)
		answer(w, http.StatusCreated, map[string]any{"ids": map[string]string{"assignmentId": id}})
	})
	for _, op := range []string{"start", "responses", "feedback", "comments"} {
		mux.HandleFunc("POST /v1/assignments/{id}/"+op, func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			session := f.assignments[r.PathValue("id")]
			if op == "start" && !f.active[session] {
				if f.reactorAfter == 0 || f.refused[session] < f.reactorAfter {
					f.refused[session]++
					f.mu.Unlock()
					answer(w, http.StatusConflict, map[string]string{"title": "Conflict", "code": "session-not-active"})
					return
				}
				f.active[session] = true
			}
			f.mu.Unlock()
			if op == "responses" {
				var req struct {
					Answers []struct{ ItemID string } `json:"answers"`
				}
				assert.NoError(t, json.NewDecoder(r.Body).Decode(&req))
				assert.Len(t, req.Answers, 9, "every PHQ-9 item answered")
			}
			record(session, op, r)
			answer(w, http.StatusOK, map[string]any{"ids": map[string]string{"feedbackId": "fb-1"}})
		})
	}
	for name, pattern := range map[string]string{
		"inbox": "GET /v1/providers/{id}/inbox", "client-sessions": "GET /v1/clients/{id}/sessions",
		"session": "GET /v1/sessions/{id}", "comments": "GET /v1/assignments/{id}/comments", "messages": "GET /v1/sessions/{id}/messages",
	} {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			f.reads[name]++
			f.mu.Unlock()
			answer(w, http.StatusOK, map[string]any{})
		})
	}
	return mux
}

func TestBenchDrivesTheCareLoopAndCountsEveryRequest(t *testing.T) {
	fake := newFakeCareServer()
	srv := httptest.NewServer(fake.handler(t))
	defer srv.Close()

	o := defaultBenchOptions()
	o.ClinicAdmin = "" // the stub server knows only the demo accounts
	o.URL, o.Clients, o.MaxLoops, o.Duration, o.Reads = srv.URL, 4, 24, time.Minute, 2
	var progress bytes.Buffer
	rep, err := runBench(context.Background(), o, &progress)
	require.NoError(t, err)
	assert.Equal(t, 24, rep.Loops, "the loop budget bounds the run")
	assert.Zero(t, rep.FailedLoops)
	assert.Empty(t, rep.Errors)

	const commandsPerLoop = 11
	assert.Equal(t, 24*commandsPerLoop, rep.Commands.Count)
	for _, op := range rep.Ops {
		switch {
		case op.Name == "cancel":
			assert.Zero(t, op.Count, "only partial loops cancel")
		case op.Kind == kindCommand:
			assert.Equal(t, 24, op.Count, op.Name)
		}
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	readsServed := 0
	for _, n := range fake.reads {
		readsServed += n
	}
	// The unmeasured warm-up loop reads nothing, so every read served is
	// in the report.
	assert.Equal(t, readsServed, rep.Reads.Count)
	assert.Equal(t, 24*commandsPerLoop*2, rep.Reads.Count, "two reads after every command")
	assert.Positive(t, rep.Reads.Count)
	assert.Positive(t, fake.reads["inbox"])
	assert.Positive(t, fake.reads["session"])

	// 24 measured loops and the warm-up, each the whole care loop in order
	// with the right identity at each step.
	require.Len(t, fake.sessions, 25)
	for id, ops := range fake.sessions {
		require.Len(t, ops, commandsPerLoop, id)
		client := strings.TrimPrefix(strings.Fields(ops[0])[2], "actor-")
		assert.Regexp(t, `^schedule for actor-demo-client[123] by demo-provider$`, ops[0])
		assert.Equal(t, []string{
			"activate by demo-provider", "assign by demo-provider", "start by " + client, "responses by " + client,
			"feedback by demo-provider", "comments by " + client, "comments by demo-provider",
			"messages by " + client, "messages by demo-provider", "close by demo-provider",
		}, ops[1:], id)
	}
	var printed bytes.Buffer
	require.NoError(t, rep.print(&printed))
	assert.Contains(t, printed.String(), "all commands")
	assert.Contains(t, printed.String(), "24 care loops completed")
}

// A loop still running when the duration is up finishes its commands but
// reads no more: reads/s measures the run, not a tail of loops that a
// long run of reads drew out.
func TestBenchStopsReadingWhenTheDurationIsUp(t *testing.T) {
	fake := newFakeCareServer()
	srv := httptest.NewServer(fake.handler(t))
	defer srv.Close()

	o := defaultBenchOptions()
	o.ClinicAdmin = ""
	o.URL, o.Clients, o.MaxLoops, o.Duration, o.Reads = srv.URL, 1, 1, 5*time.Millisecond, 1000
	rep, err := runBench(context.Background(), o, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Loops, "the loop is finished")
	assert.Equal(t, 11, rep.Commands.Count, "with all its commands")
	assert.Less(t, rep.Reads.Count, 11*1000, "but not the reads after the duration")
	assert.Zero(t, rep.Reads.Count%1000, "a command's reads are all made or none")
}

func TestBenchWithoutActivateRouteWaitsForTheTimeReactor(t *testing.T) {
	fake := newFakeCareServer()
	fake.noActivate, fake.reactorAfter = true, 2
	srv := httptest.NewServer(fake.handler(t))
	defer srv.Close()

	o := defaultBenchOptions()
	o.ClinicAdmin = "" // the stub server knows only the demo accounts
	o.URL, o.Clients, o.MaxLoops, o.Duration, o.Reads = srv.URL, 2, 6, time.Minute, 1
	var progress bytes.Buffer
	rep, err := runBench(context.Background(), o, &progress)
	require.NoError(t, err)
	assert.Equal(t, activateByReactor, rep.Activation)
	assert.Contains(t, progress.String(), "waiting for its time reactor")
	assert.Equal(t, 6, rep.Loops)
	assert.Zero(t, rep.Commands.Errors, "refused starts while waiting are not errors")
	assert.Equal(t, 6*10, rep.Commands.Count, "the whole loop but the activation")
	counts := map[string]int{}
	for _, op := range rep.Ops {
		counts[op.Name] = op.Count
	}
	assert.Equal(t, 6, counts["start"], "only the accepted starts are samples")
	assert.Equal(t, 6, counts["activation-wait"])
	assert.Zero(t, counts["activate"])

	fake.mu.Lock()
	defer fake.mu.Unlock()
	for id, ops := range fake.sessions {
		if len(ops) < 3 {
			continue // the warm-up loop that found no activate route
		}
		assert.Equal(t, "assign by demo-provider", ops[1], id)
		assert.Equal(t, fake.reactorAfter, fake.refused[id], "started once the reactor had activated it")
		assert.Equal(t, "close by demo-provider", ops[len(ops)-1], id)
	}

	var printed bytes.Buffer
	require.NoError(t, rep.print(&printed))
	assert.Contains(t, printed.String(), "activated by the server's time reactor")
}

func TestBenchWithoutAnyActivationRunsPartialLoops(t *testing.T) {
	fake := newFakeCareServer()
	fake.noActivate = true
	srv := httptest.NewServer(fake.handler(t))
	defer srv.Close()

	o := defaultBenchOptions()
	o.ClinicAdmin = "" // the stub server knows only the demo accounts
	o.URL, o.Clients, o.MaxLoops, o.Duration, o.Reads = srv.URL, 2, 6, time.Minute, 1
	o.ActivationWait = 50 * time.Millisecond
	var progress bytes.Buffer
	rep, err := runBench(context.Background(), o, &progress)
	require.NoError(t, err)
	assert.Equal(t, noActivation, rep.Activation)
	assert.Contains(t, progress.String(), "WARNING: no session became active")
	assert.Equal(t, 6, rep.Loops)
	assert.Equal(t, 6*5, rep.Commands.Count)
	assert.Equal(t, 6*5, rep.Reads.Count, "one read after every command")

	fake.mu.Lock()
	defer fake.mu.Unlock()
	partial := 0
	for id, ops := range fake.sessions {
		if len(ops) < 3 || !strings.HasPrefix(ops[len(ops)-1], "cancel") {
			continue // the warm-up loops that found no activation
		}
		partial++
		client := strings.TrimPrefix(strings.Fields(ops[0])[2], "actor-")
		assert.Equal(t, []string{"assign by demo-provider", "messages by " + client, "messages by demo-provider",
			"cancel by demo-provider"}, ops[1:], id)
	}
	assert.Equal(t, 7, partial, "six measured loops and the warm-up")

	var printed bytes.Buffer
	require.NoError(t, rep.print(&printed))
	assert.Contains(t, printed.String(), "PARTIAL care loops")
}

func TestNoSuchRouteTellsAMissingRouteFromARefusal(t *testing.T) {
	assert.True(t, noSuchRoute(&benchError{op: "activate", status: http.StatusNotFound, detail: "Not Found: no such route"}))
	assert.True(t, noSuchRoute(&benchError{op: "activate", status: http.StatusMethodNotAllowed}))
	assert.False(t, noSuchRoute(&benchError{op: "activate", status: http.StatusNotFound, code: "session-not-found"}))
	assert.False(t, noSuchRoute(&benchError{op: "activate", status: http.StatusConflict, code: "session-not-scheduled"}))
	assert.False(t, noSuchRoute(nil))
}

// TestBenchAgainstTheRealServerOnTheDemo runs the real serve --demo on a
// fresh store and drives a few care loops through the real routes: the
// harness's paths, bodies and answers must be the API's.
func TestBenchAgainstTheRealServerOnTheDemo(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.StoreURL = "sqlite://" + filepath.Join(t.TempDir(), "careflow.db")
	cfg.Demo = true
	require.NoError(t, cfg.Validate())
	log := slog.New(slog.DiscardHandler)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve stopped at start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}

	o := defaultBenchOptions()
	o.URL, o.Clients, o.MaxLoops, o.Duration, o.Reads = "http://"+addr, 3, 6, time.Minute, 1
	var progress bytes.Buffer
	rep, err := runBench(ctx, o, &progress)
	require.NoError(t, err, progress.String())
	assert.Equal(t, 6, rep.Loops)
	assert.Zero(t, rep.FailedLoops, "%v", rep.Errors)
	assert.Zero(t, rep.Commands.Errors)
	assert.Zero(t, rep.Reads.Errors)
	assert.Positive(t, rep.Reads.Count)
	// serve activates sessions with its time reactor (or an activate
	// route): every loop is whole, and closes its session.
	assert.NotEqual(t, noActivation, rep.Activation)
	counts := map[string]int{}
	for _, op := range rep.Ops {
		counts[op.Name] = op.Count
	}
	assert.Equal(t, 6, counts["responses"])
	assert.Equal(t, 6, counts["feedback"])
	assert.Equal(t, 6, counts["close"])

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestBenchPartialFlagSkipsTheActiveSessionWork(t *testing.T) {
	fake := newFakeCareServer()
	srv := httptest.NewServer(fake.handler(t))
	defer srv.Close()

	o := defaultBenchOptions()
	o.ClinicAdmin = "" // the stub server knows only the demo accounts
	o.URL, o.Clients, o.MaxLoops, o.Duration, o.Reads, o.Partial = srv.URL, 2, 4, time.Minute, 0, true
	rep, err := runBench(context.Background(), o, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, noActivation, rep.Activation)
	assert.Equal(t, 4*5, rep.Commands.Count)
	fake.mu.Lock()
	defer fake.mu.Unlock()
	for id, ops := range fake.sessions {
		assert.NotContains(t, ops, "activate by demo-provider", id)
		assert.Equal(t, "cancel by demo-provider", ops[len(ops)-1], id)
	}
}

func TestBenchCountsASessionTheReactorActivatedFirstAsActivated(t *testing.T) {
	fake := newFakeCareServer()
	fake.raceReactor = true
	srv := httptest.NewServer(fake.handler(t))
	defer srv.Close()

	o := defaultBenchOptions()
	o.ClinicAdmin = "" // the stub server knows only the demo accounts
	o.URL, o.Clients, o.MaxLoops, o.Duration, o.Reads = srv.URL, 2, 6, time.Minute, 0
	rep, err := runBench(context.Background(), o, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, activateByRoute, rep.Activation)
	assert.Equal(t, 6, rep.Loops)
	assert.Zero(t, rep.FailedLoops)
	assert.Zero(t, rep.Commands.Errors)
	assert.Equal(t, 6*11, rep.Commands.Count)
}
