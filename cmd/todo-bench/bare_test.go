package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	todo "github.com/todo-api/todo-api"
	"github.com/todo-api/todo-api/jwt"
	"github.com/todo-api/todo-api/postgres"
	"github.com/todo-api/todo-api/sqlite"
)

// TestMain lets the test binary be the bare-bones server too, as the
// todo-bench binary is, so the tests start it the way the benchmark does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == bareServerCommand {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := runBareServer(ctx, os.Getenv, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bare-server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBareServer starts the bare-bones server as its own process on a
// database with todo-api's schema and seeded tasks, sends every request of
// the mix with the load generator's own checks, then a short mixed load
// from several users at once: no request may fail, and the server's log
// must hold no error.
func TestBareServer(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) { testBareServer(t, engine) })
	}
}

func testBareServer(t *testing.T, engine string) {
	ctx := context.Background()
	dir := t.TempDir()
	adminURL := os.Getenv("BENCH_DATABASE_URL")
	if adminURL == "" {
		adminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	db, err := newDatabase(ctx, engine, dir, adminURL, "bare")
	if err != nil {
		t.Skipf("no PostgreSQL: %v", err)
	}
	t.Cleanup(func() { db.drop() })
	mustMigrate(t, db)
	group := seedGroup{prefix: "bare-", users: 8, perUser: 20}
	if err := seed(ctx, db, []seedGroup{group}); err != nil {
		t.Fatal(err)
	}
	tokens, err := jwt.New(ctx, jwt.Config{Secret: []byte(jwtSecret)})
	if err != nil {
		t.Fatal(err)
	}
	defer tokens.Close()
	users := make([]*user, group.users)
	for i := range users {
		token, _, err := tokens.IssueToken(todo.Identity{UserID: group.userID(i)})
		if err != nil {
			t.Fatal(err)
		}
		if users[i], err = loadUser(ctx, db, group.userID(i), token); err != nil {
			t.Fatal(err)
		}
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv, _, err := startProcess(ctx, "bare-bones server", dir, serverEnv(db.url), exe, bareServerCommand)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()

	c := newClient(newTransport(1), srv.base)
	r := newRand(1)
	for ep := range numEndpoints {
		if _, err := c.do(ep, users[0], r); err != nil {
			t.Errorf("%s: %v", ep, err)
		}
	}
	if err := c.checkNotFound(users[0], users[1].tasks[0]); err != nil {
		t.Errorf("isolation: %v", err)
	}
	resp, err := c.send(http.MethodGet, "/api/tasks", "Bearer not-a-token", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("list with a bad token: got status %d, want 401", resp.StatusCode)
	}

	rec, _ := closedLoop(ctx, srv.base, users, mixed, 0, 500*time.Millisecond)
	n, errs := rec.totals()
	if n == 0 || errs > 0 {
		t.Errorf("mixed load: %d requests, %d errors: %v", n, errs, fmtErrs(rec))
	}
	if err := srv.stop(); err != nil {
		t.Error(err)
	}
	if lines := srv.errorLines(5); len(lines) > 0 {
		t.Errorf("server log: %q", lines)
	}
}

// mustMigrate gives db todo-api's schema with the project's own migrations.
func mustMigrate(tb testing.TB, db *database) {
	tb.Helper()
	ctx := context.Background()
	type migrator interface {
		Open(context.Context) error
		Migrate(context.Context) error
		Close() error
	}
	var m migrator = postgres.NewDB(db.url)
	if db.engine == "sqlite" {
		m = sqlite.NewDB(db.path)
	}
	if err := m.Open(ctx); err != nil {
		tb.Fatal(err)
	}
	defer m.Close()
	if err := m.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
}
