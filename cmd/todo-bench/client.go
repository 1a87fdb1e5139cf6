package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// endpoint is one kind of request the benchmark sends.
type endpoint int

const (
	epList endpoint = iota
	epGet
	epCreate
	epToggle
	epUpdate
	epDelete
	numEndpoints
)

var endpointNames = [numEndpoints]string{
	"GET /api/tasks", "GET /api/tasks/{id}", "POST /api/tasks",
	"PATCH /api/tasks/{id}/toggle", "PUT /api/tasks/{id}", "DELETE /api/tasks/{id}",
}

func (e endpoint) String() string { return endpointNames[e] }

// pickMixed draws an endpoint with the mix: list 60 %, get 15 %,
// create 10 %, toggle 10 %, update 3 %, delete 2 %.
func pickMixed(r *rand.Rand) endpoint {
	switch n := r.IntN(100); {
	case n < 60:
		return epList
	case n < 75:
		return epGet
	case n < 85:
		return epCreate
	case n < 95:
		return epToggle
	case n < 98:
		return epUpdate
	default:
		return epDelete
	}
}

// user is one API user and everything the benchmark knows of its tasks.
// Only one goroutine at a time uses a user, so what it knows is exact and
// every response can be checked against it.
type user struct {
	id        string
	auth      string // "Bearer …"
	tasks     []string
	index     map[string]int  // task id → position in tasks
	completed map[string]bool // task id → is_completed
	titles    map[string]string
	seq       int
}

func newUser(id, token string) *user {
	return &user{id: id, auth: "Bearer " + token, index: map[string]int{}, completed: map[string]bool{}, titles: map[string]string{}}
}

func (u *user) add(id, title string, completed bool) {
	u.index[id] = len(u.tasks)
	u.tasks = append(u.tasks, id)
	u.completed[id] = completed
	u.titles[id] = title
}

func (u *user) remove(id string) {
	i := u.index[id]
	last := u.tasks[len(u.tasks)-1]
	u.tasks[i] = last
	u.index[last] = i
	u.tasks = u.tasks[:len(u.tasks)-1]
	delete(u.index, id)
	delete(u.completed, id)
	delete(u.titles, id)
}

// taskJSON is a task as the API returns it.
type taskJSON struct {
	ID          *string `json:"id"`
	UserID      *string `json:"user_id"`
	Title       *string `json:"title"`
	Description *string `json:"description"`
	IsCompleted *bool   `json:"is_completed"`
	CreatedAt   *string `json:"created_at"`
	UpdatedAt   *string `json:"updated_at"`
}

// task is a checked taskJSON.
type task struct {
	ID, UserID, Title string
	Description       *string
	IsCompleted       bool
	CreatedAt         time.Time
}

// check reports whether t has the contract's shape and belongs to userID.
func (t *taskJSON) check(userID string) (task, error) {
	var out task
	if t.ID == nil || t.UserID == nil || t.Title == nil || t.IsCompleted == nil || t.CreatedAt == nil || t.UpdatedAt == nil {
		return out, errors.New("task lacks a field")
	}
	if len(*t.ID) != 36 {
		return out, fmt.Errorf("task id %q is not a UUID", *t.ID)
	}
	if _, err := uuid.Parse(*t.ID); err != nil {
		return out, fmt.Errorf("task id %q is not a UUID", *t.ID)
	}
	if *t.UserID != userID {
		return out, fmt.Errorf("task %s of user %q in a response to user %q", *t.ID, *t.UserID, userID)
	}
	created, err := time.Parse(time.RFC3339Nano, *t.CreatedAt)
	if err != nil {
		return out, fmt.Errorf("created_at %q: %v", *t.CreatedAt, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, *t.UpdatedAt); err != nil {
		return out, fmt.Errorf("updated_at %q: %v", *t.UpdatedAt, err)
	}
	return task{ID: *t.ID, UserID: *t.UserID, Title: *t.Title, Description: t.Description, IsCompleted: *t.IsCompleted, CreatedAt: created}, nil
}

// client sends the benchmark's requests and checks the answers. One client
// per goroutine: it reuses its buffers.
type client struct {
	http *http.Client
	base string
	body bytes.Buffer
}

// newTransport returns keep-alive transport tuned for conns connections
// to one host.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// send performs one request and reads the whole response into c.body.
func (c *client) send(method, path, auth string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	c.body.Reset()
	if _, err := c.body.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	return resp, nil
}

// statusError describes an unexpected status with the start of the body.
func (c *client) statusError(resp *http.Response, want int) error {
	b := c.body.Bytes()
	if len(b) > 300 {
		b = b[:300]
	}
	return fmt.Errorf("status %d, want %d: %s", resp.StatusCode, want, strings.TrimSpace(string(b)))
}

// do sends one request of kind ep for u, checks the answer against what u
// knows and updates it. It returns when the response has been read, and
// the time it was read, before the check (which is not the server's time).
func (c *client) do(ep endpoint, u *user, r *rand.Rand) (time.Time, error) {
	if len(u.tasks) == 0 && ep != epList && ep != epCreate {
		ep = epCreate
	}
	var id string
	if len(u.tasks) > 0 {
		id = u.tasks[r.IntN(len(u.tasks))]
	}
	switch ep {
	case epList:
		return c.list(u)
	case epGet:
		resp, err := c.send(http.MethodGet, "/api/tasks/"+id, u.auth, nil)
		done := time.Now()
		if err != nil {
			return done, err
		}
		_, err = c.checkTask(resp, http.StatusOK, u, id)
		return done, err
	case epCreate:
		return c.create(u, r)
	case epToggle:
		resp, err := c.send(http.MethodPatch, "/api/tasks/"+id+"/toggle", u.auth, nil)
		done := time.Now()
		if err != nil {
			return done, err
		}
		t, err := c.checkTask(resp, http.StatusOK, u, id)
		if err != nil {
			return done, err
		}
		if t.IsCompleted == u.completed[id] {
			return done, fmt.Errorf("toggle of %s: is_completed stayed %v", id, t.IsCompleted)
		}
		u.completed[id] = t.IsCompleted
		return done, nil
	case epUpdate:
		u.seq++
		title := "updated " + strconv.Itoa(u.seq)
		completed := r.IntN(2) == 0
		resp, err := c.send(http.MethodPut, "/api/tasks/"+id, u.auth,
			fmt.Appendf(nil, `{"title":%q,"description":null,"is_completed":%v}`, title, completed))
		done := time.Now()
		if err != nil {
			return done, err
		}
		t, err := c.checkTask(resp, http.StatusOK, u, id)
		if err != nil {
			return done, err
		}
		if t.Title != title || t.Description != nil || t.IsCompleted != completed {
			return done, fmt.Errorf("update of %s: got %q/%v/%v, want %q/null/%v", id, t.Title, t.Description, t.IsCompleted, title, completed)
		}
		u.completed[id], u.titles[id] = completed, title
		return done, nil
	case epDelete:
		resp, err := c.send(http.MethodDelete, "/api/tasks/"+id, u.auth, nil)
		done := time.Now()
		if err != nil {
			return done, err
		}
		if resp.StatusCode != http.StatusNoContent {
			return done, c.statusError(resp, http.StatusNoContent)
		}
		if c.body.Len() != 0 {
			return done, fmt.Errorf("delete: %d bytes of body, want none", c.body.Len())
		}
		u.remove(id)
		return done, nil
	}
	return time.Now(), fmt.Errorf("unknown endpoint %d", ep)
}

// create adds a task for u.
func (c *client) create(u *user, r *rand.Rand) (time.Time, error) {
	u.seq++
	title := "bench task " + strconv.Itoa(u.seq)
	body := fmt.Appendf(nil, `{"title":%q}`, title)
	if r.IntN(2) == 0 {
		body = fmt.Appendf(nil, `{"title":%q,"description":"a description of task %d"}`, title, u.seq)
	}
	resp, err := c.send(http.MethodPost, "/api/tasks", u.auth, body)
	done := time.Now()
	if err != nil {
		return done, err
	}
	t, err := c.checkTask(resp, http.StatusCreated, u, "")
	if err != nil {
		return done, err
	}
	if t.Title != title || t.IsCompleted {
		return done, fmt.Errorf("create: got title %q completed %v, want %q false", t.Title, t.IsCompleted, title)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/tasks/"+t.ID {
		return done, fmt.Errorf("create: Location %q, want /api/tasks/%s", loc, t.ID)
	}
	if _, dup := u.index[t.ID]; dup {
		return done, fmt.Errorf("create: id %s handed out twice", t.ID)
	}
	u.add(t.ID, t.Title, t.IsCompleted)
	return done, nil
}

// list fetches u's tasks and checks that they are exactly the ones u has,
// newest first, and nobody else's.
func (c *client) list(u *user) (time.Time, error) {
	resp, err := c.send(http.MethodGet, "/api/tasks", u.auth, nil)
	done := time.Now()
	if err != nil {
		return done, err
	}
	if resp.StatusCode != http.StatusOK {
		return done, c.statusError(resp, http.StatusOK)
	}
	return done, checkList(c.body.Bytes(), u)
}

// checkTask checks a single-task response: the status, the shape, the
// owner, and the id when one is expected.
func (c *client) checkTask(resp *http.Response, status int, u *user, id string) (task, error) {
	if resp.StatusCode != status {
		return task{}, c.statusError(resp, status)
	}
	var tj taskJSON
	if err := json.Unmarshal(c.body.Bytes(), &tj); err != nil {
		return task{}, err
	}
	t, err := tj.check(u.id)
	if err != nil {
		return t, err
	}
	if id != "" && t.ID != id {
		return t, fmt.Errorf("asked for task %s, got %s", id, t.ID)
	}
	if id != "" && t.IsCompleted != u.completed[id] && resp.Request.Method == http.MethodGet {
		return t, fmt.Errorf("task %s: is_completed %v, want %v", id, t.IsCompleted, u.completed[id])
	}
	return t, nil
}

// checkNotFound checks that u cannot see another user's task.
func (c *client) checkNotFound(u *user, otherID string) error {
	resp, err := c.send(http.MethodGet, "/api/tasks/"+otherID, u.auth, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNotFound || !bytes.Contains(c.body.Bytes(), []byte(`"TASK_NOT_FOUND"`)) {
		return fmt.Errorf("another user's task: %w", c.statusError(resp, http.StatusNotFound))
	}
	return nil
}
