package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	todo "github.com/todo-api/todo-api"
	"github.com/todo-api/todo-api/todotest"
)

// MustOpenDB opens and migrates a fresh database file in a temporary
// directory, closed when the test ends.
func MustOpenDB(tb testing.TB, cfg todotest.Config) *DB {
	tb.Helper()
	db := NewDB(filepath.Join(tb.TempDir(), "todo.db"))
	db.Now = cfg.Now
	db.MaxTasksPerUser = cfg.MaxTasksPerUser
	if err := db.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	if err := db.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return db
}

func TestConformance(t *testing.T) {
	todotest.TestStore(t, func(t *testing.T, cfg todotest.Config) todotest.Store {
		db := MustOpenDB(t, cfg)
		return todotest.Store{Tasks: NewTaskService(db), Users: NewUserService(db)}
	})
}

// tables returns the names of the application's tables in the file.
func tables(tb testing.TB, db *DB) []string {
	tb.Helper()
	return queryStrings(tb, db, `SELECT name FROM sqlite_schema WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' AND name != 'goose_db_version' ORDER BY name`)
}

// queryStrings returns the one text column query selects, row by row.
func queryStrings(tb testing.TB, db *DB, query string) []string {
	tb.Helper()
	rows, err := db.reader.Query(query)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			tb.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// states returns "file: state" for every migration.
func states(tb testing.TB, db *DB) []string {
	tb.Helper()
	status, err := db.MigrateStatus(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	var got []string
	for _, s := range status {
		got = append(got, fmt.Sprintf("%s: %s", filepath.Base(s.Source.Path), s.State))
	}
	return got
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := NewDB(filepath.Join(t.TempDir(), "todo.db"))
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	checkState := func(step string, wantTables, wantStates []string) {
		t.Helper()
		if diff := cmp.Diff(wantTables, tables(t, db)); diff != "" {
			t.Errorf("%s: tables (-want +got):\n%s", step, diff)
		}
		if diff := cmp.Diff(wantStates, states(t, db)); diff != "" {
			t.Errorf("%s: migration states (-want +got):\n%s", step, diff)
		}
	}
	files := []string{"00001_create_users.sql", "00002_create_tasks.sql", "00003_row_level_security.sql", "00004_cluster_tasks_by_user.sql"}
	// applied(n) is the state list with the first n migrations applied.
	applied := func(n int) []string {
		var out []string
		for i, f := range files {
			state := "pending"
			if i < n {
				state = "applied"
			}
			out = append(out, f+": "+state)
		}
		return out
	}
	clustered := []string{"tasks", "users"} // the id index is sqlite_autoindex_…
	rowid := []string{"tasks", "tasks_user_id_created_at_id_idx", "users"}

	checkState("fresh", nil, applied(0))
	if err := db.Ready(ctx); todo.ErrorCode(err) != todo.EUNAVAILABLE {
		t.Errorf("Ready before migrating: got %v, want %s", err, todo.EUNAVAILABLE)
	}

	for round := range 2 {
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("round %d: Migrate: %v", round, err)
		}
		checkState(fmt.Sprintf("round %d: up", round), clustered, applied(4))
		if err := db.Ready(ctx); err != nil {
			t.Errorf("round %d: Ready after migrating: %v", round, err)
		}
		// Data goes with the tables it lives in.
		users, tasks := NewUserService(db), NewTaskService(db)
		if _, err := users.FindUserByID(ctx, "alice"); todo.ErrorCode(err) != todo.ENOTFOUND {
			t.Errorf("round %d: alice before creating her: got %v, want %s", round, err, todo.ENOTFOUND)
		}
		todotest.MustEnsureUser(t, users, "alice")
		todotest.MustEnsureUser(t, users, "bob")
		for i := range 3 {
			todotest.MustCreateTask(t, tasks, "alice", todo.Task{Title: fmt.Sprintf("alice %d", i), Description: new("kept")})
			todotest.MustCreateTask(t, tasks, "bob", todo.Task{Title: fmt.Sprintf("bob %d", i)})
		}
		toggled, err := tasks.ToggleTask(ctx, "alice", mustList(t, tasks, "alice")[1].ID)
		if err != nil {
			t.Fatal(err)
		}
		before := map[string][]*todo.Task{"alice": mustList(t, tasks, "alice"), "bob": mustList(t, tasks, "bob")}
		if !before["alice"][1].IsCompleted || before["alice"][1].ID != toggled.ID {
			t.Fatalf("round %d: the toggled task is not where it was: %+v", round, before["alice"][1])
		}

		// 00004 moves every task between the two table layouts, both ways,
		// and loses or changes nothing.
		for _, step := range []string{"00004 down", "00004 up again"} {
			if step == "00004 down" {
				if err := db.MigrateDown(ctx); err != nil {
					t.Fatalf("round %d: MigrateDown of 00004: %v", round, err)
				}
				checkState(fmt.Sprintf("round %d: %s", round, step), rowid, applied(3))
			} else {
				if err := db.Migrate(ctx); err != nil {
					t.Fatalf("round %d: Migrate: %v", round, err)
				}
				checkState(fmt.Sprintf("round %d: %s", round, step), clustered, applied(4))
			}
			for user, want := range before {
				if diff := cmp.Diff(want, mustList(t, tasks, user)); diff != "" {
					t.Errorf("round %d: %s: %s's tasks (-before +after):\n%s", round, step, user, diff)
				}
			}
			got, err := tasks.FindTaskByID(ctx, "alice", toggled.ID)
			if err != nil || !cmp.Equal(got, before["alice"][1]) {
				t.Errorf("round %d: %s: FindTaskByID: %+v, %v", round, step, got, err)
			}
		}

		if err := db.MigrateDown(ctx); err != nil {
			t.Fatalf("round %d: MigrateDown of 00004: %v", round, err)
		}
		// 00003 is PostgreSQL's row-level security: a no-op here.
		if err := db.MigrateDown(ctx); err != nil {
			t.Fatalf("round %d: MigrateDown of 00003: %v", round, err)
		}
		checkState(fmt.Sprintf("round %d: 00003 down", round), rowid, applied(2))
		if err := db.MigrateDown(ctx); err != nil {
			t.Fatalf("round %d: MigrateDown of 00002: %v", round, err)
		}
		checkState(fmt.Sprintf("round %d: one down", round), []string{"users"}, applied(1))
		if err := db.Ready(ctx); todo.ErrorCode(err) != todo.EUNAVAILABLE {
			t.Errorf("round %d: Ready with a migration pending: got %v, want %s", round, err, todo.EUNAVAILABLE)
		}
		if err := db.MigrateDown(ctx); err != nil {
			t.Fatalf("round %d: MigrateDown of 00001: %v", round, err)
		}
		checkState(fmt.Sprintf("round %d: none", round), nil, applied(0))
	}
	if err := db.MigrateDown(ctx); err == nil {
		t.Errorf("MigrateDown with nothing applied: got nil error")
	}

	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.MigrateReset(ctx); err != nil {
		t.Fatalf("MigrateReset: %v", err)
	}
	checkState("reset", nil, applied(0))
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t, todotest.Config{})
	for _, c := range []struct {
		pool   string
		pragma string
		want   string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "synchronous", "2"}, // FULL
		{"writer", "foreign_keys", "1"},
		{"writer", "busy_timeout", "10000"},
		{"writer", "query_only", "0"},
		{"reader", "foreign_keys", "1"},
		{"reader", "busy_timeout", "10000"},
		{"reader", "query_only", "1"},
	} {
		pool := db.writer
		if c.pool == "reader" {
			pool = db.reader
		}
		var got string
		if err := pool.QueryRow("PRAGMA " + c.pragma).Scan(&got); err != nil {
			t.Fatalf("%s: PRAGMA %s: %v", c.pool, c.pragma, err)
		}
		if got != c.want {
			t.Errorf("%s: PRAGMA %s: got %q, want %q", c.pool, c.pragma, got, c.want)
		}
	}
	if _, err := db.reader.Exec(`DELETE FROM tasks`); err == nil {
		t.Errorf("write through the reader pool: got nil error, want a read-only error")
	}
}

// TestReopen checks that what one process wrote, the next one finds.
func TestReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := todotest.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC))
	path := filepath.Join(t.TempDir(), "todo.db")

	db := NewDB(path)
	db.Now = clock.Now
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	users, tasks := NewUserService(db), NewTaskService(db)
	todotest.MustEnsureUser(t, users, "alice")
	want := todotest.MustCreateTask(t, tasks, "alice", todo.Task{Title: "remember me", Description: new("across restarts")})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = NewDB(path)
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ready(ctx); err != nil {
		t.Errorf("Ready after reopening a migrated file: %v", err)
	}
	got := todotest.MustFindTasks(t, NewTaskService(db), "alice")
	if diff := cmp.Diff([]*todo.Task{want}, got); diff != "" {
		t.Errorf("tasks after reopening (-want +got):\n%s", diff)
	}
	// Migrating an up-to-date file is a no-op, not an error.
	if err := db.Migrate(ctx); err != nil {
		t.Errorf("Migrate on an up-to-date file: %v", err)
	}
}

// TestConcurrentWriters checks that writers queue on the single writer
// connection instead of failing with SQLITE_BUSY, while readers read.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t, todotest.Config{})
	users, tasks := NewUserService(db), NewTaskService(db)
	ctx := context.Background()

	const writers = 100
	errs := make(chan error, writers*10)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			userID := fmt.Sprintf("user-%d", i)
			if err := users.EnsureUser(ctx, todo.Identity{UserID: userID, Email: userID + "@example.com"}); err != nil {
				errs <- fmt.Errorf("%s: EnsureUser: %w", userID, err)
				return
			}
			var ids []string
			for j := range 3 {
				task := todo.Task{Title: fmt.Sprintf("task %d", j)}
				if err := tasks.CreateTask(ctx, userID, &task); err != nil {
					errs <- fmt.Errorf("%s: CreateTask: %w", userID, err)
					return
				}
				ids = append(ids, task.ID)
			}
			if _, err := tasks.ToggleTask(ctx, userID, ids[0]); err != nil {
				errs <- fmt.Errorf("%s: ToggleTask: %w", userID, err)
			}
			if _, err := tasks.ReplaceTask(ctx, userID, ids[1], todo.TaskUpdate{Title: "replaced"}); err != nil {
				errs <- fmt.Errorf("%s: ReplaceTask: %w", userID, err)
			}
			if err := tasks.DeleteTask(ctx, userID, ids[2]); err != nil {
				errs <- fmt.Errorf("%s: DeleteTask: %w", userID, err)
			}
			if err := tasks.FindTasks(ctx, userID, func(*todo.Task) error { return nil }); err != nil {
				errs <- fmt.Errorf("%s: FindTasks: %w", userID, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var n int
	if err := db.reader.QueryRow(`SELECT count(*) FROM tasks`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2*writers {
		t.Errorf("tasks stored: got %d, want %d", n, 2*writers)
	}
}

func TestOpenUnusablePath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	notADB := filepath.Join(dir, "text.db")
	if err := os.WriteFile(notADB, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"missing directory":   filepath.Join(dir, "missing", "todo.db"),
		"under a file":        filepath.Join(notADir, "todo.db"),
		"a directory":         dir,
		"not a database file": notADB,
		"empty":               "",
	} {
		db := NewDB(path)
		err := db.Open(context.Background())
		if err == nil {
			db.Close()
			t.Errorf("%s: Open(%q): got nil error", name, path)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: Open(%q): error %q does not name the path", name, path, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestParseTaskID(t *testing.T) {
	for id, want := range map[string]string{
		"0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6071":   "0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6071",
		"0195B3C4-5D6E-7F80-9A1B-2C3D4E5F6071":   "0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6071",
		"{0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6071}": "",
		"0195b3c45d6e7f809a1b2c3d4e5f6071":       "",
		"0195b3c4-5d6e-7f80-9a1b-2c3d4e5f607":    "",
		"abc":                                    "",
	} {
		got, ok := parseTaskID(id)
		if got != want || ok != (want != "") {
			t.Errorf("parseTaskID(%q): got %q, %v; want %q, %v", id, got, ok, want, want != "")
		}
	}
}

// TestKillDuringWrites kills a process that is writing with SIGKILL and
// checks that every write it acknowledged is in the file afterwards.
func TestKillDuringWrites(t *testing.T) {
	if path := os.Getenv("TODO_SQLITE_KILL_TEST_PATH"); path != "" {
		writeUntilKilled(t, path)
		return
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "todo.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringWrites$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TODO_SQLITE_KILL_TEST_PATH="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	lines := bufio.NewScanner(stdout)
	for len(acked) < 300 && lines.Scan() {
		if id, ok := strings.CutPrefix(lines.Text(), "ack "); ok {
			acked = append(acked, id)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: the error is expected
	if len(acked) < 300 {
		t.Fatalf("the writer acknowledged %d writes before it stopped, want 300", len(acked))
	}

	db := NewDB(path)
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tasks := NewTaskService(db)
	for _, id := range acked {
		if _, err := tasks.FindTaskByID(context.Background(), "alice", id); err != nil {
			t.Errorf("acknowledged task %s after the kill: %v", id, err)
		}
	}
}

// writeUntilKilled is the child of TestKillDuringWrites: it creates tasks
// from several goroutines and prints each id once CreateTask has returned.
func writeUntilKilled(t *testing.T, path string) {
	ctx := context.Background()
	db := NewDB(path)
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	todotest.MustEnsureUser(t, NewUserService(db), "alice")
	tasks := NewTaskService(db)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				task := todo.Task{Title: "must survive"}
				if err := tasks.CreateTask(ctx, "alice", &task); err != nil {
					fmt.Fprintln(os.Stderr, "CreateTask:", err)
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", task.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// mustList returns the user's tasks in list order.
func mustList(tb testing.TB, tasks *TaskService, userID string) []*todo.Task {
	tb.Helper()
	var out []*todo.Task
	if err := tasks.FindTasks(context.Background(), userID, func(t *todo.Task) error {
		out = append(out, t)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return out
}
