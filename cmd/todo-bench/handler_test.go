package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

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

// inProcess is a RoundTripper that hands requests straight to a handler.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

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
	c := newClient(inProcess{h}, "http://todo-api.test")
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
		c := newClient(inProcess{h}, "http://todo-api.test")
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
	c := newClient(inProcess{h}, "http://todo-api.test")
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
