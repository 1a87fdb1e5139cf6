package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	todo "github.com/todo-api/todo-api"
	"github.com/todo-api/todo-api/jwt"
	"github.com/todo-api/todo-api/postgres"
	"github.com/todo-api/todo-api/postgres/pgtest"
	"github.com/todo-api/todo-api/sqlite"
)

// Hostile input, fuzzed and named: whatever a client sends, the answer is
// a 2xx or a 4xx in the contract's error shape, never a 5xx or a panic,
// and what a 2xx stored reads back exactly as it was sent.

// fuzzSecret signs the tokens of the servers below.
const fuzzSecret = "fuzz-secret-that-is-at-least-32-bytes-long"

// fuzzMaxBody is the body limit of the servers below.
const fuzzMaxBody = 64 << 10

// fuzzServer is the whole handler over a real database, called without a
// network so that a fuzzer can run it thousands of times a second.
type fuzzServer struct {
	handler http.Handler
	token   string // a valid bearer token for user "fuzzer"
}

// mustFuzzServer starts a server over a fresh database of the engine.
func mustFuzzServer(tb testing.TB, engine string) *fuzzServer {
	tb.Helper()
	ctx := context.Background()
	cfg := Config{BcryptCost: 4, MaxBodyBytes: fuzzMaxBody}
	switch engine {
	case "sqlite":
		db := sqlite.NewDB(filepath.Join(tb.TempDir(), "fuzz.db"))
		if err := db.Open(ctx); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			tb.Fatal(err)
		}
		cfg.Tasks, cfg.Users = sqlite.NewTaskService(db), sqlite.NewUserService(db)
	case "postgres":
		db := postgres.NewDB(pgtest.URL(tb))
		if err := db.Open(ctx); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			tb.Fatal(err)
		}
		cfg.Tasks, cfg.Users = postgres.NewTaskService(db), postgres.NewUserService(db)
	default:
		tb.Fatalf("unknown engine %q", engine)
	}
	tokens, err := jwt.New(ctx, jwt.Config{Secret: []byte(fuzzSecret), Expiration: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tokens.Close)
	cfg.Tokens, cfg.Issuer = tokens, tokens
	token, _, err := tokens.IssueToken(todo.Identity{UserID: "fuzzer"})
	if err != nil {
		tb.Fatal(err)
	}
	return &fuzzServer{handler: NewServer(cfg), token: token}
}

// do sends one request through the handler.
func (s *fuzzServer) do(method, target, contentType string, body []byte, token string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec
}

// contractError is the contract's error body.
type contractError struct {
	Error *struct {
		Code    string                     `json:"code"`
		Message string                     `json:"message"`
		Details map[string]json.RawMessage `json:"details"`
	} `json:"error"`
}

// checkAnswer fails unless rec is a 2xx, or a 4xx whose body is the
// contract's JSON error with a code of that status.
func checkAnswer(tb testing.TB, what string, rec *httptest.ResponseRecorder) {
	tb.Helper()
	if rec.Code < 200 || rec.Code >= 500 || (rec.Code >= 300 && rec.Code < 400) {
		tb.Fatalf("%s: status %d, want 2xx or 4xx: %s", what, rec.Code, rec.Body)
	}
	if rec.Code < 400 {
		return
	}
	var e contractError
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == nil || e.Error.Message == "" || e.Error.Details == nil {
		tb.Fatalf("%s: %d with a body that is not {error:{code,message,details}}: %s", what, rec.Code, rec.Body)
	}
	if status, ok := statusOf[e.Error.Code]; !ok || status != rec.Code {
		tb.Fatalf("%s: %d with code %q, which is not that status's code", what, rec.Code, e.Error.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("%s: error Content-Type %q", what, ct)
	}
}

// sentTask is what a client meant by a task body, read independently of
// the handler.
type sentTask struct {
	Title       *string `json:"title"`
	Description *string `json:"description"`
	IsCompleted *bool   `json:"is_completed"`
}

// checkStored fails unless got (from a 2xx) and the task read back by id
// both hold exactly what body sent: the title trimmed, the rest verbatim.
func (s *fuzzServer) checkStored(tb testing.TB, body []byte, got *httptest.ResponseRecorder, wasCompleted bool) {
	tb.Helper()
	var sent sentTask
	if err := json.Unmarshal(body, &sent); err != nil || sent.Title == nil {
		tb.Fatalf("a 2xx for a body that is not a task (%v): %q", err, body)
	}
	var created todo.Task
	if err := json.Unmarshal(got.Body.Bytes(), &created); err != nil {
		tb.Fatalf("2xx body is not a task: %v: %s", err, got.Body)
	}
	read := s.do("GET", "/api/tasks/"+created.ID, "", nil, s.token)
	if read.Code != http.StatusOK {
		tb.Fatalf("GET the task a 2xx returned: %d %s", read.Code, read.Body)
	}
	var stored todo.Task
	if err := json.Unmarshal(read.Body.Bytes(), &stored); err != nil {
		tb.Fatal(err)
	}
	wantCompleted := wasCompleted
	if sent.IsCompleted != nil {
		wantCompleted = *sent.IsCompleted
	}
	for name, task := range map[string]todo.Task{"response": created, "read back": stored} {
		if want := strings.TrimSpace(*sent.Title); task.Title != want {
			tb.Errorf("%s: title %q, sent %q (trimmed %q)", name, task.Title, *sent.Title, want)
		}
		if !utf8.ValidString(task.Title) || utf8.RuneCountInString(task.Title) > todo.MaxTitleLength || task.Title == "" {
			tb.Errorf("%s: stored title %q breaks the limits", name, task.Title)
		}
		if (sent.Description == nil) != (task.Description == nil) || (sent.Description != nil && *sent.Description != *task.Description) {
			tb.Errorf("%s: description %v, sent %v", name, deref(task.Description), deref(sent.Description))
		}
		if task.IsCompleted != wantCompleted {
			tb.Errorf("%s: is_completed %v, want %v", name, task.IsCompleted, wantCompleted)
		}
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// nastyTaskBodies are the seeds of the task fuzzers: each names a way
// clients and attackers break parsers.
var nastyTaskBodies = []string{
	`{"title":"plain"}`,
	`{"title":"  padded \n\t","description":"d","is_completed":true}`,
	`{"title":"a\u0000b"}`,
	"{\"title\":\"raw nul \x00 inside\"}",
	"{\"title\":\"invalid \xff\xfe utf-8\"}",
	"{\"title\":\"overlong \xc0\xaf slash\"}",
	"{\"title\":\"overlong nul \xc0\x80\"}",
	"{\"title\":\"surrogate as utf-8 \xed\xa0\x80\"}",
	`{"title":"lone surrogate \ud800"}`,
	`{"title":"lone low \udc00 surrogate"}`,
	`{"title":"pair \ud83d\ude00"}`,
	`{"title":"x","is_completed":1e999}`,
	`{"title":99999999999999999999}`,
	`{"title":"x","n":1e999,"m":-99999999999999999999999}`,
	`{"title":"x","extra":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
	`{"title":"x","extra":` + strings.Repeat(`{"a":`, 500) + `1` + strings.Repeat("}", 500) + `}`,
	`{"title":"first","title":"second"}`,
	`{"title":"x","description":"one","description":null}`,
	`{"title":"'); DROP TABLE tasks;--","description":"' OR '1'='1"}`,
	`{"title":"<script>alert(1)</script>","description":"<img src=x onerror=alert(1)>"}`,
	"\xef\xbb\xbf{\"title\":\"bom first\"}",
	`{"title":"\ufeffbom inside"}`,
	`{"title":"\u00a0\u3000\u2028"}`,
	`{"title":"line\u2028separator\u2029"}`,
	`{"title":"` + strings.Repeat("😀", 500) + `"}`,
	`{"title":"` + strings.Repeat("😀", 501) + `"}`,
	`{"title":"t","description":"` + strings.Repeat("é", 5001) + `"}`,
	`{"TITLE":"upper case key"}`,
	`{"title":null}`,
	`null`, `[]`, `"title"`, `42`, `true`, ``, ` `, `{`, `{}`, `{"title":"x"} trailing`, `{"title":"x"}{"title":"y"}`,
	"{\"title\":\"ctl \x01 raw\"}",
	`{"title":"x","is_completed":"true"}`,
	`{"title":"x","is_completed":null}`,
	`{"title":"x","description":{"nested":true}}`,
	`{"title":["x"]}`,
	`{"title":"\\u0041 escaped backslash"}`,
	`{"title":"%00%ff url escapes"}`,
	`{"title":"a\r\nX-Injected: 1"}`,
}

// FuzzDecodeTask: decodeTask and the domain's Validate never panic, fail
// only with the documented codes, and accept only bodies that are valid
// UTF-8 JSON objects whose title survives validation trimmed and intact.
func FuzzDecodeTask(f *testing.F) {
	for _, body := range nastyTaskBodies {
		f.Add([]byte(body), "application/json")
	}
	for _, ct := range []string{"", "application/json; charset=utf-8", "APPLICATION/JSON", "text/plain", "application/json;", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=\"\x00\""} {
		f.Add([]byte(`{"title":"content types"}`), ct)
	}
	digits := regexp.MustCompile(`[0-9]+`)
	decodeMessages := map[string]bool{
		"The request body must be application/json.":                       true,
		"The request body is larger than N bytes.":                         true,
		"The request body could not be read.":                              true,
		"The request body is empty; a JSON object is expected.":            true,
		"The request body is not valid UTF-N.":                             true,
		`The request body has a \u escape of an unpaired UTF-N surrogate.`: true,
		"The request body is not valid JSON (at byte N).":                  true,
		"The request body is not valid JSON.":                              true,
		"The request body must be a JSON object.":                          true,
		"The request has invalid fields.":                                  true,
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req := httptest.NewRequest("POST", "/api/tasks", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Body = http.MaxBytesReader(nil, req.Body, fuzzMaxBody)
		got, err := decodeTask(req)
		if err != nil {
			var e *todo.Error
			if !errors.As(err, &e) || !slices.Contains([]string{todo.EUNSUPPORTEDMEDIA, todo.EPAYLOADTOOLARGE, todo.EINVALIDJSON, todo.EVALIDATION}, e.Code) || e.Message == "" {
				t.Fatalf("decodeTask(%q): error %#v, want a documented *todo.Error", body, err)
			}
			for _, f := range e.Fields {
				if !slices.Contains([]string{"title", "description", "is_completed", "body"}, f.Field) {
					t.Fatalf("decodeTask(%q): field %q is not a field of the request", body, f.Field)
				}
			}
			// Messages are fixed sentences (numbers aside), so none can
			// echo the body; a substring test would flag a body that
			// happens to spell part of one ("applicat").
			if template := digits.ReplaceAllString(e.Message, "N"); !decodeMessages[template] {
				t.Fatalf("decodeTask(%q): message %q is not one of the fixed messages", body, e.Message)
			}
			return
		}
		if contentType != "" && !isJSON(contentType) {
			t.Fatalf("decodeTask accepted Content-Type %q", contentType)
		}
		if !utf8.Valid(body) || !json.Valid(body) || got.Title == nil {
			t.Fatalf("decodeTask accepted %q (utf8 %v, json %v)", body, utf8.Valid(body), json.Valid(body))
		}
		task := todo.Task{Title: *got.Title, Description: got.Description}
		if err := task.Validate(); err != nil {
			if todo.ErrorCode(err) != todo.EVALIDATION {
				t.Fatalf("Validate(%q): %v", *got.Title, err)
			}
			return
		}
		if task.Title != strings.TrimSpace(*got.Title) || task.Title == "" || !utf8.ValidString(task.Title) || strings.ContainsRune(task.Title, 0) {
			t.Fatalf("Validate accepted title %q from %q", task.Title, *got.Title)
		}
	})
}

// FuzzTaskHandler sends any body as a create or a full replace through the
// whole handler over SQLite: the answer is 2xx or a contract 4xx, and what
// a 2xx stored reads back exactly.
func FuzzTaskHandler(f *testing.F) {
	for _, body := range nastyTaskBodies {
		f.Add([]byte(body), "application/json", false, false)
		f.Add([]byte(body), "", true, true)
	}
	f.Add([]byte(`{"title":"form"}`), "application/x-www-form-urlencoded", false, false)
	s := mustFuzzServer(f, "sqlite")
	seed := s.do("POST", "/api/tasks", "application/json", []byte(`{"title":"replaced by the fuzzer"}`), s.token)
	if seed.Code != http.StatusCreated {
		f.Fatalf("create the task to replace: %d %s", seed.Code, seed.Body)
	}
	var existing todo.Task
	json.Unmarshal(seed.Body.Bytes(), &existing)
	f.Fuzz(func(t *testing.T, body []byte, contentType string, replace, compat bool) {
		method, target, want := "POST", "/api/tasks", http.StatusCreated
		if compat {
			target = "/api/fuzzer/tasks"
		}
		if replace {
			method, target, want = "PUT", target+"/"+existing.ID, http.StatusOK
		}
		before := s.do("GET", "/api/tasks/"+existing.ID, "", nil, s.token)
		var prior todo.Task
		json.Unmarshal(before.Body.Bytes(), &prior)

		rec := s.do(method, target, contentType, body, s.token)
		checkAnswer(t, fmt.Sprintf("%s %s %q (%q)", method, target, body, contentType), rec)
		if rec.Code >= 400 {
			return
		}
		if rec.Code != want {
			t.Fatalf("%s %q: status %d, want %d", method, body, rec.Code, want)
		}
		s.checkStored(t, body, rec, replace && prior.IsCompleted)
	})
}

// nastyAuthBodies seed the login and register fuzzers.
var nastyAuthBodies = []string{
	`{"email":"user@example.com","password":"password123"}`,
	`{"email":"  USER@Example.COM ","password":"password123","name":"  Name "}`,
	`{"email":"user@example.com","password":"` + strings.Repeat("p", 72) + `"}`,
	`{"email":"user@example.com","password":"` + strings.Repeat("p", 73) + `"}`,
	`{"email":"seventy-two@example.com","password":"` + strings.Repeat("7", 72) + `"}`,
	`{"email":"user@example.com","password":"` + strings.Repeat("é", 36) + `"}`,
	`{"email":"user@example.com","password":"short"}`,
	`{"email":"user@example.com","password":"nul\u0000in password"}`,
	"{\"email\":\"user@example.com\",\"password\":\"invalid \xff utf8\"}",
	`{"email":"user@example.com","password":"lone \ud800 surrogate"}`,
	`{"email":"\"quoted\"@example.com","password":"password123"}`,
	`{"email":"Name <user@example.com>","password":"password123"}`,
	`{"email":"user@localhost","password":"password123"}`,
	`{"email":"user@example.com.","password":"password123"}`,
	`{"email":"user@@example.com","password":"password123"}`,
	`{"email":"` + strings.Repeat("a", 250) + `@example.com","password":"password123"}`,
	`{"email":"üser@exämple.com","password":"password123"}`,
	`{"email":"K@example.com","password":"password123"}`,
	`{"email":"user@example.com","password":"password123","email":"other@example.com"}`,
	`{"email":"user@example.com\r\nBcc: x@example.com","password":"password123"}`,
	`{"email":"' OR 1=1--@example.com","password":"password123"}`,
	`{"email":123,"password":true}`,
	`{"username":"user@example.com","password":"password123"}`,
	`{"email":null,"password":null}`,
	`{}`, `[]`, `null`, ``, `{`,
	`email=user%40example.com&password=password123`,
	`username=user%40example.com&password=password123`,
	`username=user%40example.com&password=%00%ff%fe`,
	`username=a&username=b&password=password123&password=x`,
	`username=%zz&password=x`,
	`password=password123`,
	`;;;&&&===`,
}

// FuzzAuthHandler sends any body, as JSON or as a form, to register or
// login: the answer is one of the documented statuses in the contract's
// shape, never a 5xx; it never carries a password or hash; and an account
// that registered logs in with exactly the password it registered with.
func FuzzAuthHandler(f *testing.F) {
	for _, body := range nastyAuthBodies {
		ct := "application/json"
		if strings.Contains(body, "=") && !strings.HasPrefix(body, "{") {
			ct = "application/x-www-form-urlencoded"
		}
		f.Add([]byte(body), ct, true)
		f.Add([]byte(body), ct, false)
	}
	f.Add([]byte(`{"email":"ct@example.com","password":"password123"}`), "text/plain", true)
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\na@b.co\r\n--x--\r\n"), "multipart/form-data; boundary=x", false)
	s := mustFuzzServer(f, "sqlite")
	f.Fuzz(func(t *testing.T, body []byte, contentType string, register bool) {
		path, allowed := "/api/auth/login", []int{200, 400, 401, 413, 415}
		if register {
			path, allowed = "/api/auth/register", []int{201, 400, 409, 413, 415}
		}
		rec := s.do("POST", path, contentType, body, "")
		what := fmt.Sprintf("POST %s %q (%q)", path, body, contentType)
		checkAnswer(t, what, rec)
		if !slices.Contains(allowed, rec.Code) {
			t.Fatalf("%s: status %d, want one of %v: %s", what, rec.Code, allowed, rec.Body)
		}
		if bytes.Contains(rec.Body.Bytes(), []byte("$2a$")) || bytes.Contains(rec.Body.Bytes(), []byte(`"password":`)) ||
			bytes.Contains(rec.Body.Bytes(), []byte(`"password_hash"`)) || bytes.Contains(rec.Body.Bytes(), []byte(`"PasswordHash"`)) {
			t.Fatalf("%s: the answer shows a password or hash: %s", what, rec.Body)
		}
		if rec.Code != http.StatusCreated {
			return
		}
		var sent struct {
			Email, Password *string
		}
		if err := json.Unmarshal(body, &sent); err != nil || sent.Email == nil || sent.Password == nil {
			t.Fatalf("%s: 201 for a body that is not a registration", what)
		}
		var created authResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created.User == nil || created.User.Email == nil || created.AccessToken == "" {
			t.Fatalf("%s: 201 body %s", what, rec.Body)
		}
		// The password must not come back, but it may coincide with text the
		// answer holds for other reasons: its fixed keys, the email and
		// name the client sent, the date in created_at.
		pw := *sent.Password
		skeleton, _ := json.Marshal(authResponse{User: &todo.User{Email: new(string)}, TokenType: "bearer"})
		legit := []string{string(skeleton), strings.ToLower(*sent.Email), created.User.CreatedAt.Format(time.RFC3339Nano)}
		if created.User.Name != nil {
			legit = append(legit, *created.User.Name)
		}
		coincides := slices.ContainsFunc(legit, func(s string) bool { return strings.Contains(s, pw) || strings.Contains(s, strings.ToLower(pw)) })
		if len(pw) >= 8 && !coincides && bytes.Contains(rec.Body.Bytes(), []byte(pw)) {
			t.Errorf("%s: the answer repeats the password: %s", what, rec.Body)
		}
		if want := todo.NormalizeEmail(*sent.Email); *created.User.Email != want || !todo.ValidEmail(want) {
			t.Errorf("%s: registered email %q, want %q", what, *created.User.Email, want)
		}
		for _, email := range []string{*sent.Email, *created.User.Email} {
			login, _ := json.Marshal(map[string]string{"email": email, "password": *sent.Password})
			if rec := s.do("POST", "/api/auth/login", "application/json", login, ""); rec.Code != http.StatusOK {
				t.Errorf("%s: login as %q with the registered password: %d %s", what, email, rec.Code, rec.Body)
			}
			form := url.Values{"username": {email}, "password": {*sent.Password}}.Encode()
			if rec := s.do("POST", "/api/auth/login", "application/x-www-form-urlencoded", []byte(form), ""); rec.Code != http.StatusOK {
				t.Errorf("%s: form login as %q with the registered password: %d %s", what, email, rec.Code, rec.Body)
			}
		}
		wrong, _ := json.Marshal(map[string]string{"email": *sent.Email, "password": *sent.Password + "x"})
		if rec := s.do("POST", "/api/auth/login", "application/json", wrong, ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: login with the password plus a byte: %d, want 401", what, rec.Code)
		}
	})
}

// FuzzBearerToken: the Authorization parser takes exactly "Bearer", in any
// case, one space, and a token that is not blank.
func FuzzBearerToken(f *testing.F) {
	for _, h := range []string{
		"Bearer abc", "bearer abc", "BEARER abc", "Bearer  abc ", "Bearer", "Bearer ", "Bearer  ", "Bearerabc",
		"Basic dXNlcjpwYXNz", "Bearer\tabc", "\tBearer abc", " Bearer abc", "Bearer a b c", "Bearer \x00", "Bearer \xff",
		"Bearer\u00a0abc", "Beare\u0280 abc", "ＢＥＡＲＥＲ abc", "Bearer eyJ.eyJ.sig", "",
	} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, ok := bearerToken(header)
		wantOK := len(header) > 7 && strings.EqualFold(header[:6], "Bearer") && header[6] == ' ' && strings.TrimSpace(header[7:]) != ""
		if ok != wantOK {
			t.Fatalf("bearerToken(%q) ok = %v, want %v", header, ok, wantOK)
		}
		if !ok {
			if token != "" {
				t.Fatalf("bearerToken(%q) = %q with ok false", header, token)
			}
			return
		}
		if want := strings.TrimSpace(header[7:]); token != want {
			t.Fatalf("bearerToken(%q) = %q, want %q", header, token, want)
		}
	})
}

// FuzzClientIP: the client address is the peer's unless the peer is a
// trusted proxy; then it is the nearest untrusted address of
// X-Forwarded-For that comes before any garbled entry, and always an address.
func FuzzClientIP(f *testing.F) {
	for _, seed := range [][2]string{
		{"203.0.113.9:4000", "1.2.3.4"},
		{"10.0.0.2:4000", "198.51.100.7"},
		{"10.0.0.2:4000", "198.51.100.7, 10.0.0.3"},
		{"10.0.0.2:4000", "evil, 198.51.100.7"},
		{"10.0.0.2:4000", "198.51.100.7, garbage, 10.0.0.3"},
		{"10.0.0.2:4000", "10.0.0.9, 10.0.0.3"},
		{"10.0.0.2:4000", ""},
		{"10.0.0.2:4000", ",,,"},
		{"[::1]:4000", "2001:db8::1"},
		{"[::ffff:10.0.0.2]:4000", "::ffff:198.51.100.7"},
		{"10.0.0.2:4000", "fe80::1%eth0"},
		{"10.0.0.2:4000", "[2001:db8::1]:443"},
		{"10.0.0.2:4000", "198.51.100.7:80"},
		{"10.0.0.2:4000", "1.2.3.4\x00"},
		{"10.0.0.2:4000", strings.Repeat("1.1.1.1,", 1000)},
		{"not an address", "1.2.3.4"},
		{"", "1.2.3.4"},
		{"10.0.0.2", "1.2.3.4"},
		{"@", "\xff"},
	} {
		f.Add(seed[0], seed[1])
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	s := &Server{cfg: Config{TrustedProxies: trusted}}
	isTrusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) })
	}
	f.Fuzz(func(t *testing.T, remote, forwarded string) {
		r := httptest.NewRequest("GET", "/api/auth/login", nil)
		r.RemoteAddr = remote
		if forwarded != "" {
			r.Header.Set("X-Forwarded-For", forwarded)
		}
		got := s.clientIP(r)
		host := remote
		if h, _, err := net.SplitHostPort(remote); err == nil {
			host = h
		}
		peer, err := netip.ParseAddr(host)
		if err != nil || !isTrusted(peer) {
			if got != host {
				t.Fatalf("clientIP(peer %q, XFF %q) = %q; an untrusted peer's header must not count, want %q", remote, forwarded, got, host)
			}
			return
		}
		addr, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("clientIP(peer %q, XFF %q) = %q, not an address", remote, forwarded, got)
		}
		// Read the chain from the right as a proxy would: trusted hops
		// vouch for the next one; the first untrusted hop is the client; a
		// garbled hop ends what can be believed.
		want := peer.Unmap()
		var hops []string
		if forwarded != "" {
			hops = strings.Split(forwarded, ",")
		}
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			want = a.Unmap()
			if !isTrusted(a) {
				break
			}
		}
		if addr != want {
			t.Fatalf("clientIP(peer %q, XFF %q) = %q, want %q", remote, forwarded, got, want)
		}
	})
}

// TestNastyInputs pins the exact answer to each named nasty input, on
// both engines: a 400 with its code, or a 201 whose title reads back as
// sent (trimmed).
func TestNastyInputs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		code       string // "" means 201 with title wantTitle
		wantTitle  string
	}{
		{"NUL escape", `{"title":"a\u0000b"}`, todo.EVALIDATION, ""},
		{"NUL escape in description", `{"title":"t","description":"a\u0000b"}`, todo.EVALIDATION, ""},
		{"raw NUL", "{\"title\":\"a\x00b\"}", todo.EINVALIDJSON, ""},
		{"raw control character", "{\"title\":\"a\x01b\"}", todo.EINVALIDJSON, ""},
		{"invalid UTF-8", "{\"title\":\"a\xffb\"}", todo.EINVALIDJSON, ""},
		{"overlong slash", "{\"title\":\"a\xc0\xafb\"}", todo.EINVALIDJSON, ""},
		{"overlong NUL", "{\"title\":\"a\xc0\x80b\"}", todo.EINVALIDJSON, ""},
		{"UTF-8 encoded surrogate", "{\"title\":\"a\xed\xa0\x80b\"}", todo.EINVALIDJSON, ""},
		// encoding/json turns a lone surrogate escape into U+FFFD: storing
		// that would not be what was sent, so it must be refused too.
		{"lone high surrogate", `{"title":"a\ud800b"}`, todo.EINVALIDJSON, ""},
		{"lone low surrogate", `{"title":"a\udc00b"}`, todo.EINVALIDJSON, ""},
		{"reversed surrogate pair", `{"title":"a\ude00\ud83db"}`, todo.EINVALIDJSON, ""},
		{"surrogate pair", `{"title":"a\ud83d\ude00b"}`, "", "a😀b"},
		{"huge number as boolean", `{"title":"x","is_completed":1e999}`, todo.EVALIDATION, ""},
		{"huge integer as title", `{"title":99999999999999999999}`, todo.EVALIDATION, ""},
		{"huge numbers in unknown fields", `{"title":"numbers","n":1e999,"m":-99999999999999999999999}`, "", "numbers"},
		{"nesting past the parser's limit", `{"title":"x","extra":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, todo.EINVALIDJSON, ""},
		{"deep but allowed nesting", `{"title":"deep","extra":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`, "", "deep"},
		{"duplicate keys: the last wins", `{"title":"first","title":"second"}`, "", "second"},
		{"SQL", `{"title":"'); DROP TABLE tasks;--"}`, "", "'); DROP TABLE tasks;--"},
		{"SQL quote games", `{"title":"' OR '1'='1' /*"}`, "", "' OR '1'='1' /*"},
		{"HTML", `{"title":"<script>alert(1)</script>&amp;"}`, "", "<script>alert(1)</script>&amp;"},
		{"BOM before the body", "\xef\xbb\xbf{\"title\":\"bom\"}", todo.EINVALIDJSON, ""},
		{"BOM in the title", `{"title":"\ufeffbom"}`, "", "\ufeffbom"},
		{"Unicode spaces only", `{"title":"\u00a0\u3000\u2003\n"}`, todo.EVALIDATION, ""},
		{"line separators kept", `{"title":"a\u2028b\u2029c"}`, "", "a\u2028b\u2029c"},
		{"500 emoji", `{"title":"` + strings.Repeat("😀", 500) + `"}`, "", strings.Repeat("😀", 500)},
		{"501 emoji", `{"title":"` + strings.Repeat("😀", 501) + `"}`, todo.EVALIDATION, ""},
		{"combining marks count as characters", `{"title":"` + strings.Repeat("e\u0301", 250) + `"}`, "", strings.Repeat("e\u0301", 250)},
		{"trailing garbage", `{"title":"x"} trailing`, todo.EINVALIDJSON, ""},
		{"two objects", `{"title":"x"}{"title":"y"}`, todo.EINVALIDJSON, ""},
		{"null body", `null`, todo.EVALIDATION, ""},
		{"array body", `[{"title":"x"}]`, todo.EVALIDATION, ""},
		{"empty body", ``, todo.EINVALIDJSON, ""},
		{"header injection", `{"title":"a\r\nX-Injected: 1"}`, "", "a\r\nX-Injected: 1"},
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := mustFuzzServer(t, engine)
			for _, tc := range cases {
				rec := s.do("POST", "/api/tasks", "application/json", []byte(tc.body), s.token)
				checkAnswer(t, tc.name, rec)
				if tc.code != "" {
					var e contractError
					json.Unmarshal(rec.Body.Bytes(), &e)
					if rec.Code != http.StatusBadRequest || e.Error == nil || e.Error.Code != tc.code {
						t.Errorf("%s: %d %s, want 400 %s", tc.name, rec.Code, rec.Body, tc.code)
					}
					continue
				}
				if rec.Code != http.StatusCreated {
					t.Errorf("%s: %d %s, want 201", tc.name, rec.Code, rec.Body)
					continue
				}
				var task todo.Task
				json.Unmarshal(rec.Body.Bytes(), &task)
				read := s.do("GET", "/api/tasks/"+task.ID, "", nil, s.token)
				var stored todo.Task
				json.Unmarshal(read.Body.Bytes(), &stored)
				if task.Title != tc.wantTitle || stored.Title != tc.wantTitle {
					t.Errorf("%s: created %q, read back %q, want %q", tc.name, task.Title, stored.Title, tc.wantTitle)
				}
			}
			// After all that the list still answers, with only the 201s.
			list := s.do("GET", "/api/tasks", "", nil, s.token)
			if list.Code != http.StatusOK {
				t.Fatalf("list: %d %s", list.Code, list.Body)
			}
		})
	}
}

// TestLoginRefusesPasswordPastBcryptLimit: bcrypt reads only a password's
// first 72 bytes, so without a length check at login an account whose
// password is exactly 72 bytes would open with any longer password that
// starts with it.
func TestLoginRefusesPasswordPastBcryptLimit(t *testing.T) {
	t.Parallel()
	s := mustFuzzServer(t, "sqlite")
	password := strings.Repeat("7", todo.MaxPasswordBytes)
	reg, _ := json.Marshal(map[string]string{"email": "limit@example.com", "password": password})
	if rec := s.do("POST", "/api/auth/register", "application/json", reg, ""); rec.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
	for _, tc := range []struct {
		password string
		want     int
	}{
		{password, http.StatusOK},
		{password + "x", http.StatusUnauthorized},
		{password + strings.Repeat("anything", 20), http.StatusUnauthorized},
	} {
		login, _ := json.Marshal(map[string]string{"email": "limit@example.com", "password": tc.password})
		rec := s.do("POST", "/api/auth/login", "application/json", login, "")
		checkAnswer(t, "login", rec)
		if rec.Code != tc.want {
			t.Errorf("login with a %d-byte password: %d, want %d", len(tc.password), rec.Code, tc.want)
		}
	}
}
