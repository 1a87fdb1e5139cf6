package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
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
	id    string
	auth  string   // "Bearer …"
	tasks []string // task ids; known[i] is what u knows of tasks[i]
	known []known
	index map[taskKey]int32 // task id → position in tasks
	// plainID: the id is written in JSON as it is, so the list check can
	// compare raw bytes with it.
	plainID bool
	order   []int32  // scratch: positions in the order of a list response
	spare   []known  // scratch for reorder
	spareID []string // scratch for reorder
	seq     int
}

// taskKey is a task id as a map key. An array, unlike a string, is held in
// the map itself: looking up ids does not chase pointers to strings
// scattered over the heap (which showed as cache misses in memeqbody).
type taskKey [36]byte

// titleInline is the longest title kept inside known.
const titleInline = 24

// known is what a user knows of one of its tasks. The id, and the title
// when short, are held in the struct so that checking a list reads the
// user's tasks from one block of memory, in the list's order.
type known struct {
	id        taskKey
	completed bool
	plain     bool // the title is written in JSON as it is
	inline    bool // and held in head
	head      [titleInline]byte
	title     string
	// The task's times as the last list gave them: the next list mostly
	// repeats them, and comparing bytes is cheaper than parsing them.
	created, updated timeMemo
}

func (k *known) setTitle(title string) {
	k.title, k.plain = title, isPlain(title)
	k.inline = k.plain && len(title) <= titleInline
	if k.inline {
		copy(k.head[:], title)
	}
}

// isPlain reports whether s can stand as it is between the quotes of a
// JSON string: no quote, backslash or control character. Then the bytes of
// s followed by a quote are that string and nothing else.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func newUser(id, token string) *user {
	return &user{id: id, auth: "Bearer " + token, index: map[taskKey]int32{}, plainID: isPlain(id)}
}

// add records a task of u. Task ids are UUIDs: the API hands them out and
// the benchmark checks them before it records them.
func (u *user) add(id, title string, completed bool) {
	if !isUUID([]byte(id)) {
		panic(fmt.Sprintf("task id %q is not a UUID", id))
	}
	k := known{id: keyOf(id), completed: completed}
	k.setTitle(title)
	u.index[k.id] = int32(len(u.tasks))
	u.tasks = append(u.tasks, id)
	u.known = append(u.known, k)
}

// find returns the position of the task with this id, or -1 if the task is
// not u's. Lists come in the order of the last one, mostly: guess is where
// the id probably is, and costs no map lookup when right.
func (u *user) find(id []byte, guess int) int {
	if len(id) != len(taskKey{}) {
		return -1
	}
	if 0 <= guess && guess < len(u.known) && string(u.known[guess].id[:]) == string(id) {
		return guess
	}
	i, ok := u.index[taskKey(id)]
	if !ok {
		return -1
	}
	return int(i)
}

// lookup returns what u knows of the task with this id, or nil if the
// task is not u's.
func (u *user) lookup(id []byte) *known {
	if i := u.find(id, -1); i >= 0 {
		return &u.known[i]
	}
	return nil
}

func (u *user) remove(id string) {
	i := u.index[keyOf(id)]
	last := len(u.tasks) - 1
	u.tasks[i], u.known[i] = u.tasks[last], u.known[last]
	u.index[u.known[i].id] = i
	u.tasks, u.known = u.tasks[:last], u.known[:last]
	delete(u.index, keyOf(id))
}

// reorder puts u's tasks in the order of u.order, the positions of all of
// them as a list response gave them, so that the next list finds each task
// where it looks first.
func (u *user) reorder() {
	known, ids := append(u.spare[:0], u.known...), append(u.spareID[:0], u.tasks...)
	for i, pos := range u.order {
		u.known[i], u.tasks[i] = known[pos], ids[pos]
		u.index[u.known[i].id] = int32(i)
	}
	u.spare, u.spareID = known, ids
}

func keyOf(id string) (k taskKey) {
	copy(k[:], id)
	return k
}

// request is one request the benchmark sends.
type request struct {
	method, path, auth string
	body               []byte // JSON, or nil
}

// response is what the checks need of a response besides its body.
type response struct {
	StatusCode int // named as in net/http
	location   string
}

// roundTripper carries a client's requests: a keep-alive connection to the
// server (line), or, in the Go benchmarks, the handler itself in process.
// It returns the whole body, which it may reuse at the next request.
type roundTripper interface {
	roundTrip(req *request) (response, []byte, error)
}

// client sends the benchmark's requests and checks the answers. One client
// per goroutine: it reuses its buffers and its connection.
type client struct {
	rt   roundTripper
	req  request
	body payload // the last response's body
	f    taskFields
}

// payload is a response body, valid until the next request; Len and Bytes
// as a bytes.Buffer has them.
type payload []byte

func (p payload) Len() int      { return len(p) }
func (p payload) Bytes() []byte { return p }

func newClient(t *transport, base string) *client {
	return &client{rt: t.line(base)}
}

// send performs one request and reads the whole response into c.body.
func (c *client) send(method, path, auth string, body []byte) (response, error) {
	c.req = request{method: method, path: path, auth: auth, body: body}
	resp, b, err := c.rt.roundTrip(&c.req)
	c.body = b
	return resp, err
}

// statusError describes an unexpected status with the start of the body.
func (c *client) statusError(resp response, want int) error {
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
	var k *known
	if len(u.tasks) > 0 {
		i := r.IntN(len(u.tasks))
		id, k = u.tasks[i], &u.known[i]
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
		t, err := c.checkTask(resp, http.StatusOK, u, id)
		if err != nil {
			return done, err
		}
		if t.completed != k.completed || string(t.title) != k.title {
			return done, fmt.Errorf("task %s: got %q/%v, want %q/%v", id, t.title, t.completed, k.title, k.completed)
		}
		return done, nil
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
		if t.completed == k.completed {
			return done, fmt.Errorf("toggle of %s: is_completed stayed %v", id, t.completed)
		}
		if string(t.title) != k.title {
			return done, fmt.Errorf("toggle of %s: title %q, want %q", id, t.title, k.title)
		}
		k.completed = t.completed
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
		if string(t.title) != title || !t.descriptionNull || t.completed != completed {
			return done, fmt.Errorf("update of %s: got %q/%q/%v, want %q/null/%v", id, t.title, t.description, t.completed, title, completed)
		}
		k.completed = completed
		k.setTitle(title)
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
	if string(t.title) != title || t.completed {
		return done, fmt.Errorf("create: got title %q completed %v, want %q false", t.title, t.completed, title)
	}
	id := string(t.id)
	if resp.location != "/api/tasks/"+id {
		return done, fmt.Errorf("create: Location %q, want /api/tasks/%s", resp.location, id)
	}
	if u.lookup(t.id) != nil {
		return done, fmt.Errorf("create: id %s handed out twice", id)
	}
	u.add(id, title, false)
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

// checkTask checks a single-task response: the status, the shape, a UUID
// id, the owner, and the id when one is expected. The fields it returns
// point into c's buffers: valid until the next request.
func (c *client) checkTask(resp response, status int, u *user, id string) (*taskFields, error) {
	if resp.StatusCode != status {
		return nil, c.statusError(resp, status)
	}
	t := &c.f
	*t = taskFields{}
	if err := readTask(c.body.Bytes(), t); err != nil {
		return nil, err
	}
	if !isUUID(t.id) {
		return nil, fmt.Errorf("task id %q is not a UUID", t.id)
	}
	if string(t.owner) != u.id {
		return nil, fmt.Errorf("task %s of user %q in a response to user %q", t.id, t.owner, u.id)
	}
	if id != "" && string(t.id) != id {
		return nil, fmt.Errorf("asked for task %s, got %s", id, t.id)
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

// transport holds the keep-alive connections of a load phase's clients, so
// that they can be closed together.
//
// It speaks HTTP/1.1 itself instead of through net/http's client. That
// client hands every request to a writer goroutine and takes every
// response from a reader goroutine, parses headers into maps and allocates
// per request: the profile showed it costing the generator about as much
// CPU as checking the answers. Here the client's own goroutine writes each
// request with one write and reads the response into a buffer that the
// connection keeps, where the checks read the body in place.
type transport struct {
	mu    sync.Mutex
	conns map[*httpConn]struct{}
}

const (
	// requestTimeout bounds one request, as http.Client.Timeout did.
	requestTimeout = 60 * time.Second
	// maxIdle is how long a connection may rest and still be used.
	maxIdle = 5 * time.Second
)

// newTransport returns a transport for up to conns connections to one
// server (one per client).
func newTransport(conns int) *transport {
	return &transport{conns: make(map[*httpConn]struct{}, conns)}
}

// CloseIdleConnections closes every connection of t; clients that send
// again open new ones.
func (t *transport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for hc := range t.conns {
		hc.nc.Close()
		delete(t.conns, hc)
	}
}

// line returns a client's connection to base ("http://host:port"), opened
// at its first request.
func (t *transport) line(base string) *line {
	return &line{t: t, host: strings.TrimPrefix(base, "http://")}
}

// line is one client's keep-alive connection, reopened when the server
// closes it.
type line struct {
	t    *transport
	host string
	hc   *httpConn
	out  []byte // the request being sent
}

func (l *line) roundTrip(req *request) (response, []byte, error) {
	l.out = appendRequest(l.out[:0], req, l.host)
	// A connection idle for a while may have been closed by the server
	// (its idle timeout) without this side noticing: that is safe to find
	// out by a failed GET, but not by a failed POST. Start afresh instead.
	if l.hc != nil && time.Since(l.hc.last) > maxIdle {
		l.drop()
	}
	for attempt := 0; ; attempt++ {
		if l.hc == nil {
			nc, err := net.DialTimeout("tcp", l.host, 10*time.Second)
			if err != nil {
				return response{}, nil, err
			}
			l.hc = &httpConn{nc: nc, buf: make([]byte, 64<<10)}
			l.t.mu.Lock()
			l.t.conns[l.hc] = struct{}{}
			l.t.mu.Unlock()
		}
		hc := l.hc
		resp, body, keep, err := hc.exchange(l.out, req.method)
		if err == nil && keep {
			return resp, body, nil
		}
		l.drop()
		// A server may close a keep-alive connection while it is idle; as
		// net/http does, send again on a new one when nothing came back on
		// a used connection and sending again is safe.
		var idle *idleClosed
		if err != nil && attempt == 0 && hc.used && errors.As(err, &idle) && (idle.unsent || req.method == http.MethodGet) {
			continue
		}
		return resp, body, err
	}
}

// drop closes the line's connection.
func (l *line) drop() {
	if l.hc == nil {
		return
	}
	l.hc.nc.Close()
	l.t.mu.Lock()
	delete(l.t.conns, l.hc)
	l.t.mu.Unlock()
	l.hc = nil
}

// appendRequest appends req as HTTP/1.1 to dst.
func appendRequest(dst []byte, req *request, host string) []byte {
	dst = append(dst, req.method...)
	dst = append(dst, ' ')
	dst = append(dst, req.path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUser-Agent: todo-bench\r\nAuthorization: "...)
	dst = append(dst, req.auth...)
	if req.body != nil {
		dst = append(dst, "\r\nContent-Type: application/json"...)
	}
	// As net/http does: a length for methods that carry a body, even none.
	if req.body != nil || req.method == http.MethodPost || req.method == http.MethodPut || req.method == http.MethodPatch {
		dst = append(dst, "\r\nContent-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(req.body)), 10)
	}
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, req.body...)
}

// idleClosed is an error on a connection before any byte of the response
// came back: the server may have closed it while it was idle.
type idleClosed struct {
	err    error
	unsent bool // the request was not written
}

func (e *idleClosed) Error() string { return e.err.Error() }
func (e *idleClosed) Unwrap() error { return e.err }

// maxBody bounds a response body (a 10,000-task list is about 3 MB).
const maxBody = 256 << 20

// httpConn is one HTTP/1.1 connection and its read buffer: buf[r:w] is
// read from the connection and not yet consumed.
type httpConn struct {
	nc       net.Conn
	buf      []byte
	r, w     int
	deadline time.Time
	last     time.Time // when the last exchange began
	used     bool
	decoded  []byte // a chunked body, decoded
}

// exchange writes req and reads the response to it. The body it returns
// is held by hc until the next exchange. keep is false when the
// connection cannot carry another request.
func (hc *httpConn) exchange(req []byte, method string) (resp response, body []byte, keep bool, err error) {
	// Moving the deadline costs a timer update: do it only when less than
	// half of the timeout is left.
	now := time.Now()
	hc.last = now
	if hc.deadline.Sub(now) < requestTimeout/2 {
		hc.deadline = now.Add(requestTimeout)
		if err := hc.nc.SetDeadline(hc.deadline); err != nil {
			return resp, nil, false, err
		}
	}
	if hc.r != hc.w {
		return resp, nil, false, fmt.Errorf("%d bytes the server sent after its last response", hc.w-hc.r)
	}
	hc.r, hc.w = 0, 0
	if _, err := hc.nc.Write(req); err != nil {
		return resp, nil, false, &idleClosed{err: err, unsent: true}
	}
	used := hc.used
	hc.used = true
	var head []byte
	for {
		if head, err = hc.head(); err != nil {
			if used && hc.w == 0 {
				err = &idleClosed{err: err}
			}
			return resp, nil, false, err
		}
		// "HTTP/1.1 200 OK": 1xx responses are interim, the real one follows.
		if len(head) < len("HTTP/1.1 200\r\n") || string(head[:7]) != "HTTP/1." || head[7] != '1' && head[7] != '0' ||
			head[8] != ' ' || head[12] != ' ' && head[12] != '\r' {
			return resp, nil, false, fmt.Errorf("malformed status line %q", head[:bytes.IndexByte(head, '\r')])
		}
		resp.StatusCode = 0
		for _, c := range head[9:12] {
			if c < '0' || c > '9' {
				return resp, nil, false, fmt.Errorf("malformed status line %q", head[:bytes.IndexByte(head, '\r')])
			}
			resp.StatusCode = resp.StatusCode*10 + int(c-'0')
		}
		keep = head[7] == '1'
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode < 100 {
			return resp, nil, false, fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	length, chunked := -1, false
	rest := head[bytes.IndexByte(head, '\n')+1:]
	for len(rest) > 0 {
		eol := bytes.IndexByte(rest, '\n')
		if eol < 1 || rest[eol-1] != '\r' {
			return resp, nil, false, fmt.Errorf("malformed header %q", rest)
		}
		line := rest[:eol-1]
		rest = rest[eol+1:]
		colon := bytes.IndexByte(line, ':')
		if colon < 1 {
			return resp, nil, false, fmt.Errorf("malformed header line %q", line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		// Four names matter here; their lengths tell most lines apart
		// before any comparison.
		switch len(name) {
		case len("content-length"):
			if equalFold(name, "content-length") {
				n, err := strconv.Atoi(string(value))
				if err != nil || n < 0 || length >= 0 && n != length {
					return resp, nil, false, fmt.Errorf("bad Content-Length %q", value)
				}
				length = n
			}
		case len("transfer-encoding"):
			if equalFold(name, "transfer-encoding") {
				if !equalFold(value, "chunked") {
					return resp, nil, false, fmt.Errorf("unsupported Transfer-Encoding %q", value)
				}
				chunked = true
			}
		case len("connection"):
			if equalFold(name, "connection") && equalFold(value, "close") {
				keep = false
			}
		case len("location"):
			if equalFold(name, "location") && resp.location == "" {
				resp.location = string(value)
			}
		}
	}
	switch {
	case resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified || method == http.MethodHead:
		if length > 0 || chunked {
			return resp, nil, false, fmt.Errorf("status %d with a body", resp.StatusCode)
		}
	case chunked:
		body, err = hc.chunked()
	case length >= 0:
		if length > maxBody {
			return resp, nil, false, fmt.Errorf("Content-Length %d is too large", length)
		}
		if err = hc.need(length); err == nil {
			body = hc.buf[hc.r : hc.r+length]
			hc.r += length
		}
	default:
		// No length: the body runs to the end of the connection.
		keep = false
		hc.decoded = hc.decoded[:0]
		for err == nil {
			hc.decoded = append(hc.decoded, hc.buf[hc.r:hc.w]...)
			hc.r = hc.w
			if len(hc.decoded) > maxBody {
				return resp, nil, false, errors.New("response body too large")
			}
			err = hc.fill()
		}
		if err == io.EOF {
			body, err = hc.decoded, nil
		}
	}
	if err != nil {
		return resp, nil, false, err
	}
	return resp, body, keep, nil
}

// head reads up to the end of a response's header and returns the header
// with the CRLF of its last line but not the blank line after it.
func (hc *httpConn) head() ([]byte, error) {
	scanned := 0 // bytes after hc.r that cannot start the blank line
	for {
		if i := bytes.Index(hc.buf[hc.r+scanned:hc.w], []byte("\r\n\r\n")); i >= 0 {
			end := hc.r + scanned + i
			head := hc.buf[hc.r : end+2]
			hc.r = end + 4
			return head, nil
		}
		scanned = max(0, hc.w-hc.r-3)
		if hc.w-hc.r > 1<<20 {
			return nil, errors.New("response header too large")
		}
		if err := hc.fill(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// fill reads more from the connection, making room first.
func (hc *httpConn) fill() error {
	if hc.w == len(hc.buf) {
		if hc.r > 0 {
			hc.w = copy(hc.buf, hc.buf[hc.r:hc.w])
			hc.r = 0
		} else {
			hc.buf = append(hc.buf, make([]byte, len(hc.buf))...)
		}
	}
	n, err := hc.nc.Read(hc.buf[hc.w:])
	hc.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// need reads until n bytes are buffered.
func (hc *httpConn) need(n int) error {
	if len(hc.buf)-hc.r < n {
		hc.w = copy(hc.buf, hc.buf[hc.r:hc.w])
		hc.r = 0
		if len(hc.buf) < n {
			hc.buf = append(hc.buf, make([]byte, n-len(hc.buf))...)
		}
	}
	for hc.w-hc.r < n {
		if err := hc.fill(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// chunked reads a chunked body and returns it decoded.
func (hc *httpConn) chunked() ([]byte, error) {
	hc.decoded = hc.decoded[:0]
	for {
		line, err := hc.line()
		if err != nil {
			return nil, err
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseUint(string(bytes.TrimSpace(size)), 16, 31)
		if err != nil {
			return nil, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			// Trailers, if any, up to a blank line.
			for {
				line, err := hc.line()
				if err != nil {
					return nil, err
				}
				if len(line) == 0 {
					return hc.decoded, nil
				}
			}
		}
		if len(hc.decoded)+int(n) > maxBody {
			return nil, errors.New("response body too large")
		}
		if err := hc.need(int(n) + 2); err != nil {
			return nil, err
		}
		hc.decoded = append(hc.decoded, hc.buf[hc.r:hc.r+int(n)]...)
		if hc.buf[hc.r+int(n)] != '\r' || hc.buf[hc.r+int(n)+1] != '\n' {
			return nil, errors.New("chunk not followed by CRLF")
		}
		hc.r += int(n) + 2
	}
}

// line reads one CRLF-terminated line and returns it without the CRLF.
func (hc *httpConn) line() ([]byte, error) {
	for {
		if i := bytes.Index(hc.buf[hc.r:hc.w], []byte("\r\n")); i >= 0 {
			line := hc.buf[hc.r : hc.r+i]
			hc.r += i + 2
			return line, nil
		}
		if hc.w-hc.r > 64<<10 {
			return nil, errors.New("chunk line too long")
		}
		if err := hc.fill(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// equalFold reports whether b is lower, ignoring ASCII case; lower must be
// lower case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
