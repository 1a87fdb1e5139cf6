package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/todo-api/todo-api/postgres/pgtest"
)

func TestMain(m *testing.M) {
	defer removeBinary()
	pgtest.Main(m)
}

// env is a test's environment; it stands in for os.Getenv.
type env map[string]string

func (e env) get(key string) string { return e[key] }

// freePort returns a port that was free a moment ago.
func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// instance is run() serving in the background.
type instance struct {
	base   string
	stop   context.CancelFunc
	done   chan error
	stdout *syncBuffer
	stderr *syncBuffer
	once   sync.Once
}

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

// MustStart runs the server with e (HOST and PORT filled in) and waits
// until /health answers.
func MustStart(tb testing.TB, e env) *instance {
	tb.Helper()
	if e["PORT"] == "" {
		e["PORT"] = "0" // any free port; the server says which
	}
	if e["HOST"] == "" {
		e["HOST"] = "127.0.0.1"
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{stop: cancel, done: make(chan error, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	go func() { in.done <- run(ctx, []string{"todo-api"}, e.get, strings.NewReader(""), in.stdout, in.stderr) }()
	listenBy := time.Now().Add(20 * time.Second)
	for !listeningLine.MatchString(in.stdout.String()) {
		select {
		case err := <-in.done:
			tb.Fatalf("run exited early: %v\nstderr: %s", err, in.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(listenBy) {
			cancel()
			tb.Fatalf("run did not start listening\nstderr: %s", in.stderr)
		}
	}
	in.base = listeningLine.FindStringSubmatch(in.stdout.String())[1]
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(in.base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-in.done:
			tb.Fatalf("run exited early: %v\nstderr: %s", err, in.stderr)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			tb.Fatalf("server did not come up\nstderr: %s", in.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Cleanup(func() { in.Stop(tb) })
	return in
}

// Stop cancels run's context, as SIGTERM does, and waits for it to return.
func (in *instance) Stop(tb testing.TB) {
	tb.Helper()
	in.once.Do(func() {
		in.stop()
		select {
		case err := <-in.done:
			if err != nil {
				tb.Errorf("run returned %v\nstderr: %s", err, in.stderr)
			}
		case <-time.After(30 * time.Second):
			tb.Fatal("run did not return after cancel")
		}
	})
}

// call makes a request and decodes a JSON body, if any.
func call(tb testing.TB, method, url, token string, body any) (int, map[string]any) {
	tb.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	json.Unmarshal(raw, &v)
	return resp.StatusCode, v
}

// mustToken runs `todo-api token` with the same environment.
func mustToken(tb testing.TB, e env, sub string) string {
	tb.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"todo-api", "token", "--sub", sub, "--email", sub + "@example.com"}, e.get, nil, &out, &errOut); err != nil {
		tb.Fatalf("token: %v\n%s", err, errOut.String())
	}
	return strings.TrimSpace(out.String())
}

// The zero-configuration path: SQLite file and generated secret in the
// working directory; tokens and tasks survive a restart.
func TestZeroConfigRestart(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	e := env{}
	in := MustStart(t, e)
	if !strings.Contains(in.stdout.String(), "/docs") {
		t.Errorf("start-up output does not say where the docs are: %q", in.stdout.String())
	}
	if !strings.Contains(in.stderr.String(), "generated secret") {
		t.Errorf("log does not say the secret was generated: %s", in.stderr.String())
	}
	for _, f := range []string{"todo.db", "todo.db.secret"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, "todo.db.secret")); err == nil && info.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", info.Mode().Perm())
	}
	token := mustToken(t, e, "restart-user")
	var ids []string
	for i := range 3 {
		status, task := call(t, "POST", in.base+"/api/tasks", token, map[string]any{"title": fmt.Sprint("survive ", i)})
		if status != http.StatusCreated {
			t.Fatalf("create: %d %v", status, task)
		}
		ids = append(ids, task["id"].(string))
	}
	in.Stop(t)

	in = MustStart(t, env{PORT: freePort(t)})
	status, list := call(t, "GET", in.base+"/api/tasks", token, nil)
	if status != http.StatusOK || list["count"].(float64) != 3 {
		t.Fatalf("after restart: %d %v", status, list)
	}
	if status, _ := call(t, "GET", in.base+"/ready", "", nil); status != http.StatusOK {
		t.Errorf("/ready = %d", status)
	}
	for _, secret := range []string{token, "Authorization"} {
		if strings.Contains(in.stderr.String(), secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

// PORT is read as a key; this keeps the test above readable.
const PORT = "PORT"

func TestDotEnvAndRealEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	port := freePort(t)
	dotenv := "PORT=1\nJWT_SECRET=dotenv-secret-that-is-long-enough-32b\nDATABASE_URL=sqlite:" + filepath.Join(dir, "from-dotenv.db") + "\n"
	if err := os.WriteFile(".env", []byte(dotenv), 0o600); err != nil {
		t.Fatal(err)
	}
	// The real environment wins over .env.
	e := env{"PORT": port}
	in := MustStart(t, e)
	if _, err := os.Stat(filepath.Join(dir, "from-dotenv.db")); err != nil {
		t.Errorf(".env DATABASE_URL not used: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "from-dotenv.db.secret")); err == nil {
		t.Errorf("a secret was generated although .env sets JWT_SECRET")
	}
	token := mustToken(t, e, "dotenv-user")
	if status, body := call(t, "GET", in.base+"/api/tasks", token, nil); status != http.StatusOK {
		t.Errorf("token signed with .env secret: %d %v", status, body)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	for name, tc := range map[string]struct {
		env  env
		want string
	}{
		"short secret":      {env{"JWT_SECRET": "too-short"}, "openssl rand"},
		"short alias":       {env{"BETTER_AUTH_SECRET": "too-short"}, "at least 32"},
		"bad port":          {env{"PORT": "http"}, "PORT"},
		"bad scheme":        {env{"DATABASE_URL": "mysql://x"}, "unsupported scheme"},
		"postgres, no keys": {env{"DATABASE_URL": "postgres://127.0.0.1:1/x"}, "JWT_SECRET"},
		"bad hours":         {env{"JWT_EXPIRATION_HOURS": "-1"}, "JWT_EXPIRATION_HOURS"},
	} {
		err := run(context.Background(), []string{"todo-api"}, tc.env.get, nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, tc.want)
		}
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	urls := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "m.db"), "postgres": pgtest.URL(t)}
	for engine, url := range urls {
		t.Run(engine, func(t *testing.T) {
			e := env{"DATABASE_URL": url, "JWT_SECRET": strings.Repeat("s", 32)}
			migrate := func(args ...string) string {
				var out, errOut bytes.Buffer
				if err := run(context.Background(), append([]string{"todo-api", "migrate"}, args...), e.get, nil, &out, &errOut); err != nil {
					t.Fatalf("migrate %v: %v\n%s", args, err, errOut.String())
				}
				return out.String()
			}
			const n = 4 // migrations in each engine's history
			if got := migrate("status"); strings.Count(got, "pending") != n {
				t.Errorf("fresh status:\n%s", got)
			}
			if got := migrate("up"); strings.Count(got, "applied") != n {
				t.Errorf("after up:\n%s", got)
			}
			if got := migrate("down"); strings.Count(got, "applied") != n-1 || strings.Count(got, "pending") != 1 {
				t.Errorf("after down:\n%s", got)
			}
			if got := migrate("reset"); strings.Count(got, "pending") != n {
				t.Errorf("after reset:\n%s", got)
			}
			if got := migrate("up"); strings.Count(got, "applied") != n {
				t.Errorf("after up again:\n%s", got)
			}
			if err := run(context.Background(), []string{"todo-api", "migrate", "sideways"}, e.get, nil, io.Discard, io.Discard); err == nil {
				t.Errorf("migrate sideways: no error")
			}
		})
	}
}

func TestServeOnPostgres(t *testing.T) {
	e := env{"DATABASE_URL": pgtest.URL(t), "JWT_SECRET": strings.Repeat("k", 40)}
	in := MustStart(t, e)
	waitReady(t, in.base)
	token := mustToken(t, e, "pg-user")
	status, task := call(t, "POST", in.base+"/api/tasks", token, map[string]any{"title": "on postgres"})
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, task)
	}
	in.Stop(t)
	in = MustStart(t, env{"DATABASE_URL": e["DATABASE_URL"], "JWT_SECRET": e["JWT_SECRET"]})
	waitReady(t, in.base)
	if status, got := call(t, "GET", in.base+"/api/tasks/"+task["id"].(string), token, nil); status != http.StatusOK || got["title"] != "on postgres" {
		t.Errorf("after restart: %d %v", status, got)
	}
}

func waitReady(tb testing.TB, base string) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if status, _ := call(tb, "GET", base+"/ready", "", nil); status == http.StatusOK {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatal("not ready after 15s")
}
