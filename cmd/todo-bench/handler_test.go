package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	todo "github.com/todo-api/todo-api"
	todohttp "github.com/todo-api/todo-api/http"
	"github.com/todo-api/todo-api/jwt"
	"github.com/todo-api/todo-api/postgres"
	"github.com/todo-api/todo-api/sqlite"
)

// These benchmarks run the real handler, stores and token checks in
// process, with the same per-request checks as the load tool, so that
//
//	go test ./cmd/todo-bench -run '^$' -bench Mixed/sqlite -cpuprofile cpu.out
//
// shows where a request's time goes (focus on Server.ServeHTTP to leave the
// checks out). PostgreSQL benchmarks use BENCH_DATABASE_URL or the local
// default, in a database of their own.

// inProcess hands a client's requests straight to a handler.
type inProcess struct{ h http.Handler }

func (t inProcess) roundTrip(req *request) (response, []byte, error) {
	var rd io.Reader = http.NoBody
	if req.body != nil {
		rd = bytes.NewReader(req.body)
	}
	r := httptest.NewRequest(req.method, "http://todo-api.test"+req.path, rd)
	r.Header.Set("Authorization", req.auth)
	if req.body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return response{StatusCode: rec.Code, location: rec.Header().Get("Location")}, rec.Body.Bytes(), nil
}

func inProcessClient(h http.Handler) *client { return &client{rt: inProcess{h}} }

// newHandler returns todo-api's handler on a fresh database of the engine,
// configured as cmd/todo-api does with the benchmark's settings: JSON logs
// (discarded), metrics, MAX_IN_FLIGHT 1024, no per-user rate limit.
func newHandler(tb testing.TB, engine string) (http.Handler, *jwt.Service) {
	tb.Helper()
	ctx := context.Background()
	tokens, err := jwt.New(ctx, jwt.Config{Secret: []byte(jwtSecret)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tokens.Close)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	var tasks todo.TaskService
	var users todo.UserService
	switch engine {
	case "sqlite":
		db := sqlite.NewDB(filepath.Join(tb.TempDir(), "todo.db"))
		db.Logger, db.MaxTasksPerUser = logger, 10_000
		if err := db.Open(ctx); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			tb.Fatal(err)
		}
		tasks, users = sqlite.NewTaskService(db), sqlite.NewUserService(db)
	case "postgres":
		adminURL := os.Getenv("BENCH_DATABASE_URL")
		if adminURL == "" {
			adminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
		}
		fresh, err := newDatabase(ctx, "postgres", tb.TempDir(), adminURL, "inprocess")
		if err != nil {
			tb.Skipf("no PostgreSQL: %v", err)
		}
		tb.Cleanup(func() { fresh.drop() })
		db := postgres.NewDB(fresh.url)
		db.Logger, db.MaxTasksPerUser = logger, 10_000
		if err := db.Open(ctx); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			tb.Fatal(err)
		}
		tasks, users = postgres.NewTaskService(db), postgres.NewUserService(db)
	}
	h := todohttp.NewServer(todohttp.Config{
		Tasks: tasks, Users: users, Tokens: tokens, Issuer: tokens,
		Logger: logger, Registry: prometheus.NewRegistry(), MaxInFlight: 1024,
	})
	return h, tokens
}

// benchUsers makes n users with perUser tasks each, created through h.
func benchUsers(tb testing.TB, h http.Handler, tokens *jwt.Service, n, perUser int) []*user {
	tb.Helper()
	c := inProcessClient(h)
	r := newRand(1)
	users := make([]*user, n)
	for i := range users {
		id := fmt.Sprintf("bench-%d", i)
		token, _, err := tokens.IssueToken(todo.Identity{UserID: id})
		if err != nil {
			tb.Fatal(err)
		}
		users[i] = newUser(id, token)
		if _, err := c.list(users[i]); err != nil {
			tb.Fatal(err)
		}
		for range perUser {
			if _, err := c.create(users[i], r); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return users
}

// benchLoad runs the workload from 100 goroutines, each its own user.
func benchLoad(b *testing.B, engine string, next workload) {
	h, tokens := newHandler(b, engine)
	const concurrency = 100
	users := benchUsers(b, h, tokens, concurrency, 50)
	var seq atomic.Int64
	b.SetParallelism(parallelism(concurrency))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1)-1) % concurrency
		u := users[i]
		c := inProcessClient(h)
		r := newRand(uint64(i) + 1)
		for pb.Next() {
			if _, err := c.do(next(r), u, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// parallelism returns the b.SetParallelism factor that runs about n goroutines.
func parallelism(n int) int {
	return max(1, n/runtime.GOMAXPROCS(0))
}

func BenchmarkMixed(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) { benchLoad(b, engine, mixed) })
	}
}

func BenchmarkList(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) { benchLoad(b, engine, listOnly) })
	}
}

func BenchmarkCreate(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) { benchLoad(b, engine, createOnly) })
	}
}

// BenchmarkCheckList is the load tool's own cost to check one 50-task
// list response: CPU it takes from the server it measures.
func BenchmarkCheckList(b *testing.B) {
	h, tokens := newHandler(b, "sqlite")
	u := benchUsers(b, h, tokens, 1, 50)[0]
	c := inProcessClient(h)
	if _, err := c.list(u); err != nil {
		b.Fatal(err)
	}
	body := append([]byte(nil), c.body.Bytes()...)
	b.ReportAllocs()
	for b.Loop() {
		if err := checkList(body, u); err != nil {
			b.Fatal(err)
		}
	}
}

// TestClient runs the load tool's client, its own HTTP/1.1 transport and
// its checks against todo-api's real handler on a real listener: every
// kind of request, lists long enough to come chunked, isolation, and a
// check that notices when the server's answer is not what the user knows.
func TestClient(t *testing.T) {
	h, tokens := newHandler(t, "sqlite")
	srv := httptest.NewServer(h)
	defer srv.Close()
	transport := newTransport(2)
	defer transport.CloseIdleConnections()
	c := newClient(transport, srv.URL)
	users := make([]*user, 2)
	for i := range users {
		id := fmt.Sprintf("client-%d", i)
		token, _, err := tokens.IssueToken(todo.Identity{UserID: id})
		if err != nil {
			t.Fatal(err)
		}
		users[i] = newUser(id, token)
		if _, err := c.list(users[i]); err != nil {
			t.Fatal(err)
		}
	}
	r := newRand(1)
	for range 5 {
		if _, err := c.create(users[1], r); err != nil {
			t.Fatal(err)
		}
	}
	u := users[0]
	var seen [numEndpoints]int
	for range 400 {
		ep := pickMixed(r)
		if _, err := c.do(ep, u, r); err != nil {
			t.Fatalf("%s: %v", ep, err)
		}
		seen[ep]++
	}
	for ep, n := range seen {
		if n == 0 {
			t.Errorf("no %s in 400 requests", endpoint(ep))
		}
	}
	if err := c.checkNotFound(u, users[1].tasks[0]); err != nil {
		t.Error(err)
	}
	// More than the server's 64 KiB buffer: the list comes chunked.
	for len(u.tasks) < 300 {
		if _, err := c.create(u, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.list(u); err != nil {
		t.Fatal(err)
	}
	if c.body.Len() < 64<<10 {
		t.Fatalf("list of %d tasks is %d bytes; want more than 64 KiB", len(u.tasks), c.body.Len())
	}
	u.known[7].completed = !u.known[7].completed
	if _, err := c.list(u); err == nil {
		t.Error("a list with a task whose completion the user knows otherwise: got nil error")
	}
}

// TestTransport checks the transport's reading of HTTP/1.1: lengths,
// chunks, no body, keep-alive, Connection: close, and a connection the
// server closed while it was idle.
func TestTransport(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 200_000) // 3.2 MB
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/len":
			w.Header().Set("Location", "/there")
			io.WriteString(w, "hello")
		case "/chunked":
			for i := range 50 {
				io.WriteString(w, big[:5000+i])
				w.(http.Flusher).Flush()
			}
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			io.WriteString(w, big)
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/post":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %s %s", r.Method, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), b)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	tr := newTransport(1)
	defer tr.CloseIdleConnections()
	c := newClient(tr, srv.URL)
	get := func(path string, wantStatus int, want string) {
		t.Helper()
		resp, err := c.send(http.MethodGet, path, "Bearer x", nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if resp.StatusCode != wantStatus || string(c.body.Bytes()) != want {
			t.Fatalf("GET %s: status %d, %d bytes; want %d, %d bytes", path, resp.StatusCode, c.body.Len(), wantStatus, len(want))
		}
	}
	var chunked strings.Builder
	for i := range 50 {
		chunked.WriteString(big[:5000+i])
	}
	for range 3 {
		get("/len", http.StatusOK, "hello")
		get("/chunked", http.StatusOK, chunked.String())
		get("/big", http.StatusOK, big)
		get("/none", http.StatusNoContent, "")
	}
	if resp, _ := c.send(http.MethodGet, "/len", "Bearer x", nil); resp.location != "/there" {
		t.Errorf("Location %q, want /there", resp.location)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 13 requests; want 1 (keep-alive)", n)
	}
	get("/close", http.StatusOK, "bye")
	get("/len", http.StatusOK, "hello")
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections after Connection: close; want 2", n)
	}
	srv.CloseClientConnections()
	time.Sleep(10 * time.Millisecond)
	get("/len", http.StatusOK, "hello")
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections after the server closed one; want 3", n)
	}
	resp, err := c.send(http.MethodPost, "/post", "Bearer y", []byte(`{"a":1}`))
	if err != nil || resp.StatusCode != http.StatusOK || string(c.body.Bytes()) != `POST Bearer y application/json {"a":1}` {
		t.Errorf("POST: %v, %q", err, c.body.Bytes())
	}
}

// TestTransportRejects: responses that are not well-formed HTTP/1.1 are
// errors, not answers.
func TestTransportRejects(t *testing.T) {
	for name, raw := range map[string]string{
		"not HTTP":                "HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"status not a number":     "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
		"no space after status":   "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
		"two lengths":             "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"bad length":              "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"short body":              "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"header without colon":    "HTTP/1.1 200 OK\r\nContent-Length 0\r\n\r\n",
		"bad chunk size":          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
		"chunk without CRLF":      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
		"chunks cut short":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
		"other encoding":          "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"no content with a body":  "HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\nab",
		"header cut short":        "HTTP/1.1 200 OK\r\nContent-Len",
		"bytes after the body":    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 200 OK\r\n",
		"bare LF in header lines": "HTTP/1.1 200 OK\r\nA: b\nContent-Length: 0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			// The second request meets what the first response left.
			_, _, err1, err2 := cannedExchange(t, raw)
			if err1 == nil && err2 == nil {
				t.Errorf("%q: no error", raw)
			}
		})
	}
	for name, c := range map[string]struct{ raw, body string }{
		"no reason":       {"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nab", "ab"},
		"interim first":   {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nab", "ab"},
		"chunk extension": {"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2;x=y\r\nab\r\n1\r\nc\r\n0\r\nT: v\r\n\r\n", "abc"},
		"to the end":      {"HTTP/1.0 200 OK\r\n\r\nabc", "abc"},
	} {
		t.Run(name, func(t *testing.T) {
			status, body, err, _ := cannedExchange(t, c.raw)
			if err != nil || status != 200 || body != c.body {
				t.Errorf("%q: status %d, body %q, %v; want 200 %q", c.raw, status, body, err, c.body)
			}
		})
	}
}

// cannedExchange sends a GET and a POST to a server that answers the
// first with raw and then closes the connection.
func cannedExchange(t *testing.T, raw string) (status int, body string, err1, err2 error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		ln.Close() // a second connection is refused at once
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		conn.Read(buf)
		conn.Write([]byte(raw))
		time.Sleep(50 * time.Millisecond)
	}()
	tr := newTransport(1)
	defer tr.CloseIdleConnections()
	c := newClient(tr, "http://"+ln.Addr().String())
	resp, err1 := c.send(http.MethodGet, "/", "Bearer x", nil)
	body = string(c.body.Bytes())
	if err1 == nil {
		_, err2 = c.send(http.MethodPost, "/", "Bearer x", nil)
	}
	return resp.StatusCode, body, err1, err2
}
