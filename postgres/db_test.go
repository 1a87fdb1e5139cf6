package postgres_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3"
	todo "github.com/todo-api/todo-api"
	"github.com/todo-api/todo-api/postgres"
	"github.com/todo-api/todo-api/postgres/pgtest"
	"github.com/todo-api/todo-api/todotest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// MustOpenDB opens a DB on url with cfg's clock and quota, closed at cleanup.
// It does not migrate.
func MustOpenDB(tb testing.TB, url string, cfg todotest.Config) *postgres.DB {
	tb.Helper()
	db := postgres.NewDB(url)
	if cfg.Now != nil {
		db.Now = cfg.Now
	}
	db.MaxTasksPerUser = cfg.MaxTasksPerUser
	if err := db.Open(context.Background()); err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// MustMigrate applies every migration to db.
func MustMigrate(tb testing.TB, db *postgres.DB) {
	tb.Helper()
	if err := db.Migrate(context.Background()); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"", "exec"} {
		name := "default"
		if mode != "" {
			name = mode
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			todotest.TestStore(t, func(t *testing.T, cfg todotest.Config) todotest.Store {
				// As a role that row-level security applies to.
				url := pgtest.UserURL(t)
				if mode != "" {
					url += "&default_query_exec_mode=" + mode
				}
				db := MustOpenDB(t, url, cfg)
				if mode != "" && db.QueryExecMode() != mode {
					t.Fatalf("QueryExecMode: got %q, want %q", db.QueryExecMode(), mode)
				}
				MustMigrate(t, db)
				return todotest.Store{Tasks: postgres.NewTaskService(db), Users: postgres.NewUserService(db)}
			})
		})
	}
}

// tables returns the application tables that exist in db's database.
func tables(tb testing.TB, url string) []string {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `
		SELECT tablename FROM pg_tables
		WHERE schemaname = 'public' AND tablename <> 'goose_db_version'
		ORDER BY tablename`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatalf("list tables: %v", err)
	}
	return names
}

func TestMigrateDownAndUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	db := MustOpenDB(t, url, todotest.Config{})

	if err := db.Ready(ctx); todo.ErrorCode(err) != todo.EUNAVAILABLE {
		t.Errorf("Ready before Migrate: got %v, want %s", err, todo.EUNAVAILABLE)
	}
	MustMigrate(t, db)
	if err := db.Ready(ctx); err != nil {
		t.Errorf("Ready after Migrate: %v", err)
	}
	if got, want := tables(t, url), []string{"tasks", "users"}; !slices.Equal(got, want) {
		t.Fatalf("tables after up: got %v, want %v", got, want)
	}
	// Data must not block a rollback: tasks reference users.
	users, tasks := postgres.NewUserService(db), postgres.NewTaskService(db)
	todotest.MustEnsureUser(t, users, "alice")
	todotest.MustCreateTask(t, tasks, "alice", todo.Task{Title: "survives nothing"})

	// 00004 (SQLite's clustering) and 00003 (row-level security) keep the
	// tables; 00002 drops tasks, 00001 users.
	for _, want := range [][]string{{"tasks", "users"}, {"tasks", "users"}, {"users"}, nil} {
		if err := db.MigrateDown(ctx); err != nil {
			t.Fatalf("MigrateDown: %v", err)
		}
		if got := tables(t, url); !slices.Equal(got, want) {
			t.Errorf("tables after down: got %v, want %v", got, want)
		}
		if err := db.Ready(ctx); todo.ErrorCode(err) != todo.EUNAVAILABLE {
			t.Errorf("Ready with a migration rolled back: got %v, want %s", err, todo.EUNAVAILABLE)
		}
	}
	status, err := db.MigrateStatus(ctx)
	if err != nil {
		t.Fatalf("MigrateStatus: %v", err)
	}
	checkStatus(t, "after rolling back", status, goose.StatePending, goose.StatePending, goose.StatePending, goose.StatePending)

	MustMigrate(t, db)
	if got, want := tables(t, url), []string{"tasks", "users"}; !slices.Equal(got, want) {
		t.Errorf("tables after up again: got %v, want %v", got, want)
	}
	status, err = db.MigrateStatus(ctx)
	if err != nil {
		t.Fatalf("MigrateStatus: %v", err)
	}
	checkStatus(t, "after up again", status, goose.StateApplied, goose.StateApplied, goose.StateApplied, goose.StateApplied)
	// The store works on the re-created tables, through the same pool.
	todotest.MustEnsureUser(t, users, "alice")
	task := todotest.MustCreateTask(t, tasks, "alice", todo.Task{Title: "after re-creation"})
	if got := todotest.MustFindTasks(t, tasks, "alice"); len(got) != 1 || got[0].ID != task.ID {
		t.Errorf("tasks after re-creation: got %v, want just %v", got, task)
	}

	if err := db.MigrateReset(ctx); err != nil {
		t.Fatalf("MigrateReset: %v", err)
	}
	if got := tables(t, url); len(got) != 0 {
		t.Errorf("tables after reset: got %v, want none", got)
	}
}

func checkStatus(tb testing.TB, what string, status []*goose.MigrationStatus, want ...goose.State) {
	tb.Helper()
	var got []goose.State
	for _, s := range status {
		got = append(got, s.State)
	}
	if !slices.Equal(got, want) {
		tb.Errorf("%s: got migration states %v, want %v", what, got, want)
	}
}

func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	// Two instances starting at once on an empty database.
	dbs := []*postgres.DB{MustOpenDB(t, url, todotest.Config{}), MustOpenDB(t, url, todotest.Config{})}
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.Migrate(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	for i, db := range dbs {
		if err := db.Ready(context.Background()); err != nil {
			t.Errorf("Ready %d: %v", i, err)
		}
	}
	if got, want := tables(t, url), []string{"tasks", "users"}; !slices.Equal(got, want) {
		t.Errorf("tables: got %v, want %v", got, want)
	}
}

// closedPort returns a TCP port on 127.0.0.1 where nothing listens.
func closedPort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	url := "postgres://postgres@127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/todo?sslmode=disable&connect_timeout=2"
	db := MustOpenDB(t, url, todotest.Config{})
	tasks, users := postgres.NewTaskService(db), postgres.NewUserService(db)
	id := "01900000-0000-7000-8000-000000000000"

	calls := map[string]func(ctx context.Context) error{
		"Ready":        db.Ready,
		"Migrate":      db.Migrate,
		"FindTaskByID": func(ctx context.Context) error { _, err := tasks.FindTaskByID(ctx, "alice", id); return err },
		"FindTasks": func(ctx context.Context) error {
			return tasks.FindTasks(ctx, "alice", func(*todo.Task) error { return nil })
		},
		"CreateTask": func(ctx context.Context) error { return tasks.CreateTask(ctx, "alice", &todo.Task{Title: "x"}) },
		"ToggleTask": func(ctx context.Context) error { _, err := tasks.ToggleTask(ctx, "alice", id); return err },
		"DeleteTask": func(ctx context.Context) error { return tasks.DeleteTask(ctx, "alice", id) },
		"EnsureUser": func(ctx context.Context) error { return users.EnsureUser(ctx, todo.Identity{UserID: "alice"}) },
	}
	// Refused connections are retried until the deadline: keep it short.
	const deadline = time.Second
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err := call(ctx)
			t.Logf("%s: %v", name, err)
			if got := todo.ErrorCode(err); got != todo.EUNAVAILABLE {
				t.Errorf("%s: got %v (code %q), want %s", name, err, got, todo.EUNAVAILABLE)
			}
			if !errors.Is(err, todo.ErrUnavailable) {
				t.Errorf("%s: got %v, want an error wrapping todo.ErrUnavailable", name, err)
			}
			if elapsed := time.Since(start); elapsed > deadline {
				t.Errorf("%s: took %v, want at most the %v deadline", name, elapsed, deadline)
			}
		})
	}
}

func TestUnreachableHost(t *testing.T) {
	t.Parallel()
	// .invalid never resolves (RFC 2606).
	db := MustOpenDB(t, "postgres://postgres@db.invalid:5432/todo?sslmode=disable", todotest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.Ready(ctx); todo.ErrorCode(err) != todo.EUNAVAILABLE {
		t.Errorf("Ready: got %v, want %s", err, todo.EUNAVAILABLE)
	}
}

func TestOpenInvalidURL(t *testing.T) {
	t.Parallel()
	db := postgres.NewDB("postgres://postgres@127.0.0.1:5432/todo?default_query_exec_mode=bogus")
	if err := db.Open(context.Background()); err == nil {
		db.Close()
		t.Errorf("Open with an invalid default_query_exec_mode: got nil error")
	}
}

func TestServerRestart(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	db := MustOpenDB(t, cluster.URL("postgres"), todotest.Config{})
	MustMigrate(t, db)
	tasks, users := postgres.NewTaskService(db), postgres.NewUserService(db)
	todotest.MustEnsureUser(t, users, "alice")
	task := todotest.MustCreateTask(t, tasks, "alice", todo.Task{Title: "outlives a restart"})

	cluster.Stop(t)
	// The pool still holds connections the server closed; every call must
	// still report the database as unavailable, not as an internal error.
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := tasks.FindTaskByID(ctx, "alice", task.ID)
		cancel()
		t.Logf("FindTaskByID %d with the server down: %v", i, err)
		if got := todo.ErrorCode(err); got != todo.EUNAVAILABLE {
			t.Errorf("FindTaskByID %d with the server down: got %v (code %q), want %s", i, err, got, todo.EUNAVAILABLE)
		}
		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		err = db.Ready(ctx)
		cancel()
		if got := todo.ErrorCode(err); got != todo.EUNAVAILABLE {
			t.Errorf("Ready %d with the server down: got %v, want %s", i, err, todo.EUNAVAILABLE)
		}
	}

	cluster.Start(t)
	if err := db.Ready(context.Background()); err != nil {
		t.Errorf("Ready after restart: %v", err)
	}
	if got := todotest.MustFindTaskByID(t, tasks, "alice", task.ID); got.Title != task.Title {
		t.Errorf("task after restart: got title %q, want %q", got.Title, task.Title)
	}
}

func TestInvalidTextIsNotInternal(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t, pgtest.URL(t), todotest.Config{})
	MustMigrate(t, db)
	tasks, users := postgres.NewTaskService(db), postgres.NewUserService(db)
	todotest.MustEnsureUser(t, users, "alice")

	// The domain refuses NUL in the fields it validates; a subject carrying
	// one reaches the store unchecked.
	err := users.EnsureUser(context.Background(), todo.Identity{UserID: "bad\x00subject"})
	if got := todo.ErrorCode(err); got != todo.EVALIDATION {
		t.Errorf("EnsureUser with NUL in the subject: got %v (code %q), want %s", err, got, todo.EVALIDATION)
	}
	// Claims the store cannot hold are dropped, not fatal.
	if err := users.EnsureUser(context.Background(), todo.Identity{UserID: "bob", Email: "bob\x00@example.com", Name: "B\x00b"}); err != nil {
		t.Errorf("EnsureUser with NUL in the claims: %v", err)
	}
	err = tasks.CreateTask(context.Background(), "alice", &todo.Task{Title: "nul\x00inside"})
	if got := todo.ErrorCode(err); got != todo.EVALIDATION {
		t.Errorf("CreateTask with NUL in the title: got %v (code %q), want %s", err, got, todo.EVALIDATION)
	}
}

func TestTaskIDSpelling(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t, pgtest.URL(t), todotest.Config{})
	MustMigrate(t, db)
	tasks, users := postgres.NewTaskService(db), postgres.NewUserService(db)
	todotest.MustEnsureUser(t, users, "alice")
	task := todotest.MustCreateTask(t, tasks, "alice", todo.Task{Title: "Alice's"})

	// UUIDs are case-insensitive; the SQLite store agrees.
	got := todotest.MustFindTaskByID(t, tasks, "alice", strings.ToUpper(task.ID))
	if got.ID != task.ID {
		t.Errorf("found by upper-case id: got id %q, want %q", got.ID, task.ID)
	}
}

func TestMigrateDownNothingApplied(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t, pgtest.URL(t), todotest.Config{})
	if err := db.MigrateDown(context.Background()); err == nil {
		t.Errorf("MigrateDown on an empty database: got nil error")
	}
}

func TestCanceledContextPassesThrough(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t, pgtest.URL(t), todotest.Config{})
	MustMigrate(t, db)
	tasks := postgres.NewTaskService(db)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := tasks.FindTasks(ctx, "alice", func(*todo.Task) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("FindTasks with a canceled context: got %v, want an error wrapping context.Canceled", err)
	}
	if got := todo.ErrorCode(err); got != todo.EINTERNAL {
		t.Errorf("FindTasks with a canceled context: got code %q, want %q (a client that left is not an outage)", got, todo.EINTERNAL)
	}
}
