package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	todo "github.com/todo-api/todo-api"
	todohttp "github.com/todo-api/todo-api/http"
	"github.com/todo-api/todo-api/jwt"
	"github.com/todo-api/todo-api/postgres"
	"github.com/todo-api/todo-api/postgres/pgtest"
	"github.com/todo-api/todo-api/sqlite"
)

func TestMain(m *testing.M) {
	// The validator decodes only JSON by default; the docs page is HTML.
	openapi3filter.RegisterBodyDecoder("text/html", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	})
	pgtest.Main(m)
}

// testSecret signs the tokens of every test server.
const testSecret = "test-secret-that-is-at-least-32-bytes-long"

// engines lists the storage engines every HTTP test runs against.
var engines = []string{"sqlite", "postgres"}

// testServer is the real handler on a real listener over a real database.
type testServer struct {
	*httptest.Server
	tokens *jwt.Service
	users  todo.UserService
	router routers.Router
}

// forEachEngine runs fn as a subtest once per engine, each with its own server.
func forEachEngine(t *testing.T, fn func(t *testing.T, ts *testServer)) {
	t.Helper()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			fn(t, MustServe(t, engine, nil))
		})
	}
}

// MustServe starts a server on a fresh database of the engine; configure
// may adjust its config.
func MustServe(tb testing.TB, engine string, configure func(*todohttp.Config)) *testServer {
	tb.Helper()
	return mustServe(tb, engine, 0, configure)
}

// mustServe is MustServe with a per-user task quota (0 = none).
func mustServe(tb testing.TB, engine string, quota int, configure func(*todohttp.Config)) *testServer {
	tb.Helper()
	ctx := context.Background()
	var tasks todo.TaskService
	var users todo.UserService
	var ready func(context.Context) error
	switch engine {
	case "sqlite":
		db := sqlite.NewDB(filepath.Join(tb.TempDir(), "todo.db"))
		db.MaxTasksPerUser = quota
		if err := db.Open(ctx); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			tb.Fatal(err)
		}
		tasks, users, ready = sqlite.NewTaskService(db), sqlite.NewUserService(db), db.Ready
	case "postgres":
		db := postgres.NewDB(pgtest.URL(tb))
		db.MaxTasksPerUser = quota
		if err := db.Open(ctx); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			tb.Fatal(err)
		}
		tasks, users, ready = postgres.NewTaskService(db), postgres.NewUserService(db), db.Ready
	default:
		tb.Fatalf("unknown engine %q", engine)
	}
	tokens, err := jwt.New(ctx, jwt.Config{Secret: []byte(testSecret), Expiration: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tokens.Close)
	cfg := todohttp.Config{
		Tasks: tasks, Users: users, Tokens: tokens, Issuer: tokens, Ready: ready,
		BcryptCost: 4, MaxBodyBytes: 64 << 10,
	}
	if configure != nil {
		configure(&cfg)
	}
	srv := httptest.NewServer(todohttp.NewServer(cfg))
	tb.Cleanup(srv.Close)
	return &testServer{Server: srv, tokens: tokens, users: users, router: mustRouter(tb)}
}

func mustRouter(tb testing.TB) routers.Router {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(todohttp.OpenAPIDocument())
	if err != nil {
		tb.Fatalf("load OpenAPI document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		tb.Fatalf("OpenAPI document is invalid: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return router
}

// MustToken returns a valid token for the user id.
func (ts *testServer) MustToken(tb testing.TB, userID string) string {
	tb.Helper()
	token, _, err := ts.tokens.IssueToken(todo.Identity{UserID: userID})
	if err != nil {
		tb.Fatal(err)
	}
	return token
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value.
func (r *response) JSON(tb testing.TB) map[string]any {
	tb.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		tb.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return v
}

// Task decodes the body as a task.
func (r *response) Task(tb testing.TB) todo.Task {
	tb.Helper()
	var task todo.Task
	if err := json.Unmarshal(r.Body, &task); err != nil {
		tb.Fatalf("body is not a task: %v\n%s", err, r.Body)
	}
	return task
}

// request describes one call; Body is sent verbatim when it is a string or
// []byte, else as JSON.
type request struct {
	Method, Path, Token string
	Body                any
	Header              map[string]string
}

// Do sends the request and checks the response against the contract's
// invariants and the OpenAPI document.
func (ts *testServer) Do(tb testing.TB, req request) *response {
	tb.Helper()
	var body io.Reader
	var raw []byte
	switch b := req.Body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			tb.Fatal(err)
		}
	}
	if raw != nil {
		body = bytes.NewReader(raw)
	}
	hreq, err := http.NewRequest(req.Method, ts.URL+req.Path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if req.Token != "" {
		hreq.Header.Set("Authorization", "Bearer "+req.Token)
	}
	if raw != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	for k, v := range req.Header {
		if v == "" {
			hreq.Header.Del(k)
		} else {
			hreq.Header.Set(k, v)
		}
	}
	hresp, err := ts.Client().Do(hreq)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	defer hresp.Body.Close()
	respBody, err := io.ReadAll(hresp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	resp := &response{Status: hresp.StatusCode, Header: hresp.Header, Body: respBody}
	checkInvariants(tb, req, resp)
	ts.checkAgainstDocument(tb, hreq, raw, resp)
	return resp
}

// checkInvariants holds for every response: errors are the contract's JSON
// shape and reveal nothing internal; no response is a 500.
func checkInvariants(tb testing.TB, req request, resp *response) {
	tb.Helper()
	if resp.Status == http.StatusInternalServerError {
		tb.Errorf("%s %s: got 500 (every 500 is a bug): %s", req.Method, req.Path, resp.Body)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		tb.Errorf("%s %s: no X-Request-ID header", req.Method, req.Path)
	}
	if resp.Status < 400 {
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("%s %s: error Content-Type = %q, want application/json", req.Method, req.Path, ct)
	}
	var e struct {
		Error *struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Details json.RawMessage `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Body, &e); err != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" || len(e.Error.Details) == 0 || e.Error.Details[0] != '{' {
		tb.Errorf("%s %s: error body is not {error:{code,message,details}}: %s", req.Method, req.Path, resp.Body)
	}
	for _, leak := range []string{"goroutine ", ".go:", "SQLSTATE", "sqlite", "pgx", "panic", "/root/", "/tmp/"} {
		if strings.Contains(string(resp.Body), leak) {
			tb.Errorf("%s %s: error body leaks %q: %s", req.Method, req.Path, leak, resp.Body)
		}
	}
}

// checkAgainstDocument validates the response against the OpenAPI
// operation the request matches. Requests that match no operation (unknown
// routes, wrong methods) have only the invariants to meet.
func (ts *testServer) checkAgainstDocument(tb testing.TB, hreq *http.Request, body []byte, resp *response) {
	tb.Helper()
	vreq := hreq.Clone(context.Background())
	vreq.URL.Host, vreq.URL.Scheme = "", ""
	route, pathParams, err := ts.router.FindRoute(vreq)
	// 405, 414 and unrouted 404s are decided before any operation runs.
	unrouted := resp.Status == http.StatusNotFound && bytes.Contains(resp.Body, []byte(`"code":"NOT_FOUND"`))
	if err != nil || unrouted || resp.Status == http.StatusMethodNotAllowed || resp.Status == http.StatusRequestURITooLong {
		return
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: hreq, PathParams: pathParams, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: resp.Status,
		Header: resp.Header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	input.SetBodyBytes(resp.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		tb.Errorf("%s %s → %d does not match the OpenAPI document: %v\nbody: %.500s", hreq.Method, hreq.URL.Path, resp.Status, err, resp.Body)
	}
}

// wantError checks status and error code.
func wantError(tb testing.TB, resp *response, status int, code string) {
	tb.Helper()
	if resp.Status != status {
		tb.Fatalf("status = %d, want %d; body %s", resp.Status, status, resp.Body)
	}
	got := resp.JSON(tb)["error"].(map[string]any)["code"]
	if got != code {
		tb.Fatalf("error code = %v, want %s; body %s", got, code, resp.Body)
	}
}

// wantStatus checks the status.
func wantStatus(tb testing.TB, resp *response, status int) {
	tb.Helper()
	if resp.Status != status {
		tb.Fatalf("status = %d, want %d; body %s", resp.Status, status, resp.Body)
	}
}

// fieldErrors returns details.fields as field → message.
func fieldErrors(tb testing.TB, resp *response) map[string]string {
	tb.Helper()
	out := map[string]string{}
	details, _ := resp.JSON(tb)["error"].(map[string]any)["details"].(map[string]any)
	fields, _ := details["fields"].([]any)
	for _, f := range fields {
		m := f.(map[string]any)
		out[m["field"].(string)] = m["message"].(string)
	}
	return out
}
