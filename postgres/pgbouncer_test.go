package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3/lock"
	todo "github.com/todo-api/todo-api"
	"github.com/todo-api/todo-api/postgres/pgtest"
	"github.com/todo-api/todo-api/todotest"
)

// workload runs a mix of every task call for users user0…user{n-1} at once
// and returns the errors it met.
func workload(tb testing.TB, db *DB, users, rounds int) []error {
	tb.Helper()
	tasks, accounts := NewTaskService(db), NewUserService(db)
	var mu sync.Mutex
	var errs []error
	note := func(what string, err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			mu.Unlock()
		}
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range users {
		user := fmt.Sprintf("user%d", i)
		wg.Go(func() {
			note("EnsureUser", accounts.EnsureUser(ctx, todo.Identity{UserID: user}))
			for r := range rounds {
				task := &todo.Task{Title: fmt.Sprintf("%s %d", user, r)}
				if err := tasks.CreateTask(ctx, user, task); err != nil {
					note("CreateTask", err)
					continue
				}
				_, err := tasks.FindTaskByID(ctx, user, task.ID)
				note("FindTaskByID", err)
				_, err = tasks.ToggleTask(ctx, user, task.ID)
				note("ToggleTask", err)
				_, err = tasks.ReplaceTask(ctx, user, task.ID, todo.TaskUpdate{Title: "replaced"})
				note("ReplaceTask", err)
				n := 0
				note("FindTasks", tasks.FindTasks(ctx, user, func(t *todo.Task) error {
					if t.UserID != user {
						return fmt.Errorf("%s listed a task of %s", user, t.UserID)
					}
					n++
					return nil
				}))
				if r%2 == 1 {
					note("DeleteTask", tasks.DeleteTask(ctx, user, task.ID))
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// TestPgBouncerPooledModes runs the store through PgBouncer in transaction
// mode, as behind Neon's pooled endpoint, in each statement mode that works
// there (cache_describe is what a pooled host gets by default): migrations
// (under the table lock, not a session advisory lock), every call under
// concurrency, and row-level security, whose transaction-local setting must
// hold for its statement and reach no other client, though clients share
// two server connections.
func TestPgBouncerPooledModes(t *testing.T) {
	t.Parallel()
	for mode, want := range map[string]pgx.QueryExecMode{"cache_describe": pgx.QueryExecModeCacheDescribe, "exec": pgx.QueryExecModeExec} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			bouncer := pgtest.NewPgBouncer(t, pgtest.UserURL(t), 2)
			url := bouncer.URL() + "&default_query_exec_mode=" + mode
			db := mustOpen(t, url)
			if got := db.QueryExecMode(); got != want.String() {
				t.Fatalf("statement mode: got %q, want %q", got, want)
			}
			if enforced, err := db.RLSEnforced(context.Background()); err != nil || !enforced {
				t.Fatalf("RLSEnforced through PgBouncer: got %v, %v; want true", enforced, err)
			}
			for _, err := range workload(t, db, 8, 15) {
				t.Errorf("through PgBouncer in %s mode: %v", mode, err)
			}
			// No user set on whatever server connection this lands on: nothing.
			if got := queryUserIDs(t, db, "", `SELECT user_id FROM tasks`); len(got) != 0 {
				t.Errorf("SELECT without a filter and no user, through PgBouncer: got %d rows, want none", len(got))
			}
			// Migrations took goose's table lock, which survives PgBouncer, not a
			// session advisory lock, which would stay on one server connection.
			if got := queryUserIDs(t, db, "", `SELECT COALESCE(to_regclass('`+lock.DefaultLockTableName+`')::text, '')`); !slices.Equal(got, []string{lock.DefaultLockTableName}) {
				t.Errorf("lock table after migrating through PgBouncer: got %q, want %q", got, lock.DefaultLockTableName)
			}
			// A second instance migrating again finds nothing to do and no lock left.
			mustOpen(t, url)
		})
	}
}

// TestPgBouncerCacheStatementBreaks shows why pooled URLs get another mode:
// pgx's default mode prepares each statement once per connection and then
// runs it by name, but PgBouncer (before 1.21, or with
// max_prepared_statements = 0) hands the next transaction to a server
// connection that never prepared it.
func TestPgBouncerCacheStatementBreaks(t *testing.T) {
	t.Parallel()
	url := pgtest.UserURL(t)
	mustOpen(t, url) // migrate directly: goose's session lock needs a session
	bouncer := pgtest.NewPgBouncer(t, url, 2)
	db := NewDB(bouncer.URL() + "&default_query_exec_mode=cache_statement")
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	errs := workload(t, db, 8, 15)
	prepared := 0
	for _, err := range errs {
		if strings.Contains(err.Error(), "prepared statement") {
			prepared++
		}
	}
	t.Logf("cache_statement through PgBouncer: %d errors, %d about prepared statements; first: %v", len(errs), prepared, first(errs))
	if prepared == 0 {
		t.Errorf("cache_statement through PgBouncer transaction mode: got no prepared-statement errors; " +
			"if PgBouncer now keeps prepared statements, the rule for pooled URLs can be revisited")
	}
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

// BenchmarkRLSCost measures what row-level security costs per call: the
// same calls alternate between a store with RLS (migration 00003, a role
// subject to it, app.user_id set in each batch) and one without (the
// policy disabled on its table, no setting sent), on the same server in the
// same run, so that the ratio is fair on a busy machine. It reports
// ops/s for each and rls/plain, the fraction of throughput kept.
func BenchmarkRLSCost(b *testing.B) {
	ctx := context.Background()
	open := func(rls bool) (*TaskService, []*todo.Task) {
		url := pgtest.UserURL(b)
		db := mustOpen(b, url)
		if !rls {
			db.withoutUser = true
			if err := db.run(ctx, "disable rls", "", func(q *userConn) error {
				_, err := q.Exec(ctx, `ALTER TABLE tasks DISABLE ROW LEVEL SECURITY`)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
		tasks, users := NewTaskService(db), NewUserService(db)
		var mine []*todo.Task
		// 50 users of 20 tasks each; the benchmark works as user0.
		for u := range 50 {
			user := fmt.Sprintf("user%d", u)
			todotest.MustEnsureUser(b, users, user)
			for i := range 20 {
				t := todotest.MustCreateTask(b, tasks, user, todo.Task{Title: fmt.Sprint(i)})
				if u == 0 {
					mine = append(mine, t)
				}
			}
		}
		return tasks, mine
	}
	withRLS, rlsTasks := open(true)
	plain, plainTasks := open(false)

	calls := map[string]func(s *TaskService, tasks []*todo.Task, i int) error{
		"FindTasks": func(s *TaskService, _ []*todo.Task, _ int) error {
			n := 0
			return s.FindTasks(ctx, "user0", func(*todo.Task) error { n++; return nil })
		},
		"ToggleTask": func(s *TaskService, tasks []*todo.Task, i int) error {
			_, err := s.ToggleTask(ctx, "user0", tasks[i%len(tasks)].ID)
			return err
		},
	}
	for _, name := range []string{"FindTasks", "ToggleTask"} {
		call := calls[name]
		b.Run(name, func(b *testing.B) {
			var rlsTime, plainTime int64
			i := 0
			for b.Loop() {
				start := nanotime()
				if err := call(withRLS, rlsTasks, i); err != nil {
					b.Fatal(err)
				}
				mid := nanotime()
				if err := call(plain, plainTasks, i); err != nil {
					b.Fatal(err)
				}
				rlsTime += mid - start
				plainTime += nanotime() - mid
				i++
			}
			rlsOps := float64(i) / (float64(rlsTime) / 1e9)
			plainOps := float64(i) / (float64(plainTime) / 1e9)
			b.ReportMetric(rlsOps, "rls_ops/s")
			b.ReportMetric(plainOps, "plain_ops/s")
			b.ReportMetric(rlsOps/plainOps, "rls/plain")
		})
	}
}

func nanotime() int64 { return time.Now().UnixNano() }

func TestPoolerLock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want bool
	}{
		{"postgres://u@127.0.0.1/db", false},
		{"postgres://u@127.0.0.1/db?default_query_exec_mode=cache_statement", false},
		{"postgres://u@127.0.0.1:6432/db?default_query_exec_mode=cache_describe", true},
		{"postgres://u@127.0.0.1:6432/db?default_query_exec_mode=exec", true},
		{"postgres://u@127.0.0.1:6432/db?default_query_exec_mode=simple_protocol", true},
		{"postgresql://u@ep-x-pooler.us-east-2.aws.neon.tech/db?sslmode=require", true},
		// Asking for prepared statements on a pooled host is the caller's
		// choice of mode, but the lock must still survive the pooler.
		{"postgresql://u@ep-x-pooler.us-east-2.aws.neon.tech/db?default_query_exec_mode=cache_statement", true},
	}
	for _, tt := range tests {
		cfg, err := poolConfig(tt.url)
		if err != nil {
			t.Fatalf("poolConfig(%q): %v", tt.url, err)
		}
		if got := poolerLock(cfg.ConnConfig); got != tt.want {
			t.Errorf("poolerLock(%q): got %v, want %v", tt.url, got, tt.want)
		}
	}
}
