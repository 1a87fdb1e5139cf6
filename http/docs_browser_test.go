package http_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestDocsAuthorizeInBrowser opens /docs in headless Chromium, signs in
// with the Authorize button (OAuth2 password flow against
// /api/auth/login) and uses "Try it out" with the token it got.
func TestDocsAuthorizeInBrowser(t *testing.T) {
	t.Parallel()
	dir, _ := filepath.Abs(filepath.Join("testdata", "browser"))
	chromium := "/usr/bin/chromium"
	node, err := exec.LookPath("node")
	switch {
	case err != nil:
		browserUnavailable(t, "node is not installed")
	case !exists(filepath.Join(dir, "node_modules", "playwright-core")):
		browserUnavailable(t, "run `npm ci --prefix http/testdata/browser` first")
	case !exists(chromium):
		browserUnavailable(t, "Debian's chromium is not installed (apt-get install chromium)")
	}

	ts := MustServe(t, "sqlite", nil)
	wantStatus(t, ts.Do(t, request{Method: "POST", Path: "/api/auth/register",
		Body: map[string]any{"email": "docs@example.com", "password": "browse the docs"}}), http.StatusCreated)

	cmd := exec.Command(node, "docs.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BASE="+ts.URL, "EMAIL=docs@example.com", "PASSWORD=browse the docs", "CHROMIUM="+chromium)
	out, err := cmd.Output()
	var result struct {
		LoginStatus int      `json:"loginStatus"`
		Authorized  bool     `json:"authorized"`
		Offsite     []string `json:"offsite"`
		Error       string   `json:"error"`
		Create      struct {
			Status        int    `json:"status"`
			Authorization string `json:"authorization"`
		} `json:"create"`
		List struct {
			Status int            `json:"status"`
			Body   map[string]any `json:"body"`
		} `json:"list"`
	}
	if jsonErr := json.Unmarshal(out, &result); jsonErr != nil {
		t.Fatalf("docs.mjs: %v (%v)\n%s", err, jsonErr, out)
	}
	if result.Error != "" {
		t.Fatalf("browser: %s", result.Error)
	}
	if result.LoginStatus != http.StatusOK || !result.Authorized {
		t.Errorf("Authorize: login status %d, authorized %v", result.LoginStatus, result.Authorized)
	}
	if len(result.Offsite) > 0 {
		t.Errorf("/docs fetched from other hosts: %v", result.Offsite)
	}
	if result.Create.Status != http.StatusCreated || result.Create.Authorization != "Bearer" {
		t.Errorf("Try it out POST /api/tasks: status %d, authorization scheme %q", result.Create.Status, result.Create.Authorization)
	}
	if result.List.Status != http.StatusOK || result.List.Body["count"] != float64(1) {
		t.Errorf("Try it out GET /api/tasks: status %d, body %v", result.List.Status, result.List.Body)
	}
	if err != nil {
		t.Errorf("docs.mjs exited with %v", err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// browserUnavailable skips loudly, or fails under CI, where .ci/run
// installs what the test needs.
func browserUnavailable(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("BROWSER TEST NOT RUN: %s", why)
	}
	t.Skipf("BROWSER TEST NOT RUN: %s", why)
}
