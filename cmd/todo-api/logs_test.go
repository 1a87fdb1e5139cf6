package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/todo-api/todo-api/postgres/pgtest"
	"github.com/todo-api/todo-api/sqlite"
)

// The tests in this file run the real binary and read everything it
// writes: the log must never hold a credential, every response must carry
// the security headers, and error bodies must say nothing internal.

// exchange is one finished request, kept for the checks at the end.
type exchange struct {
	name   string
	status int
	header http.Header
	body   []byte
}

// exchanges records every response of a test.
type exchanges struct {
	base string
	all  []exchange
}

// do sends a request with a raw body and an optional Authorization value
// and content type, and records the response.
func (x *exchanges) do(tb testing.TB, name, method, path, authorization, contentType, body string) exchange {
	tb.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, x.base+path, r)
	if err != nil {
		tb.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	e := exchange{name: name, status: resp.StatusCode, header: resp.Header, body: raw}
	x.all = append(x.all, e)
	return e
}

// json decodes an exchange's body.
func (e exchange) json(tb testing.TB) map[string]any {
	tb.Helper()
	var v map[string]any
	if err := json.Unmarshal(e.body, &v); err != nil {
		tb.Fatalf("%s: body is not JSON: %v\n%s", e.name, err, e.body)
	}
	return v
}

// want fails the test unless the exchange has the status.
func (e exchange) want(tb testing.TB, status int) exchange {
	tb.Helper()
	if e.status != status {
		tb.Fatalf("%s: status %d, want %d: %s", e.name, e.status, status, e.body)
	}
	return e
}

// securityHeaders are the headers every response of the API carries.
var securityHeaders = map[string]string{
	"X-Content-Type-Options":  "nosniff",
	"X-Frame-Options":         "DENY",
	"Content-Security-Policy": "frame-ancestors 'none'",
	"Referrer-Policy":         "no-referrer",
}

// internalText is what an error body must never contain: stack traces,
// source positions, driver and SQL text, file paths.
var internalText = []string{"goroutine ", ".go:", "panic", "runtime.", "SQLSTATE", "sqlite", "pgx", "postgres", "SELECT ", "INSERT ", "/tmp/", "/root/", "bcrypt", "crypto/"}

// checkResponses checks the security headers of every response and the
// shape and content of every error body.
func checkResponses(tb testing.TB, all []exchange) {
	tb.Helper()
	for _, e := range all {
		for name, want := range securityHeaders {
			if got := e.header.Get(name); !strings.Contains(got, want) {
				tb.Errorf("%s (%d): %s = %q, want it to contain %q", e.name, e.status, name, got, want)
			}
		}
		if e.status < 400 {
			continue
		}
		var body struct {
			Error *struct {
				Code    string          `json:"code"`
				Message string          `json:"message"`
				Details json.RawMessage `json:"details"`
			} `json:"error"`
		}
		if err := json.Unmarshal(e.body, &body); err != nil || body.Error == nil || body.Error.Code == "" || body.Error.Message == "" || !strings.HasPrefix(string(body.Error.Details), "{") {
			tb.Errorf("%s (%d): error body is not {error:{code,message,details}}: %s", e.name, e.status, e.body)
		}
		for _, leak := range internalText {
			if strings.Contains(strings.ToLower(string(e.body)), strings.ToLower(leak)) {
				tb.Errorf("%s (%d): error body contains %q: %s", e.name, e.status, leak, e.body)
			}
		}
	}
}

// TestLogsHoldNoSecrets walks through accounts and tasks with right and
// wrong credentials at LOG_LEVEL=debug, then searches the whole output
// for every credential that passed through the process.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "todo.db")
	secret := "logs-test-secret-0123456789-abcdefghij"
	env := map[string]string{
		"DATABASE_URL": "sqlite:" + dbPath, "JWT_SECRET": secret, "LOG_LEVEL": "debug",
		"BCRYPT_COST": "4", "RATE_LIMIT_IP": "0", "MAX_BODY_BYTES": "4096",
	}
	p := startProcess(t, dir, env)
	p.WaitReady(t)
	x := &exchanges{base: p.Base}
	const (
		email         = "Secret.Keeper@Example.com"
		password      = "correct-Horse-battery-42"
		wrongPassword = "wrong-Password-9876-zyx"
	)

	reg := x.do(t, "register", "POST", "/api/auth/register", "", "application/json",
		fmt.Sprintf(`{"email":%q,"password":%q,"name":"Keeper"}`, email, password)).want(t, http.StatusCreated).json(t)
	token, _ := reg["access_token"].(string)
	if token == "" {
		t.Fatalf("register: no token: %v", reg)
	}
	if strings.Contains(fmt.Sprint(reg), "password") || strings.Contains(fmt.Sprint(reg), "$2a$") {
		t.Errorf("register response carries the password or its hash: %v", reg)
	}
	login := x.do(t, "login json", "POST", "/api/auth/login", "", "application/json",
		fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)).want(t, http.StatusOK).json(t)
	formToken, _ := x.do(t, "login form", "POST", "/api/auth/login", "", "application/x-www-form-urlencoded",
		url.Values{"username": {email}, "password": {password}}.Encode()).want(t, http.StatusOK).json(t)["access_token"].(string)
	wrong := x.do(t, "login wrong password", "POST", "/api/auth/login", "", "application/json",
		fmt.Sprintf(`{"email":%q,"password":%q}`, email, wrongPassword)).want(t, http.StatusUnauthorized)
	unknown := x.do(t, "login unknown email", "POST", "/api/auth/login", "", "application/json",
		fmt.Sprintf(`{"email":"nobody@example.com","password":%q}`, wrongPassword)).want(t, http.StatusUnauthorized)
	if string(wrong.body) != string(unknown.body) {
		t.Errorf("wrong password and unknown email answer differently:\n%s\n%s", wrong.body, unknown.body)
	}
	x.do(t, "register taken", "POST", "/api/auth/register", "", "application/json",
		fmt.Sprintf(`{"email":%q,"password":%q}`, strings.ToUpper(email), password)).want(t, http.StatusConflict)
	x.do(t, "register short password", "POST", "/api/auth/register", "", "application/json",
		`{"email":"short@example.com","password":"Sh0rt!"}`).want(t, http.StatusBadRequest)

	bearer := "Bearer " + token
	x.do(t, "me", "GET", "/api/auth/me", bearer, "", "").want(t, http.StatusOK)
	task := x.do(t, "create", "POST", "/api/tasks", bearer, "application/json", `{"title":"keep it secret"}`).want(t, http.StatusCreated).json(t)
	id, _ := task["id"].(string)
	x.do(t, "list", "GET", "/api/tasks", "bearer "+login["access_token"].(string), "", "").want(t, http.StatusOK)
	x.do(t, "toggle", "PATCH", "/api/tasks/"+id+"/toggle", "BEARER "+formToken, "", "").want(t, http.StatusOK)
	x.do(t, "replace", "PUT", "/api/tasks/"+id, bearer, "", `{"title":"still secret"}`).want(t, http.StatusOK)
	x.do(t, "get", "GET", "/api/tasks/"+id, bearer, "", "").want(t, http.StatusOK)
	x.do(t, "delete", "DELETE", "/api/tasks/"+id, bearer, "", "").want(t, http.StatusNoContent)
	x.do(t, "get deleted", "GET", "/api/tasks/"+id, bearer, "", "").want(t, http.StatusNotFound)

	otherSecret := "another-secret-that-is-32-bytes-or-more"
	forged := processToken(t, dir, map[string]string{"JWT_SECRET": otherSecret}, "mallory")
	tampered := token[:len(token)-4] + "AAAA"
	badAuth := []string{"Bearer " + forged, "Bearer " + tampered, "Bearer not.a.token", "Basic c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3M=", "Bearer"}
	for _, auth := range badAuth {
		e := x.do(t, "bad token "+auth[:min(len(auth), 12)], "GET", "/api/tasks", auth, "", "").want(t, http.StatusUnauthorized)
		if e.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", e.name)
		}
	}

	// Errors of every kind, and the routes that are not the API.
	x.do(t, "invalid json", "POST", "/api/tasks", bearer, "application/json", `{"title":`).want(t, http.StatusBadRequest)
	x.do(t, "wrong media type", "POST", "/api/tasks", bearer, "text/plain", `title`).want(t, http.StatusUnsupportedMediaType)
	x.do(t, "too large", "POST", "/api/tasks", bearer, "application/json", `{"title":"`+strings.Repeat("x", 5000)+`"}`).want(t, http.StatusRequestEntityTooLarge)
	x.do(t, "uri too long", "GET", "/api/tasks?q="+strings.Repeat("u", 9000), bearer, "", "").want(t, http.StatusRequestURITooLong)
	x.do(t, "unknown route", "GET", "/api/nope", "", "", "").want(t, http.StatusNotFound)
	x.do(t, "wrong method", "DELETE", "/api/tasks", bearer, "", "").want(t, http.StatusMethodNotAllowed)
	x.do(t, "not a uuid", "GET", "/api/tasks/'%20OR%201=1--", bearer, "", "").want(t, http.StatusNotFound)
	for _, path := range []string{"/health", "/ready", "/metrics", "/openapi.json", "/docs"} {
		x.do(t, path, "GET", path, "", "", "").want(t, http.StatusOK)
	}
	checkResponses(t, x.all)

	p.Signal(t, syscall.SIGTERM)
	if err := p.Wait(t, 15*time.Second); err != nil {
		t.Errorf("exit: %v", err)
	}

	hash := mustPasswordHash(t, dbPath, strings.ToLower(email))
	output := p.Logs.String() + p.Out.String()
	if !strings.Contains(output, `"route":"POST /api/auth/login"`) || !strings.Contains(output, `"level":"DEBUG"`) {
		t.Fatalf("the log does not show the requests at debug level; the test would prove nothing:\n%s", tail(output, 2000))
	}
	secrets := map[string]string{
		"JWT_SECRET":          secret,
		"other secret":        otherSecret,
		"password":            password,
		"wrong password":      wrongPassword,
		"bcrypt hash":         hash,
		"bcrypt hash prefix":  "$2a$",
		"registration token":  token,
		"login token":         login["access_token"].(string),
		"form token":          formToken,
		"forged token":        forged,
		"tampered token":      tampered,
		"Basic credentials":   "c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3M=",
		"Authorization value": "Bearer ",
		"Authorization name":  "Authorization",
	}
	for _, tok := range []string{token, forged, tampered} {
		// A token's signature alone is as good as a leak of the token.
		secrets["signature of "+tok[:12]] = tok[strings.LastIndexByte(tok, '.')+1:]
	}
	for what, s := range secrets {
		if strings.Contains(output, s) {
			t.Errorf("the output contains the %s (%q)", what, s)
		}
	}
	for _, e := range x.all {
		if e.name == "/metrics" || e.name == "/ready" || e.name == "/health" {
			for what, s := range secrets {
				if strings.Contains(string(e.body), s) {
					t.Errorf("%s contains the %s", e.name, what)
				}
			}
		}
	}
}

// mustPasswordHash reads an account's bcrypt hash from the SQLite file.
func mustPasswordHash(tb testing.TB, path, email string) string {
	tb.Helper()
	ctx := context.Background()
	db := sqlite.NewDB(path)
	if err := db.Open(ctx); err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	u, err := sqlite.NewUserService(db).FindUserByEmail(ctx, email)
	if err != nil {
		tb.Fatal(err)
	}
	if !strings.HasPrefix(string(u.PasswordHash), "$2a$") {
		tb.Fatalf("stored hash %q is not bcrypt", u.PasswordHash)
	}
	return string(u.PasswordHash)
}

// TestLogsHidePostgresPassword starts the binary with passwords in
// DATABASE_URL in the spellings PostgreSQL accepts, and checks that neither
// the start-up line nor the log repeats them.
func TestLogsHidePostgresPassword(t *testing.T) {
	t.Parallel()
	admin := pgtest.URL(t)
	for name, password := range map[string]string{
		"userinfo":            "Userinfo-Pa55word",
		"password= parameter": "Query-Pa55word",
	} {
		t.Run(name, func(t *testing.T) {
			// The server trusts local connections: any password connects.
			u, err := url.Parse(admin)
			if err != nil {
				t.Fatal(err)
			}
			var dsn string
			switch name {
			case "password= parameter":
				q := u.Query()
				q.Set("password", password)
				u.RawQuery = q.Encode()
				dsn = u.String()
			default:
				dsn = strings.Replace(admin, u.User.Username()+"@", u.User.Username()+":"+password+"@", 1)
			}
			env := map[string]string{"DATABASE_URL": dsn, "JWT_SECRET": durableSecret}
			p := startProcess(t, t.TempDir(), env)
			p.WaitReady(t)
			p.Signal(t, syscall.SIGTERM)
			p.Wait(t, 15*time.Second)
			for stream, out := range map[string]string{"log": p.Logs.String(), "stdout": p.Out.String()} {
				if strings.Contains(out, password) || strings.Contains(out, password[len(password)/2:]) {
					t.Errorf("DATABASE_URL=%s: the %s shows the password:\n%s", dsn, stream, out)
				}
			}
		})
	}
}

// TestDatabaseSourceMasksPassword pins what the start-up line shows for
// DATABASE_URL: the password hidden, wherever the URL puts it.
func TestDatabaseSourceMasksPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, secret string }{
		{"postgres://app:s3cret@db.example.com/todo", "s3cret"},
		{"postgresql://app:s3cret@db.example.com:5432/todo?sslmode=require", "s3cret"},
		{"postgres://app:p%40ss%3Aw0rd@db.example.com/todo", "p%40ss%3Aw0rd"},
		{"postgres://app:p%40ss%3Aw0rd@db.example.com/todo", "w0rd"},
		{"postgres://app@db.example.com/todo?password=s3cret&sslmode=require", "s3cret"},
		{"postgres://db.example.com/todo?user=app&password=s3cret", "s3cret"},
	} {
		var c config
		if err := c.parseDatabaseURL(tc.url); err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if c.Engine != "postgres" || c.DBURL != tc.url {
			t.Errorf("%s: engine %q, url %q", tc.url, c.Engine, c.DBURL)
		}
		if strings.Contains(c.DBSource, tc.secret) {
			t.Errorf("%s: shown as %q, which contains %q", tc.url, c.DBSource, tc.secret)
		}
		if !strings.Contains(c.DBSource, "db.example.com") {
			t.Errorf("%s: shown as %q, which no longer says which host", tc.url, c.DBSource)
		}
	}
}

// FuzzParseDatabaseURL: any DATABASE_URL picks an engine or is refused,
// never panics, and the text shown for it never holds its password.
func FuzzParseDatabaseURL(f *testing.F) {
	for _, seed := range []string{
		"", "todo.db", "sqlite:todo.db", "sqlite:///abs/todo.db?_pragma=x", "sqlite://rel.db", "file:x.db", "sqlite:",
		"postgres://u:pw@h/db", "postgresql://u:p@ss@h:5432/db?sslmode=require", "postgres://u@h/db?password=hunter22",
		"postgres://u:%70w@h/db", "mysql://u:pw@h/db", "  postgres://u:pw@h/db  ", "postgres://", "postgres://:@",
		"host=h user=u password=pw dbname=d", "C:\\todo.db", "\x00", "sqlite:\x00", "postgres://u:\xff\xfe@h/db",
		"postgres://u:pw@[::1]:5432/db", "postgres://u:pw@h1,h2:5433/db", "://", "sqlite:?", "file://",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var c config
		if err := c.parseDatabaseURL(v); err != nil {
			if strings.HasPrefix(strings.TrimSpace(v), "postgres") && strings.Contains(err.Error(), passwordOf(v)) && passwordOf(v) != "" {
				t.Errorf("%q: the error shows the password: %v", v, err)
			}
			return
		}
		switch c.Engine {
		case "sqlite":
			if c.DBPath == "" {
				t.Errorf("%q: sqlite with no path", v)
			}
		case "postgres":
			if c.DBURL != strings.TrimSpace(v) {
				t.Errorf("%q: url %q, want the value as given", v, c.DBURL)
			}
			// Masking removes the password where it stood, so each piece
			// of it occurs fewer times in what is shown than in the URL.
			pw := passwordOf(v)
			for _, piece := range []string{pw, pw[len(pw)/2:]} {
				if len(piece) >= 3 && strings.Trim(piece, "*") != "" && strings.Contains(v, piece) && strings.Count(c.DBSource, piece) >= strings.Count(strings.TrimSpace(v), piece) {
					t.Errorf("%q: shown as %q, which still holds %q of the password %q", v, c.DBSource, piece, pw)
				}
			}
		default:
			t.Errorf("%q: engine %q", v, c.Engine)
		}
	})
}

// passwordOf returns the password a PostgreSQL URL carries, as pgx reads
// it (from the userinfo or a password parameter), or "".
func passwordOf(v string) string {
	cfg, err := pgconn.ParseConfig(strings.TrimSpace(v))
	if err != nil {
		return ""
	}
	return cfg.Password
}

// TestLoginTimingDoesNotRevealAccounts measures login with a wrong
// password for an existing account against logins for accounts that do
// not exist: if one were much faster, the time would tell which emails are
// registered.
func TestLoginTimingDoesNotRevealAccounts(t *testing.T) {
	// Not parallel: the other tests' load would blur the timings.
	dir := t.TempDir()
	env := map[string]string{
		"DATABASE_URL": "sqlite:" + filepath.Join(dir, "todo.db"), "JWT_SECRET": durableSecret,
		"BCRYPT_COST": "10", "RATE_LIMIT_IP": "0", "LOG_LEVEL": "warn",
	}
	p := startProcess(t, dir, env)
	p.WaitReady(t)
	x := &exchanges{base: p.Base}
	x.do(t, "register", "POST", "/api/auth/register", "", "", `{"email":"known@example.com","password":"the-right-password"}`).want(t, http.StatusCreated)

	kinds := []struct{ name, body string }{
		{"known email, wrong password", `{"email":"known@example.com","password":"a-wrong-password"}`},
		{"unknown email", `{"email":"unknown@example.com","password":"a-wrong-password"}`},
		{"impossible email", `{"email":"not-an-email","password":"a-wrong-password"}`},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	login := func(body string) time.Duration {
		start := time.Now()
		resp, err := client.Post(p.Base+"/api/auth/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("login %s: status %d, want 401", body, resp.StatusCode)
		}
		return time.Since(start)
	}
	// The first failed login of an unknown email also makes the dummy hash.
	for _, k := range kinds {
		login(k.body)
	}
	const rounds = 15
	times := make([][]time.Duration, len(kinds))
	for range rounds {
		// Interleaved, so that drift in the machine's load hits all alike.
		for i, k := range kinds {
			times[i] = append(times[i], login(k.body))
		}
	}
	medians := make([]time.Duration, len(kinds))
	for i := range kinds {
		slices.Sort(times[i])
		medians[i] = times[i][rounds/2]
	}
	base := medians[0]
	if base < 10*time.Millisecond {
		t.Fatalf("a bcrypt comparison at cost 10 took %v: the wrong-password path does not hash", base)
	}
	for i, k := range kinds[1:] {
		ratio := float64(medians[i+1]) / float64(base)
		t.Logf("%s: median %v (%.2f× the %s)", k.name, medians[i+1], ratio, kinds[0].name)
		if ratio < 0.5 || ratio > 2 {
			t.Errorf("login for %s takes %v, %s %v: %.2f×, want within 0.5–2×", k.name, medians[i+1], kinds[0].name, base, ratio)
		}
	}
}
