package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/careflow/careflow/api"
)

// Bounds of the end-to-end tests. None is a speed assertion: each only
// stops a test that would otherwise hang.
const (
	e2eStartBound   = 60 * time.Second // build excluded: start until /readyz answers 200
	e2eStopBound    = 60 * time.Second // SIGTERM until the process has exited
	e2eRequestBound = 30 * time.Second // one HTTP request
	e2eWaitBound    = 30 * time.Second // an asynchronous effect (activation, read model)
)

const (
	e2eAdminUser     = "admin"
	e2eAdminPassword = "change me, a long password"
)

// buildCareflow builds the careflow binary from the module root into a
// temporary directory and returns its path.
func buildCareflow(t *testing.T, ctx context.Context) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	require.NoError(t, err, "go env GOMOD")
	gomod := strings.TrimSpace(string(out))
	require.NotEmpty(t, gomod, "the test runs inside the careflow module")
	require.NotEqual(t, os.DevNull, gomod, "the test runs inside the careflow module")

	bin := filepath.Join(t.TempDir(), "careflow")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/careflow")
	build.Dir = filepath.Dir(gomod)
	combined, err := build.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/careflow:\n%s", combined)
	return bin
}

// serveProcess is one `careflow serve` child process.
type serveProcess struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string // host:port it listens on
	base string // http://host:port
	logs *syncBuffer
	// exited is closed once the process has exited; then err holds what
	// Wait returned.
	exited chan struct{}
	err    error
}

// startServe starts `careflow serve` on 127.0.0.1 with a free port, the
// store in dir and the first administrator from the environment, and
// waits until /readyz answers 200. The process's working directory is
// dir, so no careflow.yaml of the developer's is read.
func startServe(t *testing.T, ctx context.Context, bin, dir string) *serveProcess {
	t.Helper()
	return startServeOn(t, ctx, bin, dir, "sqlite://"+filepath.Join(dir, "careflow.db"))
}

// startServeOn is startServe on the store at storeURL, with env added to
// the child's environment (CAREFLOW_KEK, say); local files go to dir.
func startServeOn(t *testing.T, ctx context.Context, bin, dir, storeURL string, env ...string) *serveProcess {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "serve",
		"--addr", "127.0.0.1:0",
		"--store", storeURL,
		"--data-dir", filepath.Join(dir, "data"),
		"--log-format", "json")
	cmd.Dir = dir
	cmd.Env = append(append(environWithoutCareflow(),
		"CAREFLOW_ADMIN_USERNAME="+e2eAdminUser,
		"CAREFLOW_ADMIN_PASSWORD="+e2eAdminPassword), env...)
	// After a kill, stop waiting for output pipes promptly.
	cmd.WaitDelay = 5 * time.Second
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	p := &serveProcess{t: t, cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout = p.logs
	require.NoError(t, cmd.Start())

	addrc := make(chan string, 1)
	go p.readLogs(stderr, addrc)
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("careflow serve output:\n%s", p.logs.String())
		}
	})

	select {
	case p.addr = <-addrc:
	case <-p.exited:
		t.Fatalf("careflow serve exited at start (%v):\n%s", p.err, p.logs.String())
	case <-time.After(e2eStartBound):
		t.Fatalf("careflow serve did not log its address:\n%s", p.logs.String())
	}
	p.base = "http://" + p.addr
	p.waitReady()
	return p
}

// environWithoutCareflow is the test's environment without CAREFLOW_*
// settings, so the child sees only the ones the test gives it.
func environWithoutCareflow() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAREFLOW_") {
			env = append(env, kv)
		}
	}
	return env
}

// readLogs copies the JSON log lines to p.logs and sends the address of
// the "careflow serving" line to addrc. It drains the pipe until the
// process closes it, so the child never blocks on a full pipe.
func (p *serveProcess) readLogs(r io.Reader, addrc chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		_, _ = p.logs.Write(append(line, '\n'))
		if sent {
			continue
		}
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "careflow serving" && rec.Addr != "" {
			addrc <- rec.Addr
			sent = true
		}
	}
}

// waitReady polls /readyz until it answers 200.
func (p *serveProcess) waitReady() {
	p.t.Helper()
	client := &http.Client{Timeout: e2eRequestBound}
	deadline := time.Now().Add(e2eStartBound)
	for {
		resp, err := client.Get(p.base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			p.t.Fatalf("careflow serve exited before it was ready (%v):\n%s", p.err, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("careflow serve was not ready (last error %v):\n%s", err, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and requires a clean exit (status 0).
func (p *serveProcess) stop() {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.exited:
	case <-time.After(e2eStopBound):
		p.t.Fatalf("careflow serve did not stop after SIGTERM:\n%s", p.logs.String())
	}
	require.NoError(p.t, p.err, "careflow serve exits with status 0 after SIGTERM:\n%s", p.logs.String())
	assert.Equal(p.t, 0, p.cmd.ProcessState.ExitCode())
	assert.Contains(p.t, p.logs.String(), `"msg":"careflow stopped"`)
}

// kill sends SIGKILL, as a crash or a power cut would, and waits for the
// process to be gone.
func (p *serveProcess) kill() {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-p.exited:
	case <-time.After(e2eStopBound):
		p.t.Fatal("careflow serve did not die after SIGKILL")
	}
	var exitErr *exec.ExitError
	require.ErrorAs(p.t, p.err, &exitErr)
	status, ok := exitErr.Sys().(syscall.WaitStatus)
	require.True(p.t, ok)
	assert.Equal(p.t, syscall.SIGKILL, status.Signal())
}

// syncBuffer is a bytes.Buffer safe for the log reader and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// e2eClient talks to a serve process over HTTP.
type e2eClient struct {
	t    *testing.T
	ctx  context.Context
	base string
	http *http.Client
}

func newE2EClient(t *testing.T, ctx context.Context, base string) *e2eClient {
	return &e2eClient{t: t, ctx: ctx, base: base, http: &http.Client{Timeout: e2eRequestBound}}
}

// e2eResponse is an answer read in full.
type e2eResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// send makes one request; header holds name, value pairs. It returns an
// error instead of failing the test, so goroutines can use it.
func (c *e2eClient) send(token, method, path string, body any, header ...string) (e2eResponse, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return e2eResponse{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, c.base+path, rd)
	if err != nil {
		return e2eResponse{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return e2eResponse{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return e2eResponse{}, err
	}
	return e2eResponse{Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

// call makes a request that must answer want, and decodes the body into
// out when out is not nil.
func (c *e2eClient) call(want int, out any, token, method, path string, body any, header ...string) e2eResponse {
	c.t.Helper()
	res, err := c.send(token, method, path, body, header...)
	require.NoError(c.t, err, "%s %s", method, path)
	require.Equal(c.t, want, res.Status, "%s %s: %s", method, path, res.Body)
	if out != nil {
		require.NoError(c.t, json.Unmarshal(res.Body, out), "%s %s: %s", method, path, res.Body)
	}
	return res
}

// command runs a command route that must answer want, and checks that
// its ETag and X-Careflow-Position headers agree with its body.
func (c *e2eClient) command(want int, out any, token, method, path string, body any, header ...string) api.CommandResponse {
	c.t.Helper()
	res := c.call(want, out, token, method, path, body, header...)
	var cr api.CommandResponse
	require.NoError(c.t, json.Unmarshal(res.Body, &cr))
	assert.Equal(c.t, api.ETag(cr.Version), res.Header.Get("ETag"), "%s %s: the ETag is the version", method, path)
	assert.Equal(c.t, strconv.FormatInt(cr.Position, 10), res.Header.Get(api.HeaderPosition),
		"%s %s: the position header is the body's", method, path)
	assert.Positive(c.t, cr.Position, "%s %s wrote at a position", method, path)
	return cr
}

// signIn trades a username and password for an access token.
func (c *e2eClient) signIn(username, password string) string {
	c.t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	c.call(http.StatusOK, &tok, "", "POST", "/v1/auth/token", map[string]string{"username": username, "password": password})
	require.NotEmpty(c.t, tok.AccessToken)
	require.Equal(c.t, "Bearer", tok.TokenType)
	return tok.AccessToken
}

// eventually retries check until it answers nil or e2eWaitBound passes,
// then fails with its last error.
func (c *e2eClient) eventually(what string, check func() error) {
	c.t.Helper()
	deadline := time.Now().Add(e2eWaitBound)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// errNotYet is what an eventually check answers while it waits.
var errNotYet = errors.New("not yet")

// notYet wraps errNotYet with what was seen.
func notYet(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errNotYet}, args...)...)
}
