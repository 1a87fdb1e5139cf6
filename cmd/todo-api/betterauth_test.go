package main

import (
	"net/http"
	"testing"

	"github.com/todo-api/todo-api/jwt/betterauthtest"
)

// TestBetterAuthEndToEnd is issue 3's "done when": a token minted by a real
// Better Auth, with no shared secret configured, creates and lists tasks.
func TestBetterAuthEndToEnd(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"EdDSA", "RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			ba := betterauthtest.Start(t, betterauthtest.Options{Alg: alg})
			dir := t.TempDir()
			env := map[string]string{
				"JWKS_URL":     ba.JWKSURL(),
				"JWT_ISSUER":   ba.URL,
				"JWT_AUDIENCE": ba.URL,
			}
			p := startProcess(t, dir, env)
			p.WaitReady(t)

			session := ba.SignUpSession(t, "grace-"+alg+"@example.com", "a long password")
			token := session.Token(t)
			status, task := call(t, "POST", p.Base+"/api/tasks", token, map[string]any{"title": "from Better Auth"})
			if status != http.StatusCreated {
				t.Fatalf("create with a Better Auth token: %d %v", status, task)
			}
			if task["user_id"] != session.UserID {
				t.Errorf("task owner %v, want the Better Auth user id %s", task["user_id"], session.UserID)
			}
			status, list := call(t, "GET", p.Base+"/api/tasks", token, nil)
			if status != http.StatusOK || list["count"].(float64) != 1 {
				t.Errorf("list: %d %v", status, list)
			}
			// The compatibility routes take the same subject in the path.
			if status, _ := call(t, "GET", p.Base+"/api/"+session.UserID+"/tasks", token, nil); status != http.StatusOK {
				t.Errorf("compat list: %d", status)
			}
			status, me := call(t, "GET", p.Base+"/api/auth/me", token, nil)
			if status != http.StatusOK || me["email"] != session.Email {
				t.Errorf("me: %d %v, want email %s from the token's claims", status, me, session.Email)
			}
			// No shared secret: the built-in accounts are off.
			if status, _ := call(t, "POST", p.Base+"/api/auth/login", "", map[string]any{"email": session.Email, "password": "a long password"}); status != http.StatusNotFound {
				t.Errorf("login without a secret: %d, want 404", status)
			}

			// Another Better Auth (its own keys) is not trusted.
			other := betterauthtest.Start(t, betterauthtest.Options{Alg: alg})
			foreign := other.SignUp(t, "mallory-"+alg+"@example.com", "a long password")
			if status, _ := call(t, "GET", p.Base+"/api/tasks", foreign, nil); status != http.StatusUnauthorized {
				t.Errorf("token from an untrusted Better Auth: %d, want 401", status)
			}
		})
	}
}

// With the issuer down at start, the server starts, /ready says so, and it
// recovers as soon as the issuer answers.
func TestJWKSIssuerDownAtStart(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	dir := t.TempDir()
	p := startProcess(t, dir, map[string]string{"JWKS_URL": "http://127.0.0.1:" + port + "/api/auth/jwks"})
	p.WaitHealthy(t)
	if status, _ := call(t, "GET", p.Base+"/ready", "", nil); status != http.StatusServiceUnavailable {
		t.Errorf("/ready with the issuer down: %d, want 503", status)
	}
	ba := betterauthtest.Start(t, betterauthtest.Options{Port: port})
	p.WaitReady(t)
	token := ba.SignUp(t, "late@example.com", "a long password")
	if status, body := call(t, "POST", p.Base+"/api/tasks", token, map[string]any{"title": "issuer is back"}); status != http.StatusCreated {
		t.Errorf("create after the issuer came back: %d %v", status, body)
	}
}
