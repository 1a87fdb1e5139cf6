package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/todo-api/todo-api/postgres/pgtest"
)

// The tests in this file run the real binary on PostgreSQL and take the
// database away under it: down at start, restarted under load, waking up
// mid-request, and holding a lock past a request's deadline.

// pgRequestTimeout is the binary's REQUEST_TIMEOUT in these tests, and
// pgAnswerMargin what an answer may take beyond it (the server's cancel of
// the statement, writing the response, a busy machine).
const (
	pgRequestTimeout = 3 * time.Second
	pgAnswerMargin   = time.Second
)

// pgFaultEnv is the binary's environment on databaseURL: a short request
// deadline and no rate limits, since the load comes from one address.
func pgFaultEnv(databaseURL string) map[string]string {
	return map[string]string{
		"DATABASE_URL":    databaseURL,
		"JWT_SECRET":      "fault-test-secret-that-is-at-least-32-bytes",
		"REQUEST_TIMEOUT": pgRequestTimeout.String(),
		"RATE_LIMIT_USER": "0",
		"RATE_LIMIT_IP":   "0",
	}
}

// pgResult is one request's outcome.
type pgResult struct {
	status  int
	code    string // error.code of an error body
	body    map[string]any
	elapsed time.Duration
	err     error // no answer at all (a hang past the client's timeout)
}

func (r pgResult) String() string {
	if r.err != nil {
		return fmt.Sprintf("no answer after %v: %v", r.elapsed.Round(time.Millisecond), r.err)
	}
	return fmt.Sprintf("%d %s after %v", r.status, r.code, r.elapsed.Round(time.Millisecond))
}

// pgClient gives up well after any answer should have come, so a hang is
// reported rather than stalling the test.
var pgClient = &http.Client{Timeout: pgRequestTimeout + 5*time.Second}

// pgCall makes a request and times it; safe in goroutines (it never fails
// the test itself).
func pgCall(method, url, token string, body any) pgResult {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return pgResult{err: err}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := pgClient.Do(req)
	if err != nil {
		return pgResult{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	res := pgResult{status: resp.StatusCode, elapsed: time.Since(start), err: err}
	json.Unmarshal(raw, &res.body)
	if e, ok := res.body["error"].(map[string]any); ok {
		res.code, _ = e["code"].(string)
	}
	return res
}

// checkUnavailable fails unless r is a 503 SERVICE_UNAVAILABLE answered
// within the request deadline plus the margin.
func checkUnavailable(tb testing.TB, what string, r pgResult) {
	tb.Helper()
	if r.err != nil || r.status != http.StatusServiceUnavailable || r.code != "SERVICE_UNAVAILABLE" {
		tb.Errorf("%s: got %v, want 503 SERVICE_UNAVAILABLE", what, r)
	}
	if r.elapsed > pgRequestTimeout+pgAnswerMargin {
		tb.Errorf("%s: answered after %v, want within %v", what, r.elapsed, pgRequestTimeout+pgAnswerMargin)
	}
}

// TestPostgresDownAtStart: the server starts without its database, says so
// on /ready and every data route, and recovers by itself when the
// database comes up: migrations apply in the background, no restart.
func TestPostgresDownAtStart(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	url := cluster.UserURL(t)
	cluster.Stop(t)

	dir, env := t.TempDir(), pgFaultEnv(url)
	p := startProcess(t, dir, env)
	p.WaitHealthy(t)
	token := processToken(t, dir, env, "alice")

	if r := pgCall("GET", p.Base+"/health", "", nil); r.status != http.StatusOK {
		t.Errorf("/health with the database down: got %v, want 200", r)
	}
	checkUnavailable(t, "/ready with the database down", pgCall("GET", p.Base+"/ready", "", nil))
	checkUnavailable(t, "GET /api/tasks with the database down", pgCall("GET", p.Base+"/api/tasks", token, nil))
	checkUnavailable(t, "POST /api/tasks with the database down", pgCall("POST", p.Base+"/api/tasks", token, map[string]any{"title": "too early"}))

	cluster.Start(t)
	up := time.Now()
	p.WaitReady(t)
	t.Logf("ready %v after the database came up", time.Since(up).Round(time.Millisecond))
	created := pgCall("POST", p.Base+"/api/tasks", token, map[string]any{"title": "after recovery"})
	if created.status != http.StatusCreated {
		t.Fatalf("POST /api/tasks after recovery: got %v, want 201", created)
	}
	list := pgCall("GET", p.Base+"/api/tasks", token, nil)
	if list.status != http.StatusOK || list.body["count"] != float64(1) {
		t.Errorf("GET /api/tasks after recovery: got %v %v, want 200 with the one task", list, list.body)
	}
}

// TestPostgresRestartUnderLoad: the database stops and starts while
// clients create and list tasks. Requests in the gap may get 503, never
// 500 and never a hang; afterwards everything works and every task that
// was acknowledged with 201 is there.
func TestPostgresRestartUnderLoad(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	dir, env := t.TempDir(), pgFaultEnv(cluster.UserURL(t))
	p := startProcess(t, dir, env)
	p.WaitReady(t)

	const workers = 6
	tokens := make([]string, workers)
	for i := range tokens {
		tokens[i] = processToken(t, dir, env, fmt.Sprintf("loader%d", i))
		if r := pgCall("GET", p.Base+"/api/tasks", tokens[i], nil); r.status != http.StatusOK {
			t.Fatalf("warm-up list: %v", r)
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	acked := make([][]string, workers)
	statuses := map[int]int{}
	var wrong []string
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				create := pgCall("POST", p.Base+"/api/tasks", tokens[w], map[string]any{"title": fmt.Sprintf("w%d #%d", w, i)})
				list := pgCall("GET", p.Base+"/api/tasks", tokens[w], nil)
				mu.Lock()
				if create.status == http.StatusCreated {
					acked[w] = append(acked[w], create.body["id"].(string))
				}
				for what, r := range map[string]pgResult{"POST": create, "GET": list} {
					statuses[r.status]++
					ok := r.status == http.StatusCreated && what == "POST" || r.status == http.StatusOK && what == "GET" ||
						r.status == http.StatusServiceUnavailable && r.code == "SERVICE_UNAVAILABLE"
					if !ok || r.err != nil || r.elapsed > pgRequestTimeout+pgAnswerMargin {
						wrong = append(wrong, fmt.Sprintf("%s /api/tasks: %v", what, r))
					}
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	down := time.Now()
	cluster.Stop(t)
	time.Sleep(time.Second)
	cluster.Start(t)
	t.Logf("database down for %v", time.Since(down).Round(time.Millisecond))
	time.Sleep(1300 * time.Millisecond)
	stop()
	wg.Wait()
	t.Logf("statuses under load: %v", statuses)
	for _, w := range wrong {
		t.Error(w)
	}

	// Afterwards: everything works, and nothing acknowledged is missing.
	p.WaitReady(t)
	for w, token := range tokens {
		if r := pgCall("POST", p.Base+"/api/tasks", token, map[string]any{"title": "after"}); r.status != http.StatusCreated {
			t.Errorf("worker %d: POST after the restart: got %v, want 201", w, r)
		}
		list := pgCall("GET", p.Base+"/api/tasks", token, nil)
		if list.status != http.StatusOK {
			t.Errorf("worker %d: GET after the restart: got %v, want 200", w, list)
			continue
		}
		stored := map[string]bool{}
		tasks, _ := list.body["tasks"].([]any)
		for _, task := range tasks {
			stored[task.(map[string]any)["id"].(string)] = true
		}
		for _, id := range acked[w] {
			if !stored[id] {
				t.Errorf("worker %d: task %s was acknowledged with 201 but is gone", w, id)
			}
		}
	}
	if statuses[http.StatusCreated] == 0 {
		t.Errorf("no create succeeded under load: %v", statuses)
	}
}

// TestPostgresWakesWithinDeadline is Neon's compute waking from suspend:
// requests that arrive while the database is down wait for it and succeed
// when it is back within their deadline; one that outlives its deadline
// gets 503 by the deadline.
func TestPostgresWakesWithinDeadline(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	dir, env := t.TempDir(), pgFaultEnv(cluster.UserURL(t))
	p := startProcess(t, dir, env)
	p.WaitReady(t)
	token := processToken(t, dir, env, "sleeper")
	for range 3 {
		if r := pgCall("POST", p.Base+"/api/tasks", token, map[string]any{"title": "before"}); r.status != http.StatusCreated {
			t.Fatalf("warm-up create: %v", r)
		}
	}

	cluster.Stop(t)
	stillDown := pgCall("GET", p.Base+"/api/tasks", token, nil)
	checkUnavailable(t, "GET /api/tasks while the database stays down", stillDown)
	if stillDown.elapsed < pgRequestTimeout/2 {
		t.Errorf("GET /api/tasks while the database stays down: gave up after %v, want it to wait for most of its %v deadline",
			stillDown.elapsed, pgRequestTimeout)
	}

	results := make(chan pgResult, 2)
	go func() { results <- pgCall("POST", p.Base+"/api/tasks", token, map[string]any{"title": "while waking"}) }()
	go func() { results <- pgCall("GET", p.Base+"/api/tasks", token, nil) }()
	time.Sleep(1500 * time.Millisecond)
	cluster.Start(t)
	for range 2 {
		r := <-results
		t.Logf("request while waking: %v", r)
		if r.status != http.StatusCreated && r.status != http.StatusOK {
			t.Errorf("request while the database woke up: got %v, want success", r)
		}
		if r.elapsed > pgRequestTimeout+pgAnswerMargin {
			t.Errorf("request while the database woke up: answered after %v", r.elapsed)
		}
	}
}

// TestPostgresLockPastDeadline: the request's deadline reaches the SQL. A
// statement stuck behind another session's table lock is answered 503 at
// the deadline, and canceled on the server: the create does not commit
// once the lock goes.
func TestPostgresLockPastDeadline(t *testing.T) {
	t.Parallel()
	url := pgtest.UserURL(t)
	dir, env := t.TempDir(), pgFaultEnv(url)
	p := startProcess(t, dir, env)
	p.WaitReady(t)
	token := processToken(t, dir, env, "blocked")
	if r := pgCall("GET", p.Base+"/api/tasks", token, nil); r.status != http.StatusOK {
		t.Fatalf("warm-up list: %v", r)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var list, create pgResult
	wg.Go(func() { list = pgCall("GET", p.Base+"/api/tasks", token, nil) })
	wg.Go(func() {
		create = pgCall("POST", p.Base+"/api/tasks", token, map[string]any{"title": "behind the lock"})
	})
	wg.Wait()
	for what, r := range map[string]pgResult{"GET": list, "POST": create} {
		checkUnavailable(t, what+" /api/tasks behind a table lock", r)
		if r.elapsed < pgRequestTimeout-100*time.Millisecond {
			t.Errorf("%s /api/tasks behind a table lock: answered after %v, before the %v deadline", what, r.elapsed, pgRequestTimeout)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	after := pgCall("GET", p.Base+"/api/tasks", token, nil)
	if after.status != http.StatusOK || after.body["count"] != float64(0) {
		t.Errorf("GET /api/tasks after the lock went: got %v %v, want 200 and no task (the timed-out create was canceled)", after, after.body)
	}
}
