package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/todo-api/todo-api/postgres/pgtest"
)

// The tests in this file check issue 4's promise, "keeps working and loses
// nothing", on the real binary with real signals: a write that was
// answered 201 is on disk, whatever happens to the process afterwards.

// durableSecret signs the tokens of the process-level tests.
const durableSecret = "durability-test-secret-at-least-32-bytes"

// processEngine is a database the binary can be started on.
type processEngine struct {
	name string
	// databaseURL returns a DATABASE_URL for a fresh database of the engine.
	databaseURL func(t *testing.T) string
}

var processEngines = []processEngine{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "todo.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.URL(t) }},
}

// durableEnv is the environment of a load test: no rate limits, since the
// load comes from one user on one address, and a quiet log.
func durableEnv(databaseURL string) map[string]string {
	return map[string]string{
		"DATABASE_URL":    databaseURL,
		"JWT_SECRET":      durableSecret,
		"RATE_LIMIT_USER": "0",
		"RATE_LIMIT_IP":   "0",
		"LOG_LEVEL":       "warn",
	}
}

// restartEnv copies env for a second process: startProcess writes the
// port it picked into the map, and the restart needs a fresh one.
func restartEnv(env map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		if k != "PORT" {
			out[k] = v
		}
	}
	return out
}

// outcome is what one request of a load test led to.
type outcome struct {
	kind    string    // "create" or "toggle"
	title   string    // the title sent, for creates
	taskID  string    // the created or toggled task
	written time.Time // when the request was fully sent; zero if it never was
	ended   time.Time
	status  int // 0 when no response came
	err     error
	// completed is the toggled task's is_completed, from a 200 response.
	completed bool
}

// acknowledged reports whether the server answered the write with success.
func (o outcome) acknowledged() bool {
	return o.err == nil && (o.status == http.StatusCreated || o.status == http.StatusOK)
}

// loadClient keeps one keep-alive connection per goroutine, as a busy
// frontend server does.
func loadClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute},
		Timeout:   30 * time.Second,
	}
}

// send makes one request and records when it went out and how it ended.
func send(client *http.Client, method, url, token string, body any, o *outcome) map[string]any {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			o.written = time.Now()
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, url, r)
	if err != nil {
		o.err, o.ended = err, time.Now()
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		o.err, o.ended = err, time.Now()
		return nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	o.ended = time.Now()
	if err != nil {
		// A status line without its body is not an acknowledgement.
		o.err = err
		return nil
	}
	o.status = resp.StatusCode
	var v map[string]any
	json.Unmarshal(raw, &v)
	return v
}

// runCreators starts n goroutines that create tasks until stop is closed
// or a request fails, and returns a function that waits for them and
// returns every outcome.
func runCreators(client *http.Client, base, token string, n int, stop <-chan struct{}) func() []outcome {
	var mu sync.Mutex
	var all []outcome
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			var mine []outcome
			defer func() {
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
			}()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				o := outcome{kind: "create", title: fmt.Sprintf("durable g%02d #%05d", g, i)}
				v := send(client, "POST", base+"/api/tasks", token, map[string]any{"title": o.title}, &o)
				if id, ok := v["id"].(string); ok {
					o.taskID = id
				}
				mine = append(mine, o)
				if !o.acknowledged() {
					return
				}
			}
		})
	}
	return func() []outcome {
		wg.Wait()
		return all
	}
}

// toggler flips one task over and over; it owns the task, so the last
// acknowledged state is known.
type toggler struct {
	taskID   string
	outcomes []outcome
}

// runTogglers starts one goroutine per task, each toggling its task until
// stop is closed or a request fails.
func runTogglers(client *http.Client, base, token string, togglers []*toggler, stop <-chan struct{}) func() {
	var wg sync.WaitGroup
	for _, tg := range togglers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				o := outcome{kind: "toggle", taskID: tg.taskID}
				v := send(client, "PATCH", base+"/api/tasks/"+tg.taskID+"/toggle", token, nil, &o)
				o.completed, _ = v["is_completed"].(bool)
				tg.outcomes = append(tg.outcomes, o)
				if !o.acknowledged() {
					return
				}
			}
		})
	}
	return wg.Wait
}

// storedTasks lists the user's tasks by id.
func storedTasks(tb testing.TB, base, token string) map[string]map[string]any {
	tb.Helper()
	status, list := call(tb, "GET", base+"/api/tasks", token, nil)
	if status != http.StatusOK {
		tb.Fatalf("list after restart: %d %v", status, list)
	}
	tasks, _ := list["tasks"].([]any)
	out := make(map[string]map[string]any, len(tasks))
	for _, t := range tasks {
		task := t.(map[string]any)
		out[task["id"].(string)] = task
	}
	if count, _ := list["count"].(float64); int(count) != len(out) {
		tb.Fatalf("list after restart: count %v for %d distinct tasks", list["count"], len(out))
	}
	return out
}

// checkCreatesStored fails unless every acknowledged create is stored with
// its title and every stored task is one the test tried to create.
func checkCreatesStored(tb testing.TB, outcomes []outcome, stored map[string]map[string]any, preexisting int) (acked int) {
	tb.Helper()
	attempted := map[string]bool{}
	for _, o := range outcomes {
		attempted[o.title] = true
		if !o.acknowledged() {
			continue
		}
		acked++
		task, ok := stored[o.taskID]
		if !ok {
			tb.Errorf("task %s (%q) was acknowledged with 201 but is gone after the restart", o.taskID, o.title)
			continue
		}
		if task["title"] != o.title {
			tb.Errorf("task %s: stored title %q, acknowledged %q", o.taskID, task["title"], o.title)
		}
	}
	phantoms := 0
	for id, task := range stored {
		if title, _ := task["title"].(string); strings.HasPrefix(title, "durable g") && !attempted[title] {
			tb.Errorf("stored task %s has title %q, which no request sent", id, title)
		}
		if title, _ := task["title"].(string); !strings.HasPrefix(title, "durable g") {
			phantoms++
		}
	}
	if phantoms != preexisting {
		tb.Errorf("%d stored tasks were not created by the load, want %d", phantoms, preexisting)
	}
	return acked
}

// slowCreate is a create request whose headers and half its body are sent
// at once and the rest later: its handler is running, waiting for the body,
// whatever happens in between.
type slowCreate struct {
	conn net.Conn
	rest []byte
}

func startSlowCreate(tb testing.TB, base, token, title string) *slowCreate {
	tb.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	body, _ := json.Marshal(map[string]any{"title": title})
	head := fmt.Sprintf("POST /api/tasks HTTP/1.1\r\nHost: todo\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", token, len(body))
	half := len(body) / 2
	if _, err := conn.Write(append([]byte(head), body[:half]...)); err != nil {
		tb.Fatal(err)
	}
	return &slowCreate{conn: conn, rest: body[half:]}
}

// finish sends the rest of the body and returns the response.
func (s *slowCreate) finish(tb testing.TB) (int, map[string]any) {
	tb.Helper()
	s.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.conn.Write(s.rest); err != nil {
		tb.Fatalf("slow create: send the rest of the body: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(s.conn), nil)
	if err != nil {
		tb.Fatalf("slow create: no response (a request whose handler was running was dropped): %v", err)
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

// sentMargin is how long before the signal a request must have been fully
// sent for the test to insist on an answer. http.Server.Shutdown finishes
// every request whose handler has started, and closes idle connections:
// a request still in the kernel's buffer of an idle keep-alive connection
// when the signal lands is dropped, by design (the client sees EOF and
// must retry; net/http retries only idempotent requests). The server reads
// a request within microseconds of its arrival, so one sent this long
// before the signal has a running handler unless the machine stalls.
const sentMargin = 100 * time.Millisecond

// loadDuration bounds each test's write load.
const loadDuration = 1500 * time.Millisecond

// TestSIGTERMUnderLoad sends SIGTERM while 16 clients create tasks: the
// requests being handled are answered, the process exits 0, and every 201
// is in the database after a restart.
func TestSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	for _, engine := range processEngines {
		t.Run(engine.name, func(t *testing.T) {
			env := durableEnv(engine.databaseURL(t))
			dir := t.TempDir()
			p := startProcess(t, dir, env)
			p.WaitReady(t)
			token := processToken(t, dir, env, "durable-term")

			slow := startSlowCreate(t, p.Base, token, "in flight at SIGTERM")
			client := loadClient()
			stop := make(chan struct{})
			wait := runCreators(client, p.Base, token, 16, stop)
			time.Sleep(loadDuration)

			signalled := time.Now()
			p.Signal(t, syscall.SIGTERM)
			// The slow request's handler has been waiting for its body all
			// along; Shutdown must wait for it too.
			time.Sleep(300 * time.Millisecond)
			slowStatus, slowTask := slow.finish(t)
			close(stop)
			outcomes := wait()
			if err := p.Wait(t, 25*time.Second); err != nil {
				t.Errorf("exit after SIGTERM: %v, want status 0\n%s", err, tail(p.Logs.String(), 2000))
			}
			if slowStatus != http.StatusCreated {
				t.Errorf("request in flight at SIGTERM: status %d %v, want 201", slowStatus, slowTask)
			}

			var beforeSignal, failed int
			for _, o := range outcomes {
				switch {
				case o.err == nil && o.status != http.StatusCreated:
					t.Errorf("create %q: status %d, want 201 (no error status during a graceful shutdown)", o.title, o.status)
				case o.err != nil && o.ended.Before(signalled):
					t.Errorf("create %q failed before SIGTERM was sent: %v", o.title, o.err)
				case o.err != nil && !o.written.IsZero() && o.written.Before(signalled.Add(-sentMargin)):
					t.Errorf("create %q was sent %v before SIGTERM and got no answer: %v", o.title, signalled.Sub(o.written), o.err)
				case o.err != nil:
					failed++
				}
				if o.acknowledged() && o.ended.Before(signalled) {
					beforeSignal++
				}
			}
			if beforeSignal < 20 {
				t.Fatalf("only %d creates were answered before SIGTERM: the load did not run", beforeSignal)
			}

			again := startProcess(t, dir, restartEnv(env))
			again.WaitReady(t)
			stored := storedTasks(t, again.Base, token)
			acked := checkCreatesStored(t, outcomes, stored, 1)
			if id, _ := slowTask["id"].(string); stored[id] == nil {
				t.Errorf("the task created while shutting down (%v) is not stored", slowTask["id"])
			}
			t.Logf("%s: %d creates acknowledged (%d before SIGTERM), %d refused after it, %d stored", engine.name, acked, beforeSignal, failed, len(stored))
		})
	}
}

// TestKill9LosesNoAcknowledgedWrite kills the process with SIGKILL while
// clients create and toggle tasks: after a restart every acknowledged
// create is there, and every task's completion is the last acknowledged
// one (or the one after it, when a toggle was on the wire at the kill).
func TestKill9LosesNoAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	for _, engine := range processEngines {
		t.Run(engine.name, func(t *testing.T) {
			env := durableEnv(engine.databaseURL(t))
			dir := t.TempDir()
			p := startProcess(t, dir, env)
			p.WaitReady(t)
			token := processToken(t, dir, env, "durable-kill")

			togglers := make([]*toggler, 8)
			for i := range togglers {
				status, task := call(t, "POST", p.Base+"/api/tasks", token, map[string]any{"title": fmt.Sprintf("toggled %d", i)})
				if status != http.StatusCreated {
					t.Fatalf("create toggled task: %d %v", status, task)
				}
				togglers[i] = &toggler{taskID: task["id"].(string)}
			}

			client := loadClient()
			stop := make(chan struct{})
			waitCreators := runCreators(client, p.Base, token, 12, stop)
			waitTogglers := runTogglers(client, p.Base, token, togglers, stop)
			time.Sleep(loadDuration)
			killed := time.Now()
			p.Kill()
			close(stop)
			outcomes := waitCreators()
			waitTogglers()

			again := startProcess(t, dir, restartEnv(env))
			again.WaitReady(t)
			stored := storedTasks(t, again.Base, token)
			acked := checkCreatesStored(t, outcomes, stored, len(togglers))
			for _, o := range outcomes {
				if o.err == nil && o.status != http.StatusCreated {
					t.Errorf("create %q: status %d, want 201", o.title, o.status)
				}
				if o.err != nil && o.ended.Before(killed) {
					t.Errorf("create %q failed before the kill: %v", o.title, o.err)
				}
			}
			if acked < 20 {
				t.Fatalf("only %d creates were acknowledged: the load did not run", acked)
			}

			flips := 0
			for i, tg := range togglers {
				want, lastWritten := false, false
				for n, o := range tg.outcomes {
					switch {
					case o.acknowledged():
						if o.completed == want {
							t.Errorf("toggler %d: toggle #%d answered is_completed=%v, the same as before it", i, n, o.completed)
						}
						want = o.completed
						flips++
					case o.err == nil:
						t.Errorf("toggler %d: toggle #%d: status %d, want 200", i, n, o.status)
					case o.ended.Before(killed):
						t.Errorf("toggler %d: toggle #%d failed before the kill: %v", i, n, o.err)
					default:
						// The last request, cut by the kill: it may or may
						// not have committed, but only if it went out.
						lastWritten = !o.written.IsZero()
					}
				}
				task, ok := stored[tg.taskID]
				if !ok {
					t.Errorf("toggler %d: task %s is gone", i, tg.taskID)
					continue
				}
				got := task["is_completed"] == true
				if got != want && !lastWritten {
					t.Errorf("toggler %d: stored is_completed=%v, last acknowledged %v, and no toggle was in flight", i, got, want)
				}
			}
			if flips < 8 {
				t.Fatalf("only %d toggles were acknowledged: the load did not run", flips)
			}
			t.Logf("%s: %d creates and %d toggles acknowledged before kill -9, %d tasks stored", engine.name, acked, flips, len(stored))
		})
	}
}
