package postgres_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	todo "github.com/todo-api/todo-api"
	"github.com/todo-api/todo-api/postgres"
	"github.com/todo-api/todo-api/postgres/pgtest"
	"github.com/todo-api/todo-api/todotest"
)

// TestListDecodingMatchesScan holds FindTasks' direct binary decoding to
// pgx's Scan, which the simple protocol (text results) still uses.
func TestListDecodingMatchesScan(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	clock := todotest.NewClock(time.Date(2026, 11, 25, 19, 9, 18, 535897932, time.UTC))
	binaryDB := MustOpenDB(t, url, todotest.Config{Now: clock.Now})
	MustMigrate(t, binaryDB)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	textDB := MustOpenDB(t, url+sep+"default_query_exec_mode=simple_protocol", todotest.Config{})

	users, tasks := postgres.NewUserService(binaryDB), postgres.NewTaskService(binaryDB)
	todotest.MustEnsureUser(t, users, "decoder")
	desc, empty := "line\nbreak, ünïcode 😀, 'quotes'", ""
	for i, task := range []todo.Task{
		{Title: "no description"},
		{Title: "with description", Description: &desc, IsCompleted: true},
		{Title: "empty description", Description: &empty},
		{Title: strings.Repeat("界", 500)},
	} {
		clock.Add(time.Duration(i) * 1500 * time.Millisecond)
		todotest.MustCreateTask(t, tasks, "decoder", task)
	}
	// Dates far from the epoch on both sides of it.
	clock.Add(-30 * 365 * 24 * time.Hour)
	todotest.MustCreateTask(t, tasks, "decoder", todo.Task{Title: "before 2000"})

	fromBinary := todotest.MustFindTasks(t, tasks, "decoder")
	fromText := todotest.MustFindTasks(t, postgres.NewTaskService(textDB), "decoder")
	if len(fromBinary) != 5 {
		t.Fatalf("got %d tasks, want 5", len(fromBinary))
	}
	if diff := cmp.Diff(fromText, fromBinary); diff != "" {
		t.Errorf("binary decoding differs from Scan (-scan +binary):\n%s", diff)
	}
	for _, task := range fromBinary {
		if task.CreatedAt.Location() != time.UTC {
			t.Errorf("created_at in %v, want UTC", task.CreatedAt.Location())
		}
	}
}
