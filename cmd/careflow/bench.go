package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/valyala/fasthttp"

	"github.com/careflow/careflow/domain/books"
)

// Bounds of one bench run: it is a load harness for a server on this
// machine, not a tool to flood anything else.
const (
	benchMaxClients  = 256
	benchMaxDuration = 10 * time.Minute
	benchMaxLoops    = 1_000_000
	benchMaxReads    = 1000
	benchMaxErrors   = 5 // distinct error messages kept for the report
)

// benchOptions configure `careflow bench`.
type benchOptions struct {
	URL      string
	Clients  int
	Duration time.Duration
	// MaxLoops stops the run after this many care loops, whichever comes
	// first with Duration.
	MaxLoops int
	// Reads is how many reads of projected views follow each command.
	Reads       int
	Provider    string
	ClientUsers []string
	// ClinicAdmin, when set, registers one new client per concurrent
	// client (with Provider on the care team) instead of sharing
	// ClientUsers, so that no client collects thousands of sessions.
	ClinicAdmin    string
	Password       string
	RequestTimeout time.Duration
	// ActivationWait bounds the wait for the time reactor to activate a
	// session.
	ActivationWait time.Duration
	// Partial runs partial loops (schedule, assign, messages, cancel) even
	// where sessions can be activated: the command path without waiting
	// for activations.
	Partial bool
}

func defaultBenchOptions() benchOptions {
	return benchOptions{
		URL: "http://127.0.0.1:8080", Clients: 32, Duration: 20 * time.Second, MaxLoops: 100_000, Reads: 2,
		Provider: demoProviderUser, Password: demoPassword,
		ClientUsers:    []string{demoClientUser + "1", demoClientUser + "2", demoClientUser + "3"},
		ClinicAdmin:    demoAdminUser,
		RequestTimeout: 10 * time.Second, ActivationWait: 10 * time.Second,
	}
}

// newBenchCmd is `careflow bench`.
func newBenchCmd() *cobra.Command {
	o := defaultBenchOptions()
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Drive the care loop over HTTP against a careflow serve --demo on this machine and report throughput and latency",
		Long: "careflow bench signs in as the demo provider and the demo clients and runs care loops with N concurrent\n" +
			"clients: the provider schedules and activates a session and assigns a PHQ-9, the client starts and\n" +
			"answers it, the provider gives feedback, client and provider comment and exchange messages, and the\n" +
			"provider closes the session. Each command is followed by reads of projected views (inbox, client\n" +
			"sessions, session view, comments, messages). It reports commands/s, reads/s and latency percentiles.\n" +
			"Without POST /v1/sessions/{id}/activate it waits for the server's time reactor to activate the\n" +
			"sessions (reported as activation-wait); with neither it runs partial loops (schedule, assign,\n" +
			"messages, cancel) and says so. It only talks to loopback addresses, and is bounded in clients,\n" +
			"duration and loops.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The harness shares the machine with the server it measures:
			// like serve (tuning.go), it collects less often. Its heap is a
			// few MiB, so no limit is needed.
			if _, set := os.LookupEnv("GOGC"); !set {
				debug.SetGCPercent(defaultGCPercent)
			}
			rep, err := runBench(cmd.Context(), o, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if err := rep.print(cmd.OutOrStdout()); err != nil {
				return err
			}
			if rep.Loops == 0 {
				return errors.New("bench: no care loop completed; see the errors above")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", o.URL, "base URL of the careflow server (loopback only)")
	f.IntVar(&o.Clients, "clients", o.Clients, fmt.Sprintf("concurrent clients (1..%d)", benchMaxClients))
	f.DurationVar(&o.Duration, "duration", o.Duration, fmt.Sprintf("how long to run (at most %s)", benchMaxDuration))
	f.IntVar(&o.MaxLoops, "max-loops", o.MaxLoops, fmt.Sprintf("stop after this many care loops (1..%d)", benchMaxLoops))
	f.IntVar(&o.Reads, "reads", o.Reads, fmt.Sprintf("reads of projected views after each command (0..%d)", benchMaxReads))
	f.StringVar(&o.Provider, "provider", o.Provider, "username of the provider to sign in as (on every bench client's care team)")
	f.StringSliceVar(&o.ClientUsers, "client-users", o.ClientUsers, "usernames of the clients to sign in as (with --clinic-admin \"\")")
	f.StringVar(&o.ClinicAdmin, "clinic-admin", o.ClinicAdmin,
		"clinic admin who registers one new client per concurrent client; empty: share --client-users")
	f.StringVar(&o.Password, "password", o.Password, "password of those accounts (the demo password by default)")
	f.DurationVar(&o.RequestTimeout, "request-timeout", o.RequestTimeout, "timeout of one request")
	f.BoolVar(&o.Partial, "partial", o.Partial,
		"run partial loops (schedule, assign, messages, cancel) that need no active session")
	f.DurationVar(&o.ActivationWait, "activation-wait", o.ActivationWait,
		"without an activate route, how long to wait for the time reactor to activate a session")
	return cmd
}

// validate checks the bounds and that the URL is loopback.
func (o benchOptions) validate() (*url.URL, error) {
	u, err := loopbackURL(o.URL)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if o.Clients < 1 || o.Clients > benchMaxClients {
		errs = append(errs, fmt.Errorf("--clients %d must be 1..%d", o.Clients, benchMaxClients))
	}
	if o.Duration <= 0 || o.Duration > benchMaxDuration {
		errs = append(errs, fmt.Errorf("--duration %s must be positive and at most %s", o.Duration, benchMaxDuration))
	}
	if o.MaxLoops < 1 || o.MaxLoops > benchMaxLoops {
		errs = append(errs, fmt.Errorf("--max-loops %d must be 1..%d", o.MaxLoops, benchMaxLoops))
	}
	if o.Reads < 0 || o.Reads > benchMaxReads {
		errs = append(errs, fmt.Errorf("--reads %d must be 0..%d", o.Reads, benchMaxReads))
	}
	if o.Provider == "" || len(o.ClientUsers) == 0 || o.Password == "" {
		errs = append(errs, errors.New("--provider, --client-users and --password are required"))
	}
	if o.RequestTimeout <= 0 || o.RequestTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("--request-timeout %s must be positive and at most 1m", o.RequestTimeout))
	}
	if o.ActivationWait <= 0 || o.ActivationWait > time.Minute {
		errs = append(errs, fmt.Errorf("--activation-wait %s must be positive and at most 1m", o.ActivationWait))
	}
	return u, errors.Join(errs...)
}

// loopbackURL parses a base URL and refuses anything but http(s) on a
// loopback address: the harness sends thousands of requests a second and
// demo passwords, which belong on this machine only.
func loopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--url %q is not a URL", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("--url %q: the scheme must be http or https", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("--url %q: give only scheme, host and port", raw)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--url %q: careflow bench only drives a server on this machine (127.0.0.0/8, ::1 or localhost)", raw)
	}
	u.Path = ""
	return u, nil
}

// opKind tells commands from reads.
type opKind string

const (
	kindCommand opKind = "command"
	kindRead    opKind = "read"
	// kindWait is time spent waiting for the server, not a request: from
	// scheduling to the time reactor having activated the session.
	kindWait opKind = "wait"
)

// activation is how the harness's sessions become active.
type activation string

const (
	// activateByRoute: the provider activates with POST
	// /v1/sessions/{id}/activate.
	activateByRoute activation = "activate route"
	// activateByReactor: the server's time reactor activates a session
	// whose start has come; the client's start is retried until it has.
	activateByReactor activation = "time reactor"
	// noActivation: neither; loops skip the work that needs an active
	// session.
	noActivation activation = "none (partial loops)"
)

// Waiting for the time reactor: a retry of start after a back-off from
// reactorFirstPoll doubling to reactorMaxPoll, for at most
// benchOptions.ActivationWait.
const (
	reactorFirstPoll = 2 * time.Millisecond
	reactorMaxPoll   = 50 * time.Millisecond
)

// Operations of the care loop, in order, then the reads.
var benchOps = []struct {
	name string
	kind opKind
}{
	{"schedule", kindCommand}, {"activate", kindCommand}, {"assign", kindCommand}, {"start", kindCommand},
	{"responses", kindCommand}, {"feedback", kindCommand}, {"comment", kindCommand}, {"reply", kindCommand},
	{"message", kindCommand}, {"message-reply", kindCommand}, {"close", kindCommand}, {"cancel", kindCommand},
	{"activation-wait", kindWait},
	{"inbox", kindRead}, {"client-sessions", kindRead}, {"session", kindRead}, {"comments", kindRead}, {"messages", kindRead},
}

// percentile is the nearest-rank percentile p (0..100] of sorted samples;
// 0 without samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// opStats are one operation's samples (successful requests) and failures.
type opStats struct {
	samples []time.Duration
	errors  int
}

// recorder holds one worker's stats, so workers never share a lock.
type recorder map[string]*opStats

func newRecorder() recorder {
	r := recorder{}
	for _, op := range benchOps {
		r[op.name] = &opStats{}
	}
	return r
}

// opSummary is one line of the report.
type opSummary struct {
	Name   string
	Kind   opKind
	Count  int
	Errors int
	PerSec float64
	P50    time.Duration
	P99    time.Duration
	Max    time.Duration
}

func summarize(name string, kind opKind, samples []time.Duration, errs int, elapsed time.Duration) opSummary {
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	s := opSummary{Name: name, Kind: kind, Count: len(sorted), Errors: errs,
		P50: percentile(sorted, 50), P99: percentile(sorted, 99)}
	if len(sorted) > 0 {
		s.Max = sorted[len(sorted)-1]
	}
	if elapsed > 0 {
		s.PerSec = float64(len(sorted)) / elapsed.Seconds()
	}
	return s
}

// benchReport is the outcome of a run.
type benchReport struct {
	URL         string
	Clients     int
	Elapsed     time.Duration
	Loops       int
	FailedLoops int
	// Activation is how the sessions became active.
	Activation activation
	Ops        []opSummary
	Commands   opSummary
	Reads      opSummary
	Errors     []string
}

// buildReport merges the workers' recorders.
func buildReport(o benchOptions, elapsed time.Duration, loops, failed int, recs []recorder, errs []string) benchReport {
	rep := benchReport{URL: o.URL, Clients: o.Clients, Elapsed: elapsed, Loops: loops, FailedLoops: failed, Errors: errs}
	all := map[opKind][]time.Duration{}
	allErrs := map[opKind]int{}
	for _, op := range benchOps {
		var samples []time.Duration
		n := 0
		for _, r := range recs {
			samples = append(samples, r[op.name].samples...)
			n += r[op.name].errors
		}
		rep.Ops = append(rep.Ops, summarize(op.name, op.kind, samples, n, elapsed))
		all[op.kind] = append(all[op.kind], samples...)
		allErrs[op.kind] += n
	}
	rep.Commands = summarize("all commands", kindCommand, all[kindCommand], allErrs[kindCommand], elapsed)
	rep.Reads = summarize("all reads", kindRead, all[kindRead], allErrs[kindRead], elapsed)
	return rep
}

func (rep benchReport) print(out io.Writer) error {
	w := &errWriter{w: out}
	w.printf("careflow bench: %d clients for %s against %s: %d care loops completed, %d failed\n\n",
		rep.Clients, rep.Elapsed.Round(time.Millisecond), rep.URL, rep.Loops, rep.FailedLoops)
	switch rep.Activation {
	case noActivation:
		w.printf("PARTIAL care loops (schedule, assign, messages, cancel): --partial, or the server activated no session\n\n")
	case activateByReactor:
		w.printf("Sessions activated by the server's time reactor (no POST /v1/sessions/{id}/activate): see activation-wait\n\n")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintln(tw, "operation\tkind\tcount\terrors\tper s\tp50 ms\tp99 ms\tmax ms\t")
	line := func(s opSummary) {
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t\n", s.Name, s.Kind, s.Count, s.Errors, s.PerSec,
			ms(s.P50), ms(s.P99), ms(s.Max))
	}
	for _, s := range rep.Ops {
		line(s)
	}
	_, _ = fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t")
	line(rep.Commands)
	line(rep.Reads)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Errors) > 0 {
		w.printf("\nerrors (first %d distinct):\n", len(rep.Errors))
		for _, e := range rep.Errors {
			w.printf("  %s\n", e)
		}
	}
	return w.err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchHTTP is the harness's HTTP client of one server. It is fasthttp's
// client, not net/http's: the harness shares the machine with the server
// it measures, and net/http's client spent about 125 us of CPU per request
// (most of it handing each request and answer between the caller's and
// the connection's goroutines), a third of the CPU a read-heavy run had
// (ADR 0013).
type benchHTTP struct {
	base    string
	client  *fasthttp.Client
	timeout time.Duration
}

// benchError is a request that did not succeed.
type benchError struct {
	op     string
	status int
	detail string
	code   string // the problem's code (the domain slug), if any
}

func (e *benchError) Error() string {
	if e.status == 0 {
		return fmt.Sprintf("%s: %s", e.op, e.detail)
	}
	return fmt.Sprintf("%s: HTTP %d %s", e.op, e.status, e.detail)
}

// problemBody is what the harness reads of an RFC 9457 problem.
type problemBody struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// call sends one request and decodes a 2xx JSON answer into out (when not
// nil). Commands carry an Idempotency-Key, as a real client's would.
func (h *benchHTTP) call(ctx context.Context, op, method, path, token string, body, out any) error {
	if err := ctx.Err(); err != nil {
		return &benchError{op: op, detail: err.Error()}
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(h.base + path)
	req.Header.SetMethod(method)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return &benchError{op: op, detail: err.Error()}
		}
		req.SetBodyRaw(b)
		req.Header.SetContentType("application/json")
	}
	if method == http.MethodPost && token != "" {
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	deadline := time.Now().Add(h.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := h.client.DoDeadline(req, resp, deadline); err != nil {
		return &benchError{op: op, detail: err.Error()}
	}
	status, data := resp.StatusCode(), resp.Body()
	if status < 200 || status > 299 {
		var p problemBody
		detail := strings.TrimSpace(string(data[:min(len(data), 200)]))
		if json.Unmarshal(data, &p) == nil && p.Title != "" {
			detail = strings.TrimSuffix(p.Title+": "+p.Detail, ": ")
		}
		if p.Code != "" {
			detail += " (" + p.Code + ")"
		}
		return &benchError{op: op, status: status, detail: detail, code: p.Code}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return &benchError{op: op, status: status, detail: "undecodable answer: " + err.Error()}
		}
	}
	return nil
}

// benchIdentity is a signed-in account.
type benchIdentity struct {
	username string
	token    string
	actorID  string
}

func (h *benchHTTP) signIn(ctx context.Context, username, password string) (benchIdentity, error) {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := h.call(ctx, "sign in as "+username, http.MethodPost, "/v1/auth/token", "",
		map[string]string{"username": username, "password": password}, &tok); err != nil {
		return benchIdentity{}, err
	}
	var me struct {
		ActorID string `json:"actorId"`
	}
	if err := h.call(ctx, "who am I ("+username+")", http.MethodGet, "/v1/auth/me", tok.AccessToken, nil, &me); err != nil {
		return benchIdentity{}, err
	}
	return benchIdentity{username: username, token: tok.AccessToken, actorID: me.ActorID}, nil
}

// benchCommandAnswer is what the harness reads of a command's answer.
type benchCommandAnswer struct {
	IDs      map[string]string `json:"ids"`
	Sessions []struct {
		ID string `json:"id"`
	} `json:"sessions"`
}

// benchWorker is one concurrent client: the provider and one client
// account, running care loops one after the other.
type benchWorker struct {
	h        *benchHTTP
	provider benchIdentity
	client   benchIdentity
	reads    int
	// activation: how this server's sessions become active, and how long
	// to wait for the time reactor.
	activation     activation
	activationWait time.Duration
	rec            recorder
	rng            *rand.Rand
	readSeq        int
	// readsUntil: after it, a loop finishes its commands without the
	// reads between them. A loop of many reads would otherwise run far
	// past the run's duration, with fewer and fewer workers still reading,
	// and the tail, not the server, would set reads/s. Zero: no limit.
	readsUntil time.Time
	// The previous loop's session and assignment: read targets the
	// projections have had time to see.
	lastSession, lastAssignment string
}

// do runs one operation, records it, then the reads that follow a command.
func (w *benchWorker) do(ctx context.Context, op, method, path string, who benchIdentity, body, out any) error {
	start := time.Now()
	err := w.h.call(ctx, op, method, path, who.token, body, out)
	if err != nil {
		w.rec[op].errors++
		return err
	}
	w.rec[op].samples = append(w.rec[op].samples, time.Since(start))
	return nil
}

func (w *benchWorker) readsAfterCommand(ctx context.Context) error {
	if !w.readsUntil.IsZero() && time.Now().After(w.readsUntil) {
		return nil
	}
	for range w.reads {
		w.readSeq++
		kind := w.readSeq % 5
		if kind >= 2 && w.lastSession == "" {
			// No finished loop yet whose session the views have seen:
			// read the lists instead, so every command gets its reads.
			kind %= 2
		}
		var err error
		switch kind {
		case 0:
			err = w.do(ctx, "inbox", http.MethodGet, "/v1/providers/"+w.provider.actorID+"/inbox", w.provider, nil, nil)
		case 1:
			err = w.do(ctx, "client-sessions", http.MethodGet, "/v1/clients/"+w.client.actorID+"/sessions", w.client, nil, nil)
		case 2:
			err = w.do(ctx, "session", http.MethodGet, "/v1/sessions/"+w.lastSession, w.provider, nil, nil)
		case 3:
			err = w.do(ctx, "comments", http.MethodGet, "/v1/assignments/"+w.lastAssignment+"/comments", w.client, nil, nil)
		case 4:
			err = w.do(ctx, "messages", http.MethodGet, "/v1/sessions/"+w.lastSession+"/messages", w.client, nil, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// command runs one command of the loop and the reads after it.
func (w *benchWorker) command(ctx context.Context, op, path string, who benchIdentity, body, out any) error {
	if err := w.do(ctx, op, http.MethodPost, path, who, body, out); err != nil {
		return err
	}
	return w.readsAfterCommand(ctx)
}

// phq9Answers answers every PHQ-9 item; item 9 is above 0 about once in
// twenty loops, so the inbox sees urgent flags too.
func (w *benchWorker) phq9Answers() []books.Answer {
	b, _ := books.BuiltInBook(books.PHQ9ID)
	items := b.Items()
	out := make([]books.Answer, len(items))
	for i, it := range items {
		v := w.rng.IntN(3)
		if it.ID == "9" && w.rng.IntN(20) != 0 {
			v = 0
		}
		out[i] = books.Answer{ItemID: it.ID, Value: v}
	}
	return out
}

// loop runs one care loop.
func (w *benchWorker) loop(ctx context.Context) error {
	var sched benchCommandAnswer
	scheduled := time.Now()
	if err := w.command(ctx, "schedule", "/v1/sessions", w.provider, map[string]any{
		"clientId": w.client.actorID, "title": "Bench check-in", "description": "careflow bench",
		"startsAt": time.Now().UTC().Add(-time.Minute), "durationDays": 1,
	}, &sched); err != nil {
		return err
	}
	if len(sched.Sessions) == 0 {
		return &benchError{op: "schedule", detail: "the answer names no session"}
	}
	session := "/v1/sessions/" + sched.Sessions[0].ID
	if w.activation == activateByRoute {
		if err := w.activate(ctx, session+"/activate"); err != nil {
			return err
		}
	}
	var assigned benchCommandAnswer
	if err := w.command(ctx, "assign", session+"/assignments", w.provider, map[string]any{"bookId": books.PHQ9ID}, &assigned); err != nil {
		return err
	}
	assignmentID := assigned.IDs["assignmentId"]
	if assignmentID == "" {
		return &benchError{op: "assign", detail: "the answer names no assignmentId"}
	}
	if w.activation == noActivation {
		return w.partialLoop(ctx, session, sched.Sessions[0].ID, assignmentID)
	}
	assignment := "/v1/assignments/" + assignmentID
	if w.activation == activateByReactor {
		if err := w.startOnceActive(ctx, assignment+"/start", scheduled); err != nil {
			return err
		}
	} else if err := w.command(ctx, "start", assignment+"/start", w.client, map[string]any{}, nil); err != nil {
		return err
	}
	if err := w.command(ctx, "responses", assignment+"/responses", w.client, map[string]any{"answers": w.phq9Answers()}, nil); err != nil {
		return err
	}
	var fb benchCommandAnswer
	if err := w.command(ctx, "feedback", assignment+"/feedback", w.provider,
		map[string]any{"text": "Thank you. Let us look at the week together."}, &fb); err != nil {
		return err
	}
	feedbackID := fb.IDs["feedbackId"]
	if err := w.command(ctx, "comment", assignment+"/comments", w.client,
		map[string]any{"feedbackId": feedbackID, "text": "Should I keep the sleep diary?"}, nil); err != nil {
		return err
	}
	if err := w.command(ctx, "reply", assignment+"/comments", w.provider,
		map[string]any{"feedbackId": feedbackID, "text": "Yes, please bring it next week."}, nil); err != nil {
		return err
	}
	if err := w.command(ctx, "message", session+"/messages", w.client, map[string]any{"text": "Thanks for the feedback."}, nil); err != nil {
		return err
	}
	if err := w.command(ctx, "message-reply", session+"/messages", w.provider, map[string]any{"text": "See you next week."}, nil); err != nil {
		return err
	}
	if err := w.command(ctx, "close", session+"/close", w.provider, map[string]any{}, nil); err != nil {
		return err
	}
	w.lastSession, w.lastAssignment = sched.Sessions[0].ID, assignmentID
	return nil
}

// activate activates the session with the route. A session the server's
// time reactor activated first is refused with session-not-scheduled: the
// loop got what it wanted, so that answer counts as done, not as an error.
func (w *benchWorker) activate(ctx context.Context, path string) error {
	begin := time.Now()
	err := w.h.call(ctx, "activate", http.MethodPost, path, w.provider.token, map[string]any{}, nil)
	var be *benchError
	if err != nil && !(errors.As(err, &be) && be.status == http.StatusConflict && be.code == "session-not-scheduled") {
		w.rec["activate"].errors++
		return err
	}
	w.rec["activate"].samples = append(w.rec["activate"].samples, time.Since(begin))
	return w.readsAfterCommand(ctx)
}

// startOnceActive starts the assignment once the time reactor has
// activated its session: a start refused with session-not-active is
// retried after a back-off. The time from scheduling to the accepted start
// is recorded as activation-wait; only the accepted start is a command
// sample, the refused tries are neither samples nor errors.
func (w *benchWorker) startOnceActive(ctx context.Context, path string, scheduled time.Time) error {
	poll := reactorFirstPoll
	for {
		begin := time.Now()
		err := w.h.call(ctx, "start", http.MethodPost, path, w.client.token, map[string]any{}, nil)
		if err == nil {
			w.rec["start"].samples = append(w.rec["start"].samples, time.Since(begin))
			w.rec["activation-wait"].samples = append(w.rec["activation-wait"].samples, time.Since(scheduled))
			return w.readsAfterCommand(ctx)
		}
		if !notActiveYet(err) || time.Since(scheduled) > w.activationWait {
			w.rec["start"].errors++
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
		poll = min(2*poll, reactorMaxPoll)
	}
}

// notActiveYet: the session has not been activated (yet).
func notActiveYet(err error) bool {
	var be *benchError
	return errors.As(err, &be) && be.status == http.StatusConflict && be.code == "session-not-active"
}

// partialLoop ends a loop on a server that cannot activate sessions:
// responses, feedback and comments need an active session, so only the
// messages are exchanged before the provider cancels the session.
func (w *benchWorker) partialLoop(ctx context.Context, session, sessionID, assignmentID string) error {
	if err := w.command(ctx, "message", session+"/messages", w.client, map[string]any{"text": "I will fill it in tonight."}, nil); err != nil {
		return err
	}
	if err := w.command(ctx, "message-reply", session+"/messages", w.provider, map[string]any{"text": "Thank you."}, nil); err != nil {
		return err
	}
	if err := w.command(ctx, "cancel", session+"/cancel", w.provider, map[string]any{"reason": "careflow bench"}, nil); err != nil {
		return err
	}
	w.lastSession, w.lastAssignment = sessionID, assignmentID
	return nil
}

// noSuchRoute tells a route the server does not have from a refusal: a
// domain refusal (such as session-not-found) carries its slug as the
// problem's code, the router's "no such route" carries none.
func noSuchRoute(err error) bool {
	var be *benchError
	return errors.As(err, &be) &&
		(be.status == http.StatusMethodNotAllowed || be.status == http.StatusNotFound && be.code == "")
}

// errorLog keeps the first distinct error messages of a run.
type errorLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := err.Error()
	if len(l.seen) < benchMaxErrors && !slices.Contains(l.seen, msg) {
		l.seen = append(l.seen, msg)
	}
}

// runBench signs in, runs the workers until the duration or the loop
// budget is spent, and reports. Progress goes to progress.
func runBench(ctx context.Context, o benchOptions, progress io.Writer) (benchReport, error) {
	base, err := o.validate()
	if err != nil {
		return benchReport{}, err
	}
	// Loopback only (validate), and fasthttp's client uses no proxy.
	client := &fasthttp.Client{
		Dial:                          fasthttp.DialFunc(func(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }),
		MaxConnsPerHost:               o.Clients * 2,
		MaxIdleConnDuration:           90 * time.Second,
		MaxResponseBodySize:           64 << 20,
		DisableHeaderNamesNormalizing: true,
		NoDefaultUserAgentHeader:      true,
	}
	defer client.CloseIdleConnections()
	h := &benchHTTP{base: base.String(), client: client, timeout: o.RequestTimeout}

	provider, err := h.signIn(ctx, o.Provider, o.Password)
	if err != nil {
		return benchReport{}, fmt.Errorf("bench: %w (is `careflow serve --demo` running at %s?)", err, h.base)
	}
	clients, err := benchClients(ctx, h, o, provider)
	if err != nil {
		return benchReport{}, fmt.Errorf("bench: %w", err)
	}
	// One loop first, unmeasured: a server without a route the loop needs
	// fails here with the reason, instead of once per loop.
	warm := &benchWorker{h: h, provider: provider, client: clients[0], rec: newRecorder(), rng: rand.New(rand.NewPCG(1, 2)),
		activation: activateByRoute, activationWait: o.ActivationWait}
	if o.Partial {
		warm.activation = noActivation
	}
	err = warm.loop(ctx)
	if noSuchRoute(err) {
		_, _ = fmt.Fprintf(progress, "careflow bench: the server has no POST /v1/sessions/{id}/activate; "+
			"waiting for its time reactor to activate the sessions instead\n")
		warm.activation = activateByReactor
		err = warm.loop(ctx)
	}
	if notActiveYet(err) {
		_, _ = fmt.Fprintf(progress, "careflow bench: WARNING: no session became active within %s either, so each loop "+
			"only schedules, assigns, exchanges messages and cancels\n", o.ActivationWait)
		warm.activation = noActivation
		err = warm.loop(ctx)
	}
	if err != nil {
		return benchReport{}, fmt.Errorf("bench: the first care loop failed: %w", err)
	}
	_, _ = fmt.Fprintf(progress, "careflow bench: signed in as %s and %d clients; running %d clients for %s...\n",
		provider.username, len(clients), o.Clients, o.Duration)

	var budget atomic.Int64
	budget.Store(int64(o.MaxLoops))
	var loops, failed atomic.Int64
	errs := &errorLog{}
	deadline := time.Now().Add(o.Duration)
	recs := make([]recorder, o.Clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range o.Clients {
		recs[i] = newRecorder()
		w := &benchWorker{h: h, provider: provider, client: clients[i%len(clients)], reads: o.Reads, rec: recs[i],
			activation: warm.activation, activationWait: o.ActivationWait, rng: rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano()))),
			readsUntil: deadline}
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil && budget.Add(-1) >= 0 {
				if err := w.loop(ctx); err != nil {
					failed.Add(1)
					errs.add(err)
					continue
				}
				loops.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	rep := buildReport(o, elapsed, int(loops.Load()), int(failed.Load()), recs, errs.seen)
	rep.Activation = warm.activation
	return rep, nil
}

// benchClients signs in the clients the workers act for: with a clinic
// admin, one new client per worker, registered in the admin's clinic with
// the provider on the care team (a client in care has tens of sessions,
// not the thousands a few shared accounts would collect); otherwise the
// ClientUsers accounts, shared round robin.
func benchClients(ctx context.Context, h *benchHTTP, o benchOptions, provider benchIdentity) ([]benchIdentity, error) {
	if o.ClinicAdmin == "" {
		clients := make([]benchIdentity, len(o.ClientUsers))
		for i, u := range o.ClientUsers {
			var err error
			if clients[i], err = h.signIn(ctx, u, o.Password); err != nil {
				return nil, err
			}
		}
		return clients, nil
	}
	admin, err := h.signIn(ctx, o.ClinicAdmin, o.Password)
	if err != nil {
		return nil, err
	}
	var me struct {
		Clinics []string `json:"clinics"`
	}
	if err := h.call(ctx, "who am I ("+o.ClinicAdmin+")", http.MethodGet, "/v1/auth/me", admin.token, nil, &me); err != nil {
		return nil, err
	}
	if len(me.Clinics) == 0 {
		return nil, fmt.Errorf("%s is an admin of no clinic", o.ClinicAdmin)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	// At most benchOwnClients: sign-in is rate-limited per address (a burst
	// of 20), and the workers share them round robin.
	clients := make([]benchIdentity, min(max(o.Clients, 1), benchOwnClients))
	for i := range clients {
		username := fmt.Sprintf("bench-%s-%d", run, i+1)
		if err := h.call(ctx, "register a bench client", http.MethodPost, "/v1/clinics/"+me.Clinics[0]+"/clients", admin.token,
			map[string]any{"displayName": "Bench client " + strconv.Itoa(i+1), "username": username, "password": o.Password,
				"careTeam": []string{provider.actorID}}, nil); err != nil {
			return nil, err
		}
		if clients[i], err = signInPatiently(ctx, h, username, o.Password); err != nil {
			return nil, err
		}
	}
	return clients, nil
}

// benchOwnClients bounds the clients the harness registers per run.
const benchOwnClients = 16

// signInPatiently signs in, waiting out the server's sign-in rate limit
// (429) for up to a minute.
func signInPatiently(ctx context.Context, h *benchHTTP, username, password string) (benchIdentity, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		id, err := h.signIn(ctx, username, password)
		var be *benchError
		if err == nil || !errors.As(err, &be) || be.status != http.StatusTooManyRequests || time.Now().After(deadline) {
			return id, err
		}
		select {
		case <-ctx.Done():
			return benchIdentity{}, ctx.Err()
		case <-time.After(3 * time.Second):
		}
	}
}
