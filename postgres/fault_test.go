package postgres_test

import (
	"context"
	"testing"
	"time"

	todo "github.com/todo-api/todo-api"
	"github.com/todo-api/todo-api/postgres"
	"github.com/todo-api/todo-api/postgres/pgtest"
	"github.com/todo-api/todo-api/todotest"
)

// TestWaitsForServerToWake is Neon's compute waking from suspend: the
// server is down when a call starts and back within the call's deadline;
// the call waits and succeeds rather than failing. Reads and writes both,
// right after the stop (stale connections in the pool) and later.
func TestWaitsForServerToWake(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	db := MustOpenDB(t, cluster.UserURL(t), todotest.Config{})
	MustMigrate(t, db)
	tasks, users := postgres.NewTaskService(db), postgres.NewUserService(db)
	todotest.MustEnsureUser(t, users, "alice")
	// Several connections in the pool, all idle when the server stops.
	for range 4 {
		todotest.MustCreateTask(t, tasks, "alice", todo.Task{Title: "before"})
		todotest.MustFindTasks(t, tasks, "alice")
	}

	cluster.Stop(t)
	type result struct {
		name    string
		err     error
		elapsed time.Duration
	}
	results := make(chan result)
	calls := map[string]func(ctx context.Context) error{
		"CreateTask": func(ctx context.Context) error {
			return tasks.CreateTask(ctx, "alice", &todo.Task{Title: "while waking"})
		},
		"FindTasks": func(ctx context.Context) error {
			return tasks.FindTasks(ctx, "alice", func(*todo.Task) error { return nil })
		},
		"EnsureUser": func(ctx context.Context) error {
			return users.EnsureUser(ctx, todo.Identity{UserID: "bob"})
		},
	}
	for name, call := range calls {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := call(ctx)
			results <- result{name, err, time.Since(start)}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	cluster.Start(t)
	for range calls {
		r := <-results
		t.Logf("%s: %v after %v", r.name, r.err, r.elapsed.Round(time.Millisecond))
		if r.err != nil {
			t.Errorf("%s while the server woke up: got %v, want success", r.name, r.err)
		}
	}
}

// TestGivesUpAtDeadline: a server that stays down costs a call its
// deadline, not more, and the answer is SERVICE_UNAVAILABLE.
func TestGivesUpAtDeadline(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	db := MustOpenDB(t, cluster.UserURL(t), todotest.Config{})
	MustMigrate(t, db)
	tasks := postgres.NewTaskService(db)
	todotest.MustEnsureUser(t, postgres.NewUserService(db), "alice")
	todotest.MustCreateTask(t, tasks, "alice", todo.Task{Title: "before"})
	cluster.Stop(t)

	const deadline = 800 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := tasks.CreateTask(ctx, "alice", &todo.Task{Title: "never"})
	elapsed := time.Since(start)
	if got := todo.ErrorCode(err); got != todo.EUNAVAILABLE {
		t.Errorf("CreateTask with the server down: got %v (code %q), want %s", err, got, todo.EUNAVAILABLE)
	}
	if elapsed > deadline {
		t.Errorf("CreateTask took %v, want at most the %v deadline", elapsed, deadline)
	}
	if elapsed < deadline/2 {
		t.Errorf("CreateTask gave up after %v, want it to keep trying for most of the %v deadline", elapsed, deadline)
	}
}
