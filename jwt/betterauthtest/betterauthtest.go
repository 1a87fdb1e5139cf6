// Package betterauthtest runs a real Better Auth server (Node.js, the jwt()
// plugin, SQLite) for tests that need tokens exactly as a Better Auth
// frontend gets them.
//
// The server is the fixture in jwt/testdata/betterauth; it needs node (20
// or later) and its node_modules (`npm ci --prefix jwt/testdata/betterauth`).
// When either is missing, Start skips the test, or fails it when the
// environment variable CI is "true".
package betterauthtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds the wait for the server's READY line.
const startTimeout = 30 * time.Second

// Options configure a Better Auth server. The zero value is Better Auth's
// default jwt() setup: EdDSA keys, iss and aud the server's URL, 15 minutes.
type Options struct {
	// Alg is the key algorithm: "EdDSA" (default), "ES256", "ES512",
	// "RS256" or "PS256".
	Alg string
	// Issuer and Audience set the jwt.issuer and jwt.audience options.
	Issuer   string
	Audience string
	// Expiration is jwt.expirationTime, e.g. "15m" or "2s".
	Expiration string
	// RotationInterval is jwks.rotationInterval: a signing key older than
	// this is replaced by a new one at the next signing (whole seconds).
	RotationInterval time.Duration
	// GracePeriod is jwks.gracePeriod: how long a rotated-out key stays
	// in the JWKS (whole seconds; Better Auth's default is 30 days).
	GracePeriod time.Duration
	// Dir is the fixture directory; "" means jwt/testdata/betterauth of
	// this source tree.
	Dir string
	// Port to listen on; "" picks a free one.
	Port string
}

// Server is a running Better Auth server, stopped when the test ends.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234; Better
	// Auth's routes are under URL + "/api/auth".
	URL string
	// Alg is the algorithm its keys use.
	Alg string
}

// JWKSURL returns the URL of the server's key set.
func (s *Server) JWKSURL() string { return s.URL + "/api/auth/jwks" }

// fixtureDir is jwt/testdata/betterauth next to this file.
func fixtureDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "betterauth")
}

// unavailable skips tb, or fails it on CI, because the server cannot run.
func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := "BETTER AUTH TESTS NOT RUN: " + fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// Start starts a Better Auth server configured by opts and waits until it
// answers. It skips tb (fails on CI) when node or the fixture's
// node_modules are missing.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	return start(tb, opts, 1)
}

// start is one attempt of Start. The fixture picks a free port, then
// listens on it; a test running in parallel can take the port in between,
// so an attempt that fails with EADDRINUSE on a port it chose is repeated.
func start(tb testing.TB, opts Options, attempt int) *Server {
	tb.Helper()
	dir := opts.Dir
	if dir == "" {
		dir = fixtureDir()
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(tb, "node is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "better-auth")); err != nil {
		unavailable(tb, "run `npm ci --prefix %s` first (%v)", dir, err)
	}
	if opts.Alg == "" {
		opts.Alg = "EdDSA"
	}

	ctx, cancel := context.WithCancel(context.Background())
	args := []string{"server.mjs"}
	if opts.Port != "" {
		args = append(args, opts.Port)
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"BA_DB="+filepath.Join(tb.TempDir(), "auth.db"),
		"BA_ALG="+opts.Alg,
		"BA_ISSUER="+opts.Issuer,
		"BA_AUDIENCE="+opts.Audience,
		"BA_EXPIRATION="+opts.Expiration,
		"BA_EXIT_ON_STDIN_EOF=1",
	)
	if opts.RotationInterval > 0 {
		cmd.Env = append(cmd.Env, "BA_ROTATION_INTERVAL="+strconv.Itoa(int(opts.RotationInterval.Seconds())))
	}
	if opts.GracePeriod > 0 {
		cmd.Env = append(cmd.Env, "BA_GRACE_PERIOD="+strconv.Itoa(int(opts.GracePeriod.Seconds())))
	}
	// Closing stdin at the end of the test stops the server; so does the
	// test binary dying, since the pipe then closes too.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatalf("better auth: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("better auth: %v", err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		tb.Fatalf("better auth: start node: %v", err)
	}
	exited := make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			if rest, ok := strings.CutPrefix(scanner.Text(), "READY "); ok {
				ready <- strings.Fields(rest)[0]
			}
		}
		cmd.Wait()
		close(exited)
	}()
	tb.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cancel() // kills the process
			<-exited
		}
		cancel()
	})

	select {
	case url := <-ready:
		return &Server{URL: url, Alg: opts.Alg}
	case <-exited:
		if opts.Port == "" && attempt < 3 && strings.Contains(stderr.String(), "EADDRINUSE") {
			return start(tb, opts, attempt+1)
		}
		tb.Fatalf("better auth: server exited before it was ready: %s", stderr.String())
	case <-time.After(startTimeout):
		tb.Fatalf("better auth: server not ready after %s: %s", startTimeout, stderr.String())
	}
	return nil
}

// Session is a signed-in Better Auth user.
type Session struct {
	server *Server
	client *http.Client // carries the session cookie
	// UserID, Email and Name are the user Better Auth created.
	UserID string
	Email  string
	Name   string
}

// SignUp creates a user with email and password (name: the part of email
// before "@") and returns a JWT for it from GET /api/auth/token.
func (s *Server) SignUp(tb testing.TB, email, password string) string {
	tb.Helper()
	return s.SignUpSession(tb, email, password).Token(tb)
}

// SignUpSession creates a user with POST /api/auth/sign-up/email and
// returns its session, from which fresh tokens can be asked.
func (s *Server) SignUpSession(tb testing.TB, email, password string) *Session {
	tb.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	name, _, _ := strings.Cut(email, "@")
	sess := &Session{server: s, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	body, err := json.Marshal(map[string]string{"email": email, "password": password, "name": name})
	if err != nil {
		tb.Fatal(err)
	}
	var resp struct {
		User struct {
			ID    string `json:"id"`
			Email string `json:"email"`
			Name  string `json:"name"`
		} `json:"user"`
	}
	sess.do(tb, http.MethodPost, "/api/auth/sign-up/email", body, &resp)
	if resp.User.ID == "" {
		tb.Fatalf("better auth: sign-up returned no user id")
	}
	sess.UserID, sess.Email, sess.Name = resp.User.ID, resp.User.Email, resp.User.Name
	return sess
}

// Token returns a newly signed JWT for the session (GET /api/auth/token).
func (sess *Session) Token(tb testing.TB) string {
	tb.Helper()
	var resp struct {
		Token string `json:"token"`
	}
	sess.do(tb, http.MethodGet, "/api/auth/token", nil, &resp)
	if resp.Token == "" {
		tb.Fatalf("better auth: /token returned no token")
	}
	return resp.Token
}

func (sess *Session) do(tb testing.TB, method, path string, body []byte, out any) {
	tb.Helper()
	req, err := http.NewRequest(method, sess.server.URL+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := sess.client.Do(req)
	if err != nil {
		tb.Fatalf("better auth: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		tb.Fatalf("better auth: %s %s: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("better auth: %s %s: status %d: %s", method, path, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		tb.Fatalf("better auth: %s %s: %v: %s", method, path, err, data)
	}
}

// syncBuffer collects the server's stderr while the test reads it.
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
