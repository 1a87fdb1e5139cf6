package postgres

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	todo "github.com/todo-api/todo-api"
	"github.com/todo-api/todo-api/postgres/pgtest"
	"github.com/todo-api/todo-api/todotest"
)

// mustOpen opens and migrates a DB on url, closed at cleanup.
func mustOpen(tb testing.TB, url string) *DB {
	tb.Helper()
	db := NewDB(url)
	if err := db.Open(context.Background()); err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return db
}

// queryUserIDs runs sql, which selects one text column, as userID through
// the store's own per-user path.
func queryUserIDs(tb testing.TB, db *DB, userID, sql string) []string {
	tb.Helper()
	ctx := context.Background()
	var got []string
	err := db.read(ctx, "test query", userID, func(q *userConn) error {
		rows, err := q.Query(ctx, sql)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		tb.Fatalf("query %q as %q: %v", sql, userID, err)
	}
	return got
}

// TestRowLevelSecurity proves the isolation in the database itself: a
// statement with no user filter at all sees and changes only the rows of
// the user set for its transaction, and nothing when no user is set. It
// runs in every statement mode, since each sends the batch differently.
func TestRowLevelSecurity(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"cache_statement", "exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := pgtest.UserURL(t)
			mustOpen(t, url)
			// One connection, so that what a batch leaves behind on its
			// session would be seen by the next statement. (goose needs
			// two: the pool above migrated.)
			db := NewDB(url + "&pool_max_conns=1&default_query_exec_mode=" + mode)
			if err := db.Open(ctx); err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			tasks, users := NewTaskService(db), NewUserService(db)
			for _, u := range []string{"alice", "bob"} {
				todotest.MustEnsureUser(t, users, u)
				for range 2 {
					todotest.MustCreateTask(t, tasks, u, todo.Task{Title: u + "'s"})
				}
			}
			enforced, err := db.RLSEnforced(ctx)
			if err != nil || !enforced {
				t.Fatalf("RLSEnforced as a plain role: got %v, %v; want true", enforced, err)
			}

			const noFilter = `SELECT user_id FROM tasks`
			if got, want := queryUserIDs(t, db, "alice", noFilter), []string{"alice", "alice"}; !slices.Equal(got, want) {
				t.Errorf("SELECT without a filter as alice: got %v, want %v", got, want)
			}
			// The setting was transaction-local: the same session, next
			// statement, sees no user and so no rows.
			if got := queryUserIDs(t, db, "", noFilter); len(got) != 0 {
				t.Errorf("SELECT without a filter and no user set, after alice's batch: got %v, want none", got)
			}
			if got := queryUserIDs(t, db, "", `SELECT COALESCE(current_setting('app.user_id', true), '<null>')`); !slices.Equal(got, []string{""}) {
				t.Errorf("app.user_id after alice's batch: got %q, want it reset to empty", got)
			}

			// Writes without a filter: alice's rows only; bob's stay.
			var updated int64
			err = db.run(ctx, "test update", "alice", func(q *userConn) error {
				tag, err := q.Exec(ctx, `UPDATE tasks SET title = 'overwritten'`)
				updated = tag.RowsAffected()
				return err
			})
			if err != nil || updated != 2 {
				t.Errorf("UPDATE without a filter as alice: got %d rows, %v; want 2 rows", updated, err)
			}
			for _, task := range todotest.MustFindTasks(t, tasks, "bob") {
				if task.Title != "bob's" {
					t.Errorf("bob's task after alice's unfiltered UPDATE: got title %q", task.Title)
				}
			}
			// And alice cannot write a row for bob.
			err = db.run(ctx, "test insert", "alice", func(q *userConn) error {
				_, err := q.Exec(ctx, `INSERT INTO tasks (id, user_id, title, created_at, updated_at)
					VALUES (gen_random_uuid(), 'bob', 'planted', now(), now())`)
				return err
			})
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
				t.Errorf("INSERT of bob's row as alice: got %v, want a row-level security violation (42501)", err)
			}
		})
	}
}

// TestRowLevelSecurityRawSession checks the policy with plain SQL on a
// session of its own, outside the store.
func TestRowLevelSecurityRawSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.UserURL(t)
	db := mustOpen(t, url)
	tasks, users := NewTaskService(db), NewUserService(db)
	for _, u := range []string{"alice", "bob"} {
		todotest.MustEnsureUser(t, users, u)
		todotest.MustCreateTask(t, tasks, u, todo.Task{Title: u + "'s"})
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	count := func() int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM tasks`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Errorf("SELECT * FROM tasks with no user set: got %d rows, want 0", n)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('app.user_id', 'alice', true)`); err != nil {
		t.Fatal(err)
	}
	var owners []string
	rows, _ := tx.Query(ctx, `SELECT user_id FROM tasks`)
	if owners, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(owners, []string{"alice"}) {
		t.Errorf("SELECT * FROM tasks as alice: got owners %v, want [alice]", owners)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Errorf("SELECT * FROM tasks after alice's transaction ended: got %d rows, want 0", n)
	}
}

// TestRLSEnforcedSuperuser: a superuser ignores every policy; the store
// says so and warns when it migrates.
func TestRLSEnforcedSuperuser(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	db := NewDB(pgtest.URL(t))
	db.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	enforced, err := db.RLSEnforced(context.Background())
	if err != nil || enforced {
		t.Errorf("RLSEnforced as a superuser: got %v, %v; want false", enforced, err)
	}
	if !strings.Contains(logs.String(), "row-level security is NOT enforced") {
		t.Errorf("Migrate as a superuser logged no warning; log:\n%s", logs.String())
	}
}

// TestStatementDeadline: a statement blocked by a lock ends at the
// context's deadline, and the server cancels it rather than leaving it
// queued behind the lock.
func TestStatementDeadline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.UserURL(t)
	db := mustOpen(t, url)
	tasks := NewTaskService(db)
	todotest.MustEnsureUser(t, NewUserService(db), "alice")
	todotest.MustCreateTask(t, tasks, "alice", todo.Task{Title: "locked"})

	locker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	const deadline = 700 * time.Millisecond
	callCtx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start := time.Now()
	err = tasks.CreateTask(callCtx, "alice", &todo.Task{Title: "blocked"})
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("CreateTask behind a lock: got %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if elapsed < deadline || elapsed > deadline+600*time.Millisecond {
		t.Errorf("CreateTask behind a lock took %v, want the %v deadline (plus at most 600ms)", elapsed, deadline)
	}
	// The canceled INSERT must not be waiting for the lock any more, or it
	// would commit once the lock goes.
	var waiting int
	for range 20 {
		if err := locker.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if waiting != 0 {
		t.Errorf("after the deadline: %d statements still wait for the lock, want 0", waiting)
	}
	tx.Rollback(ctx)
	got := todotest.MustFindTasks(t, tasks, "alice")
	if len(got) != 1 {
		t.Errorf("tasks after the lock went: got %d, want 1 (the timed-out create must not have committed)", len(got))
	}
}
