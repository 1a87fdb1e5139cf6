package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/todo-api/todo-api/postgres/pgtest"
)

// TestPgBouncerTransactionMode runs the binary through PgBouncer in
// transaction pool mode, as on Neon's pooled endpoint, with the URL asking
// for the statement mode a -pooler host gets by default, cache_describe (no
// prepared statements kept on a connection):
// migrations apply through it, and every task route works under
// concurrency, each user seeing only their own tasks, with no
// prepared-statement error. PgBouncer gets two server connections for
// twelve clients, so consecutive transactions of one client land on
// different server connections.
func TestPgBouncerTransactionMode(t *testing.T) {
	t.Parallel()
	bouncer := pgtest.NewPgBouncer(t, pgtest.UserURL(t), 2)
	dir, env := t.TempDir(), pgFaultEnv(bouncer.URL()+"&default_query_exec_mode=cache_describe")
	p := startProcess(t, dir, env)
	p.WaitReady(t)

	const users, rounds = 6, 8
	var mu sync.Mutex
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for u := range users {
		user := fmt.Sprintf("pooled%d", u)
		token := processToken(t, dir, env, user)
		// Two clients per user: toggles race on the same rows.
		for c := range 2 {
			wg.Go(func() {
				expect := func(what string, r pgResult, want int) bool {
					if r.status != want {
						fail("%s %s (client %d): got %v %v, want %d", user, what, c, r, r.body, want)
						return false
					}
					return true
				}
				for i := range rounds {
					created := pgCall("POST", p.Base+"/api/tasks", token, map[string]any{"title": fmt.Sprintf("%s/%d/%d", user, c, i)})
					if !expect("POST /api/tasks", created, http.StatusCreated) {
						continue
					}
					id := created.body["id"].(string)
					item := p.Base + "/api/tasks/" + id
					expect("GET /api/tasks/{id}", pgCall("GET", item, token, nil), http.StatusOK)
					expect("PUT /api/tasks/{id}", pgCall("PUT", item, token, map[string]any{"title": "renamed", "description": "d"}), http.StatusOK)
					expect("PATCH /api/tasks/{id}/toggle", pgCall("PATCH", item+"/toggle", token, nil), http.StatusOK)
					list := pgCall("GET", p.Base+"/api/tasks", token, nil)
					if expect("GET /api/tasks", list, http.StatusOK) {
						tasks, _ := list.body["tasks"].([]any)
						for _, task := range tasks {
							if owner := task.(map[string]any)["user_id"]; owner != user {
								fail("%s listed a task of %v", user, owner)
							}
						}
					}
					if i%2 == 1 {
						expect("DELETE /api/tasks/{id}", pgCall("DELETE", item, token, nil), http.StatusNoContent)
						expect("GET /api/tasks/{id} after delete", pgCall("GET", item, token, nil), http.StatusNotFound)
					}
				}
			})
		}
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	for u := range users {
		token := processToken(t, dir, env, fmt.Sprintf("pooled%d", u))
		list := pgCall("GET", p.Base+"/api/tasks", token, nil)
		if want := float64(2 * rounds / 2); list.status != http.StatusOK || list.body["count"] != want {
			t.Errorf("pooled%d at the end: got %v count %v, want 200 with %v tasks", u, list, list.body["count"], want)
		}
	}
	if logs := p.Logs.String(); strings.Contains(logs, "prepared statement") {
		t.Errorf("log mentions prepared statements:\n%s", tail(logs, 2000))
	}
}
