package http_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	todo "github.com/todo-api/todo-api"
)

// MustCreateTask creates a task through the API.
func (ts *testServer) MustCreateTask(tb testing.TB, token string, body any) todo.Task {
	tb.Helper()
	resp := ts.Do(tb, request{Method: "POST", Path: "/api/tasks", Token: token, Body: body})
	wantStatus(tb, resp, http.StatusCreated)
	return resp.Task(tb)
}

// MustListTasks returns the caller's tasks and checks count matches.
func (ts *testServer) MustListTasks(tb testing.TB, token string) []todo.Task {
	tb.Helper()
	resp := ts.Do(tb, request{Method: "GET", Path: "/api/tasks", Token: token})
	wantStatus(tb, resp, http.StatusOK)
	var list struct {
		Tasks []todo.Task `json:"tasks"`
		Count *int        `json:"count"`
	}
	if err := json.Unmarshal(resp.Body, &list); err != nil {
		tb.Fatal(err)
	}
	if list.Count == nil || *list.Count != len(list.Tasks) || list.Tasks == nil {
		tb.Fatalf("list: count %v for %d tasks (tasks nil: %v): %s", list.Count, len(list.Tasks), list.Tasks == nil, resp.Body)
	}
	return list.Tasks
}

func TestTaskLifecycle(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		token := ts.MustToken(t, "alice")
		before := time.Now().UTC().Add(-time.Second)

		resp := ts.Do(t, request{Method: "POST", Path: "/api/tasks", Token: token,
			Body: map[string]any{"title": "  Buy milk \n", "description": "2 litres"}})
		wantStatus(t, resp, http.StatusCreated)
		created := resp.Task(t)
		if _, err := uuid.Parse(created.ID); err != nil {
			t.Errorf("id %q is not a UUID", created.ID)
		}
		if got, want := resp.Header.Get("Location"), "/api/tasks/"+created.ID; got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		if created.Title != "Buy milk" || created.Description == nil || *created.Description != "2 litres" ||
			created.IsCompleted || created.UserID != "alice" {
			t.Errorf("created = %+v", created)
		}
		if created.CreatedAt.Before(before) || !created.CreatedAt.Equal(created.UpdatedAt) {
			t.Errorf("created_at %v, updated_at %v", created.CreatedAt, created.UpdatedAt)
		}
		raw := resp.JSON(t)
		for _, field := range []string{"created_at", "updated_at"} {
			s := raw[field].(string)
			if _, err := time.Parse(time.RFC3339, s); err != nil || !strings.HasSuffix(s, "Z") {
				t.Errorf("%s = %q, want RFC 3339 UTC", field, s)
			}
		}

		got := ts.Do(t, request{Method: "GET", Path: "/api/tasks/" + created.ID, Token: token})
		wantStatus(t, got, http.StatusOK)
		if !tasksEqual(got.Task(t), created) {
			t.Errorf("get = %+v, want %+v", got.Task(t), created)
		}

		time.Sleep(2 * time.Millisecond)
		put := ts.Do(t, request{Method: "PUT", Path: "/api/tasks/" + created.ID, Token: token,
			Body: map[string]any{"title": "Buy oat milk", "is_completed": true}})
		wantStatus(t, put, http.StatusOK)
		replaced := put.Task(t)
		if replaced.Title != "Buy oat milk" || replaced.Description != nil || !replaced.IsCompleted {
			t.Errorf("replaced = %+v; want new title, description cleared, completed", replaced)
		}
		if !replaced.CreatedAt.Equal(created.CreatedAt) || !replaced.UpdatedAt.After(created.UpdatedAt) {
			t.Errorf("PUT must keep created_at and bump updated_at: %v→%v, %v→%v", created.CreatedAt, replaced.CreatedAt, created.UpdatedAt, replaced.UpdatedAt)
		}

		// Absent is_completed keeps it; a null description clears it.
		put = ts.Do(t, request{Method: "PUT", Path: "/api/tasks/" + created.ID, Token: token,
			Body: `{"title": "Buy milk", "description": null}`})
		wantStatus(t, put, http.StatusOK)
		if task := put.Task(t); !task.IsCompleted || task.Description != nil {
			t.Errorf("after PUT without is_completed: %+v", task)
		}

		time.Sleep(2 * time.Millisecond)
		toggled := ts.Do(t, request{Method: "PATCH", Path: "/api/tasks/" + created.ID + "/toggle", Token: token})
		wantStatus(t, toggled, http.StatusOK)
		if task := toggled.Task(t); task.IsCompleted || !task.UpdatedAt.After(replaced.UpdatedAt) {
			t.Errorf("toggle: %+v", task)
		}

		del := ts.Do(t, request{Method: "DELETE", Path: "/api/tasks/" + created.ID, Token: token})
		wantStatus(t, del, http.StatusNoContent)
		if len(del.Body) != 0 {
			t.Errorf("DELETE body = %q, want empty", del.Body)
		}
		for _, req := range []request{
			{Method: "GET", Path: "/api/tasks/" + created.ID},
			{Method: "PUT", Path: "/api/tasks/" + created.ID, Body: map[string]any{"title": "x"}},
			{Method: "PATCH", Path: "/api/tasks/" + created.ID + "/toggle"},
			{Method: "DELETE", Path: "/api/tasks/" + created.ID},
		} {
			req.Token = token
			wantError(t, ts.Do(t, req), http.StatusNotFound, todo.ETASKNOTFOUND)
		}
	})
}

func tasksEqual(a, b todo.Task) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.Title == b.Title && a.IsCompleted == b.IsCompleted &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) &&
		(a.Description == nil) == (b.Description == nil) && (a.Description == nil || *a.Description == *b.Description)
}

func TestTaskCreateDefaults(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		token := ts.MustToken(t, "defaults")
		task := ts.MustCreateTask(t, token, map[string]any{"title": "t"})
		if task.Description != nil || task.IsCompleted {
			t.Errorf("defaults: %+v", task)
		}
		task = ts.MustCreateTask(t, token, map[string]any{"title": "t", "is_completed": true, "description": "", "id": "spoofed", "user_id": "mallory", "extra": []int{1}})
		if !task.IsCompleted || task.Description == nil || *task.Description != "" || task.UserID != "defaults" || task.ID == "spoofed" {
			t.Errorf("server fields must not be client-settable; unknown fields ignored: %+v", task)
		}
	})
}

func TestTaskValidation(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		token := ts.MustToken(t, "validator")
		existing := ts.MustCreateTask(t, token, map[string]any{"title": "keep me", "description": "as is"})

		ok := []any{
			map[string]any{"title": strings.Repeat("a", 500)},
			map[string]any{"title": strings.Repeat("é", 500)}, // 1000 bytes, 500 code points
			map[string]any{"title": strings.Repeat("😀", 500)}, // 2000 bytes
			map[string]any{"title": "  " + strings.Repeat("b", 500) + "  "},
			map[string]any{"title": "x", "description": strings.Repeat("ü", 5000)},
			map[string]any{"title": "x", "description": nil},
			map[string]any{"title": "<script>alert(1)</script>", "description": "'; DROP TABLE tasks; --"},
		}
		for i, body := range ok {
			resp := ts.Do(t, request{Method: "POST", Path: "/api/tasks", Token: token, Body: body})
			if resp.Status != http.StatusCreated {
				t.Errorf("ok body %d: status %d: %.300s", i, resp.Status, resp.Body)
			}
		}

		bad := []struct {
			name  string
			body  any
			field string
		}{
			{"501 chars", map[string]any{"title": strings.Repeat("a", 501)}, "title"},
			{"501 code points", map[string]any{"title": strings.Repeat("é", 501)}, "title"},
			{"501 emoji", map[string]any{"title": strings.Repeat("😀", 501)}, "title"},
			{"empty", map[string]any{"title": ""}, "title"},
			{"whitespace only", map[string]any{"title": " \t\n\u00a0\u3000"}, "title"},
			{"missing", map[string]any{"description": "no title"}, "title"},
			{"null", `{"title": null}`, "title"},
			{"number", `{"title": 42}`, "title"},
			{"object", `{"title": {"a": 1}}`, "title"},
			{"nul byte", `{"title": "a\u0000b"}`, "title"},
			{"description 5001", map[string]any{"title": "x", "description": strings.Repeat("d", 5001)}, "description"},
			{"description number", `{"title": "x", "description": 5}`, "description"},
			{"is_completed string", `{"title": "x", "is_completed": "yes"}`, "is_completed"},
			{"is_completed huge number", `{"title": "x", "is_completed": 1e999}`, "is_completed"},
			{"array", `[{"title": "x"}]`, "body"},
			{"string", `"title"`, "body"},
		}
		for _, tc := range bad {
			for _, req := range []request{
				{Method: "POST", Path: "/api/tasks", Body: tc.body},
				{Method: "PUT", Path: "/api/tasks/" + existing.ID, Body: tc.body},
			} {
				req.Token = token
				resp := ts.Do(t, req)
				if resp.Status != http.StatusBadRequest {
					t.Errorf("%s %s: status %d, want 400: %s", req.Method, tc.name, resp.Status, resp.Body)
					continue
				}
				code := resp.JSON(t)["error"].(map[string]any)["code"]
				if code != todo.EVALIDATION && code != todo.EINVALIDJSON {
					t.Errorf("%s %s: code %v", req.Method, tc.name, code)
				}
				if code == todo.EVALIDATION {
					if _, ok := fieldErrors(t, resp)[tc.field]; !ok {
						t.Errorf("%s %s: details.fields %v, want an entry for %q", req.Method, tc.name, fieldErrors(t, resp), tc.field)
					}
				}
			}
		}

		invalidJSON := []string{`{`, `{"title": "x"`, `{"title": "x"} trailing`, `{"title": 'x'}`, ``, `   `,
			"{\"title\": \"\xff\xfe\"}", strings.Repeat("[", 50_000)}
		for _, body := range invalidJSON {
			resp := ts.Do(t, request{Method: "POST", Path: "/api/tasks", Token: token, Body: []byte(body)})
			wantError(t, resp, http.StatusBadRequest, todo.EINVALIDJSON)
		}

		// Nothing above changed the task that was there.
		got := ts.Do(t, request{Method: "GET", Path: "/api/tasks/" + existing.ID, Token: token}).Task(t)
		if !tasksEqual(got, existing) {
			t.Errorf("rejected PUTs changed the task: %+v, was %+v", got, existing)
		}
	})
}

func TestTaskContentTypes(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		token := ts.MustToken(t, "ct")
		for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8", ""} {
			resp := ts.Do(t, request{Method: "POST", Path: "/api/tasks", Token: token, Body: `{"title":"x"}`, Header: map[string]string{"Content-Type": ct}})
			if resp.Status != http.StatusCreated {
				t.Errorf("Content-Type %q: status %d", ct, resp.Status)
			}
		}
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "garbage/;;"} {
			resp := ts.Do(t, request{Method: "POST", Path: "/api/tasks", Token: token, Body: `{"title":"x"}`, Header: map[string]string{"Content-Type": ct}})
			wantError(t, resp, http.StatusUnsupportedMediaType, todo.EUNSUPPORTEDMEDIA)
		}
		big := `{"title":"x","description":"` + strings.Repeat("a", 70<<10) + `"}`
		wantError(t, ts.Do(t, request{Method: "POST", Path: "/api/tasks", Token: token, Body: big}), http.StatusRequestEntityTooLarge, todo.EPAYLOADTOOLARGE)
		if n := len(ts.MustListTasks(t, token)); n != 4 {
			t.Errorf("tasks after content-type checks = %d, want 4", n)
		}
	})
}

func TestTaskListOrder(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		token := ts.MustToken(t, "orderly")
		if tasks := ts.MustListTasks(t, token); len(tasks) != 0 {
			t.Fatalf("new user has %d tasks", len(tasks))
		}
		var ids []string
		for i := range 5 {
			ids = append(ids, ts.MustCreateTask(t, token, map[string]any{"title": fmt.Sprint("task ", i)}).ID)
		}
		tasks := ts.MustListTasks(t, token)
		if len(tasks) != 5 {
			t.Fatalf("got %d tasks, want 5", len(tasks))
		}
		for i, task := range tasks {
			if want := ids[len(ids)-1-i]; task.ID != want {
				t.Errorf("tasks[%d] = %s, want %s (newest first)", i, task.ID, want)
			}
			if i > 0 && task.CreatedAt.After(tasks[i-1].CreatedAt) {
				t.Errorf("tasks[%d] is newer than tasks[%d]", i, i-1)
			}
		}
	})
}

func TestTaskIsolation(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		alice, bob := ts.MustToken(t, "alice"), ts.MustToken(t, "bob")
		task := ts.MustCreateTask(t, alice, map[string]any{"title": "alice's secret", "description": "d"})
		ts.MustCreateTask(t, bob, map[string]any{"title": "bob's"})

		for _, req := range []request{
			{Method: "GET", Path: "/api/tasks/" + task.ID},
			{Method: "PUT", Path: "/api/tasks/" + task.ID, Body: map[string]any{"title": "pwned", "is_completed": true}},
			{Method: "PATCH", Path: "/api/tasks/" + task.ID + "/toggle"},
			{Method: "DELETE", Path: "/api/tasks/" + task.ID},
			{Method: "GET", Path: "/api/bob/tasks/" + task.ID},
			{Method: "PUT", Path: "/api/bob/tasks/" + task.ID, Body: map[string]any{"title": "pwned"}},
			{Method: "PATCH", Path: "/api/bob/tasks/" + task.ID + "/complete"},
			{Method: "DELETE", Path: "/api/bob/tasks/" + task.ID},
		} {
			req.Token = bob
			wantError(t, ts.Do(t, req), http.StatusNotFound, todo.ETASKNOTFOUND)
		}
		// Bob naming Alice in the path is refused outright.
		for _, req := range []request{
			{Method: "GET", Path: "/api/alice/tasks"},
			{Method: "POST", Path: "/api/alice/tasks", Body: map[string]any{"title": "planted"}},
			{Method: "GET", Path: "/api/alice/tasks/" + task.ID},
			{Method: "PUT", Path: "/api/alice/tasks/" + task.ID, Body: map[string]any{"title": "pwned"}},
			{Method: "PATCH", Path: "/api/alice/tasks/" + task.ID + "/complete"},
			{Method: "DELETE", Path: "/api/alice/tasks/" + task.ID},
		} {
			req.Token = bob
			wantError(t, ts.Do(t, req), http.StatusForbidden, todo.EFORBIDDEN)
		}
		for _, other := range ts.MustListTasks(t, bob) {
			if other.UserID != "bob" {
				t.Errorf("bob's list holds %+v", other)
			}
		}
		aliceTasks := ts.MustListTasks(t, alice)
		if len(aliceTasks) != 1 || !tasksEqual(aliceTasks[0], task) {
			t.Errorf("alice's tasks after bob's attempts: %+v, want just %+v", aliceTasks, task)
		}
	})
}

func TestTaskNotFoundIDs(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		token := ts.MustToken(t, "seeker")
		for _, id := range []string{uuid.NewString(), "not-a-uuid", "1", "%27%20OR%201%3D1--", "00000000-0000-0000-0000-000000000000", strings.Repeat("f", 2000)} {
			wantError(t, ts.Do(t, request{Method: "GET", Path: "/api/tasks/" + id, Token: token}), http.StatusNotFound, todo.ETASKNOTFOUND)
			wantError(t, ts.Do(t, request{Method: "DELETE", Path: "/api/tasks/" + id, Token: token}), http.StatusNotFound, todo.ETASKNOTFOUND)
		}
	})
}

func TestCompatRoutes(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		user := "user_2x9Kq"
		token := ts.MustToken(t, user)
		base := "/api/" + user + "/tasks"
		resp := ts.Do(t, request{Method: "POST", Path: base, Token: token, Body: map[string]any{"title": "compat"}})
		wantStatus(t, resp, http.StatusCreated)
		task := resp.Task(t)
		if got, want := resp.Header.Get("Location"), base+"/"+task.ID; got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		wantStatus(t, ts.Do(t, request{Method: "GET", Path: base + "/" + task.ID, Token: token}), http.StatusOK)
		list := ts.Do(t, request{Method: "GET", Path: base, Token: token})
		wantStatus(t, list, http.StatusOK)
		if list.JSON(t)["count"].(float64) != 1 {
			t.Errorf("compat list: %s", list.Body)
		}
		put := ts.Do(t, request{Method: "PUT", Path: base + "/" + task.ID, Token: token, Body: map[string]any{"title": "renamed"}})
		wantStatus(t, put, http.StatusOK)
		if put.Task(t).Title != "renamed" {
			t.Errorf("compat PUT: %s", put.Body)
		}
		done := ts.Do(t, request{Method: "PATCH", Path: base + "/" + task.ID + "/complete", Token: token})
		wantStatus(t, done, http.StatusOK)
		if !done.Task(t).IsCompleted {
			t.Errorf("compat complete did not flip: %s", done.Body)
		}
		// The same task through the main routes.
		if got := ts.Do(t, request{Method: "GET", Path: "/api/tasks/" + task.ID, Token: token}).Task(t); got.Title != "renamed" || !got.IsCompleted {
			t.Errorf("main route sees %+v", got)
		}
		wantStatus(t, ts.Do(t, request{Method: "DELETE", Path: base + "/" + task.ID, Token: token}), http.StatusNoContent)
		wantError(t, ts.Do(t, request{Method: "GET", Path: base + "/" + task.ID, Token: token}), http.StatusNotFound, todo.ETASKNOTFOUND)
		wantError(t, ts.Do(t, request{Method: "GET", Path: base}), http.StatusUnauthorized, todo.EUNAUTHORIZED)
	})
}

func TestConcurrentToggles(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		token := ts.MustToken(t, "toggler")
		task := ts.MustCreateTask(t, token, map[string]any{"title": "flip me"})
		const n = 100
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp := ts.Do(t, request{Method: "PATCH", Path: "/api/tasks/" + task.ID + "/toggle", Token: token})
				if resp.Status != http.StatusOK {
					t.Errorf("toggle: %d %s", resp.Status, resp.Body)
				}
			}()
		}
		wg.Wait()
		got := ts.Do(t, request{Method: "GET", Path: "/api/tasks/" + task.ID, Token: token}).Task(t)
		if got.IsCompleted != (n%2 == 1) {
			t.Errorf("after %d toggles is_completed = %v, want %v", n, got.IsCompleted, n%2 == 1)
		}
	})
}

func TestConcurrentCreates(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		token := ts.MustToken(t, "creator")
		const n = 200
		var wg sync.WaitGroup
		var mu sync.Mutex
		ids := map[string]bool{}
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp := ts.Do(t, request{Method: "POST", Path: "/api/tasks", Token: token, Body: map[string]any{"title": fmt.Sprint("task ", i)}})
				if resp.Status != http.StatusCreated {
					t.Errorf("create: %d %s", resp.Status, resp.Body)
					return
				}
				mu.Lock()
				ids[resp.Task(t).ID] = true
				mu.Unlock()
			}()
		}
		wg.Wait()
		if len(ids) != n {
			t.Errorf("%d distinct ids from %d creates", len(ids), n)
		}
		tasks := ts.MustListTasks(t, token)
		if len(tasks) != n {
			t.Errorf("list has %d tasks, want %d", len(tasks), n)
		}
		for _, task := range tasks {
			if !ids[task.ID] {
				t.Errorf("listed task %s was never created", task.ID)
			}
		}
	})
}

func TestTaskQuota(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			ts := mustServe(t, engine, 3, nil)
			token, other := ts.MustToken(t, "hoarder"), ts.MustToken(t, "modest")
			var last todo.Task
			for range 3 {
				last = ts.MustCreateTask(t, token, map[string]any{"title": "x"})
			}
			resp := ts.Do(t, request{Method: "POST", Path: "/api/tasks", Token: token, Body: map[string]any{"title": "one too many"}})
			wantError(t, resp, http.StatusConflict, todo.ETASKQUOTA)
			ts.MustCreateTask(t, other, map[string]any{"title": "others are not affected"})
			wantStatus(t, ts.Do(t, request{Method: "DELETE", Path: "/api/tasks/" + last.ID, Token: token}), http.StatusNoContent)
			ts.MustCreateTask(t, token, map[string]any{"title": "room again"})
			if n := len(ts.MustListTasks(t, token)); n != 3 {
				t.Errorf("tasks = %d, want 3", n)
			}
		})
	}
}
