package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// jwtSecret is the HS256 secret the benchmark gives the server, so that it
// can mint its users' tokens with the binary's own token command.
const jwtSecret = "todo-bench-secret-0123456789abcdefghijklmnopqrstuvwxyz"

// buildServer builds cmd/todo-api into path, as `make build` does.
func buildServer(ctx context.Context, path string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", path, "github.com/todo-api/todo-api/cmd/todo-api")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/todo-api (run todo-bench inside the repository, or pass -server): %v\n%s", err, out)
	}
	return nil
}

// serverEnv is the environment todo-api runs with: only what is set here,
// so that the caller's environment and .env files cannot change a run.
// The per-user rate limit is off: a benchmark user sends far more than 20
// requests a second. Everything else is the product's default.
func serverEnv(databaseURL string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"DATABASE_URL=" + databaseURL,
		"JWT_SECRET=" + jwtSecret,
		"RATE_LIMIT_USER=0",
		"RATE_LIMIT_IP=0",
		"LOG_FORMAT=json",
		"LOG_LEVEL=info",
	}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}
	return append(env, extra...)
}

// server is a running server process: todo-api, or the bare-bones one.
type server struct {
	name    string // for messages
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:PORT
	logPath string
	// readyAt is the log's size when /ready first answered 200: the
	// not-ready warnings of the start are before it.
	readyAt int64
	exited  chan struct{}
	waitErr error
}

// startServer starts todo-api serve in dir, logging to a file there, and
// waits until /ready answers 200. It returns the time from starting the
// process to that answer.
func startServer(ctx context.Context, bin, dir string, env []string) (*server, time.Duration, error) {
	return startProcess(ctx, "todo-api", dir, env, bin, "serve")
}

// startProcess starts bin with args as startServer does: on $HOST:$PORT
// with a free port, its output in a log file in dir, ready when /ready
// answers 200.
func startProcess(ctx context.Context, name, dir string, env []string, bin string, args ...string) (*server, time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("server-%d.log", port))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, 0, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(env, "HOST=127.0.0.1", "PORT="+strconv.Itoa(port))
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	s := &server{name: name, cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port), logPath: logPath, exited: make(chan struct{})}

	ready := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := ready.Get(s.base + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				elapsed := time.Since(start)
				if fi, err := os.Stat(logPath); err == nil {
					s.readyAt = fi.Size()
				}
				return s, elapsed, nil
			}
		}
		select {
		case <-s.exited:
			return nil, 0, fmt.Errorf("%s exited before it was ready (%v); its log:\n%s", name, s.waitErr, s.logTail())
		case <-ctx.Done():
			s.stop()
			return nil, 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, 0, fmt.Errorf("%s not ready after 60s; its log:\n%s", name, s.logTail())
		}
	}
}

// stop shuts the server down gracefully, killing it if it takes too long.
func (s *server) stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("%s did not stop within 30s of SIGTERM; killed", s.name)
	}
	var exit *exec.ExitError
	if s.waitErr != nil && !errors.As(s.waitErr, &exit) {
		return s.waitErr
	}
	if s.waitErr != nil {
		return fmt.Errorf("%s exited with %v; its log:\n%s", s.name, s.waitErr, s.logTail())
	}
	return nil
}

// logTail returns the end of the server's log.
func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// errorLines returns the server's log lines at warn level or above since
// it was ready, at most max of them.
func (s *server) errorLines(max int) []string {
	b, _ := os.ReadFile(s.logPath)
	b = b[min(s.readyAt, int64(len(b))):]
	var out []string
	for line := range bytes.Lines(b) {
		if bytes.Contains(line, []byte(`"level":"WARN"`)) || bytes.Contains(line, []byte(`"level":"ERROR"`)) {
			out = append(out, strings.TrimSpace(string(line)))
			if len(out) == max {
				break
			}
		}
	}
	return out
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// mintTokens runs `todo-api token --sub ID` for each user id, a few at a
// time, and returns the tokens in the same order.
func mintTokens(ctx context.Context, bin, dir string, env []string, ids []string) ([]string, error) {
	tokens := make([]string, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.CommandContext(ctx, bin, "token", "--sub", id, "--ttl", "24h")
			cmd.Dir, cmd.Env = dir, env
			out, err := cmd.Output()
			if err != nil {
				errs[i] = fmt.Errorf("todo-api token --sub %s: %w", id, err)
				return
			}
			tokens[i] = strings.TrimSpace(string(out))
		})
	}
	wg.Wait()
	return tokens, errors.Join(errs...)
}

// procStats is what /proc says of a process: CPU time used so far and
// peak resident memory.
type procStats struct {
	cpu     time.Duration // user + system
	peakRSS int64         // bytes (VmHWM)
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func readProcStats(pid int) (procStats, error) {
	var st procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name may hold spaces; the fields after it do not.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	st.cpu = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			st.peakRSS = kb << 10
		}
	}
	return st, nil
}

// resetPeakRSS starts VmHWM afresh from the current RSS, so that each
// phase reports its own peak (Linux ≥ 4.0; needs the right to write the
// process's clear_refs, which its owner has).
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}
