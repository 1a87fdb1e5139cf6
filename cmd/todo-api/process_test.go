package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests in this file and its siblings run the real binary as a child
// process, so that signals, kill -9 and restarts are the real thing.

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// mustBinary builds todo-api once per test process and returns its path.
func mustBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "todo-api-bin-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "todo-api")
		out, err := exec.Command("go", "build", "-o", buildPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildPath
}

// removeBinary is called from TestMain once the tests are done.
func removeBinary() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// process is the todo-api binary running as a child.
type process struct {
	cmd  *exec.Cmd
	Base string      // http://127.0.0.1:PORT
	Logs *syncBuffer // stderr: the structured log
	Out  *syncBuffer // stdout
	done chan struct{}
	err  error
}

// startProcess runs the binary in dir with exactly env (plus PATH, HOST
// and a free PORT unless given). It does not wait for the server: call
// WaitHealthy or WaitReady.
func startProcess(tb testing.TB, dir string, env map[string]string, args ...string) *process {
	tb.Helper()
	// PORT=0 unless the test chose one: the server binds a free port and
	// says which, so parallel tests never race for one.
	port := env["PORT"]
	if port == "" {
		port = "0"
	}
	host := env["HOST"]
	if host == "" {
		host = "127.0.0.1"
	}
	cmd := exec.Command(mustBinary(tb), args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PORT=" + port, "HOST=" + host}
	for k, v := range env {
		if k != "PORT" && k != "HOST" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	p := &process{cmd: cmd, Logs: &syncBuffer{}, Out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr, cmd.Stdout = p.Logs, p.Out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("todo-api log:\n%s", tail(p.Logs.String(), 4000))
		}
	})
	p.Base = waitListening(tb, p.Out, p.done)
	return p
}

// listeningLine is how the server announces the address it bound.
var listeningLine = regexp.MustCompile(`listening on (http://[^ ]+)`)

// waitListening returns the base URL a server prints on stdout once it
// listens, or "" when it exits first (the test's next wait reports why).
func waitListening(tb testing.TB, out interface{ String() string }, done <-chan struct{}) string {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningLine.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case <-done:
			return ""
		case <-time.After(10 * time.Millisecond):
		}
	}
	tb.Fatalf("todo-api did not say where it listens within 20s; stdout: %q", out.String())
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// WaitStatus polls path until it answers want, or fails after timeout.
func (p *process) WaitStatus(tb testing.TB, path string, want int, timeout time.Duration) {
	tb.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			tb.Fatalf("todo-api exited (%v) while waiting for %s → %d\n%s", p.err, path, want, tail(p.Logs.String(), 4000))
		default:
		}
		resp, err := client.Get(p.Base + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(25 * time.Millisecond)
	}
	tb.Fatalf("%s did not answer %d within %v (last: %s)", path, want, timeout, last)
}

// WaitHealthy waits for /health → 200.
func (p *process) WaitHealthy(tb testing.TB) {
	tb.Helper()
	p.WaitStatus(tb, "/health", 200, 15*time.Second)
}

// WaitReady waits for /ready → 200.
func (p *process) WaitReady(tb testing.TB) {
	tb.Helper()
	p.WaitStatus(tb, "/ready", 200, 30*time.Second)
}

// Signal sends sig to the process.
func (p *process) Signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		tb.Fatal(err)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *process) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Wait waits for the process to exit by itself and returns its exit error.
func (p *process) Wait(tb testing.TB, timeout time.Duration) error {
	tb.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		tb.Fatalf("todo-api did not exit within %v", timeout)
		return nil
	}
}

// processToken mints a token with the binary's own token command.
func processToken(tb testing.TB, dir string, env map[string]string, sub string) string {
	tb.Helper()
	cmd := exec.Command(mustBinary(tb), "token", "--sub", sub)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		if k != "PORT" && k != "HOST" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("todo-api token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestBinaryStartsWithZeroConfig is the README's first command, as a
// newcomer runs it: no environment but PATH, in an empty directory.
func TestBinaryStartsWithZeroConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{}
	p := startProcess(t, dir, env)
	p.WaitReady(t)
	if !strings.Contains(p.Out.String(), "/docs") {
		t.Errorf("stdout does not say where the docs are: %q", p.Out.String())
	}
	token := processToken(t, dir, env, "newcomer")
	if status, body := call(t, "POST", p.Base+"/api/tasks", token, map[string]any{"title": "first task"}); status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, body)
	}
	p.Signal(t, syscall.SIGTERM)
	if err := p.Wait(t, 15*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// TestShutdownDelayDrains checks SIGTERM with SHUTDOWN_DELAY: /ready turns
// 503 at once while task routes keep answering, then the process exits 0.
func TestShutdownDelayDrains(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"SHUTDOWN_DELAY": "1s"}
	p := startProcess(t, dir, env)
	p.WaitReady(t)
	token := processToken(t, dir, env, "drainer")
	p.Signal(t, syscall.SIGTERM)
	p.WaitStatus(t, "/ready", http.StatusServiceUnavailable, 900*time.Millisecond)
	if status, body := call(t, "POST", p.Base+"/api/tasks", token, map[string]any{"title": "while draining"}); status != http.StatusCreated {
		t.Errorf("create while draining: %d %v", status, body)
	}
	if err := p.Wait(t, 15*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}
