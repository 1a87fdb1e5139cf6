package http_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	todo "github.com/todo-api/todo-api"
	todohttp "github.com/todo-api/todo-api/http"
)

func TestUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	ts := MustServe(t, "sqlite", nil)
	token := ts.MustToken(t, "router")
	for _, path := range []string{"/", "/nope", "/api", "/api/", "/api/tasks/x/y", "/api/u/tasks/x/y", "/api/auth/nothing",
		"/docs/missing.js", "/docs/", "/api//tasks", "/api/tasks/../tasks", "/api/./tasks"} {
		resp := ts.Do(t, request{Method: "GET", Path: path, Token: token})
		wantError(t, resp, http.StatusNotFound, todo.ENOTFOUND)
	}
	cases := []struct{ method, path, allow string }{
		{"DELETE", "/api/tasks", "GET, HEAD, POST"},
		{"PATCH", "/api/tasks/0193c1c2-0000-7000-8000-000000000000", "DELETE, GET, HEAD, PUT"},
		{"GET", "/api/tasks/0193c1c2-0000-7000-8000-000000000000/toggle", "PATCH"},
		{"POST", "/health", "GET, HEAD"},
		{"GET", "/api/auth/login", "POST"},
		{"PATCH", "/api/u/tasks", "GET, HEAD, POST"},
	}
	for _, tc := range cases {
		resp := ts.Do(t, request{Method: tc.method, Path: tc.path, Token: token})
		wantError(t, resp, http.StatusMethodNotAllowed, todo.EMETHODNOTALLOWED)
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

func TestOperationsRoutes(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		wantStatus(t, ts.Do(t, request{Method: "GET", Path: "/health"}), http.StatusOK)
		wantStatus(t, ts.Do(t, request{Method: "GET", Path: "/ready"}), http.StatusOK)
		ts.MustCreateTask(t, ts.MustToken(t, "metered"), map[string]any{"title": "x"})

		metrics := ts.Do(t, request{Method: "GET", Path: "/metrics"})
		wantStatus(t, metrics, http.StatusOK)
		for _, want := range []string{`todo_http_requests_total{method="POST",route="POST /api/tasks",status="201"} 1`, "todo_http_request_duration_seconds_bucket", "go_goroutines"} {
			if !bytes.Contains(metrics.Body, []byte(want)) {
				t.Errorf("/metrics lacks %q", want)
			}
		}

		doc := ts.Do(t, request{Method: "GET", Path: "/openapi.json"})
		wantStatus(t, doc, http.StatusOK)
		if !bytes.Equal(doc.Body, todohttp.OpenAPIDocument()) {
			t.Errorf("/openapi.json is not the embedded document")
		}
	})
}

func TestReadyReportsFailure(t *testing.T) {
	t.Parallel()
	ts := MustServe(t, "sqlite", func(c *todohttp.Config) {
		c.Ready = func(context.Context) error { return errors.New("db at /secret/path: connection refused") }
	})
	resp := ts.Do(t, request{Method: "GET", Path: "/ready"})
	wantError(t, resp, http.StatusServiceUnavailable, todo.EUNAVAILABLE)
	if bytes.Contains(resp.Body, []byte("/secret/path")) {
		t.Errorf("/ready leaks the cause: %s", resp.Body)
	}
	wantStatus(t, ts.Do(t, request{Method: "GET", Path: "/health"}), http.StatusOK)
}

func TestDocsWorkOffline(t *testing.T) {
	t.Parallel()
	ts := MustServe(t, "sqlite", nil)
	page := ts.Do(t, request{Method: "GET", Path: "/docs"})
	wantStatus(t, page, http.StatusOK)
	if ct := page.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("/docs Content-Type = %q", ct)
	}
	if bytes.Contains(page.Body, []byte("http://")) || bytes.Contains(page.Body, []byte("https://")) {
		t.Errorf("/docs refers to another host:\n%s", page.Body)
	}
	for _, asset := range []string{"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/init.js"} {
		resp, err := http.Get(ts.URL + asset)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("%s: status %d, %d bytes", asset, resp.StatusCode, len(body))
		}
		if !bytes.Contains(page.Body, []byte(asset)) {
			t.Errorf("/docs does not load %s", asset)
		}
	}
	// The Authorize button's password flow posts the login form here.
	if !bytes.Contains(todohttp.OpenAPIDocument(), []byte(`"tokenUrl": "/api/auth/login"`)) {
		t.Errorf("OpenAPI document has no password flow to /api/auth/login")
	}
}

func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	ts := MustServe(t, "sqlite", func(c *todohttp.Config) { c.CORSOrigins = []string{"https://app.example.com"} })
	resp := ts.Do(t, request{Method: "GET", Path: "/health", Header: map[string]string{"X-Request-ID": "req-123", "Origin": "https://app.example.com"}})
	for header, want := range map[string]string{
		"X-Request-ID":                "req-123",
		"X-Content-Type-Options":      "nosniff",
		"X-Frame-Options":             "DENY",
		"Access-Control-Allow-Origin": "https://app.example.com",
	} {
		if got := resp.Header.Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	generated := ts.Do(t, request{Method: "GET", Path: "/health", Header: map[string]string{"X-Request-ID": "bad id with spaces"}})
	if id := generated.Header.Get("X-Request-ID"); id == "" || strings.Contains(id, " ") {
		t.Errorf("unsafe request id echoed: %q", id)
	}
	other := ts.Do(t, request{Method: "GET", Path: "/health", Header: map[string]string{"Origin": "https://evil.example.com"}})
	if got := other.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("foreign origin allowed: %q", got)
	}

	req, _ := http.NewRequest("OPTIONS", ts.URL+"/api/tasks", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	preflight, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	preflight.Body.Close()
	if preflight.StatusCode != http.StatusNoContent || !strings.Contains(preflight.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", preflight.StatusCode, preflight.Header)
	}
}
