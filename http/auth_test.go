package http_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
	todo "github.com/todo-api/todo-api"
	todohttp "github.com/todo-api/todo-api/http"
	"golang.org/x/crypto/bcrypt"
)

func TestBearerTokens(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		valid := ts.MustToken(t, "holder")
		for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
			resp := ts.Do(t, request{Method: "GET", Path: "/api/tasks", Header: map[string]string{"Authorization": scheme + " " + valid}})
			wantStatus(t, resp, http.StatusOK)
		}

		now := time.Now()
		sign := func(claims jwtlib.MapClaims, key string) string {
			s, err := jwtlib.NewWithClaims(jwtlib.SigningMethodHS256, claims).SignedString([]byte(key))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		parts := strings.Split(valid, ".")
		tamperedPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","exp":9999999999}`))
		noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		_, edKey, _ := ed25519.GenerateKey(rand.Reader)
		edToken, _ := jwtlib.NewWithClaims(jwtlib.SigningMethodEdDSA, jwtlib.MapClaims{"sub": "holder", "exp": now.Add(time.Hour).Unix()}).SignedString(edKey)

		bad := map[string]string{
			"missing":            "",
			"basic scheme":       "Basic dXNlcjpwYXNz",
			"empty bearer":       "Bearer ",
			"garbage":            "Bearer not.a.jwt",
			"expired":            "Bearer " + sign(jwtlib.MapClaims{"sub": "holder", "exp": now.Add(-2 * time.Minute).Unix()}, testSecret),
			"no exp":             "Bearer " + sign(jwtlib.MapClaims{"sub": "holder"}, testSecret),
			"not yet valid":      "Bearer " + sign(jwtlib.MapClaims{"sub": "holder", "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(10 * time.Minute).Unix()}, testSecret),
			"other secret":       "Bearer " + sign(jwtlib.MapClaims{"sub": "holder", "exp": now.Add(time.Hour).Unix()}, "another-secret-that-is-32-bytes-or-more"),
			"tampered payload":   "Bearer " + parts[0] + "." + tamperedPayload + "." + parts[2],
			"tampered signature": "Bearer " + parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
			"alg none":           "Bearer " + noneHeader + "." + parts[1] + ".",
			"no subject":         "Bearer " + sign(jwtlib.MapClaims{"exp": now.Add(time.Hour).Unix()}, testSecret),
			"EdDSA unknown key":  "Bearer " + edToken,
		}
		for name, header := range bad {
			resp := ts.Do(t, request{Method: "GET", Path: "/api/tasks", Header: map[string]string{"Authorization": header}})
			if resp.Status != http.StatusUnauthorized {
				t.Errorf("%s: status %d, want 401", name, resp.Status)
				continue
			}
			wantError(t, resp, http.StatusUnauthorized, todo.EUNAUTHORIZED)
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate = %q", name, resp.Header.Get("WWW-Authenticate"))
			}
		}

		// user_id is the subject only when sub is absent.
		fallback := sign(jwtlib.MapClaims{"user_id": "via-user-id", "exp": now.Add(time.Hour).Unix()}, testSecret)
		task := ts.MustCreateTask(t, fallback, map[string]any{"title": "x"})
		if task.UserID != "via-user-id" {
			t.Errorf("user_id claim: task owner %q", task.UserID)
		}
	})
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		resp := ts.Do(t, request{Method: "POST", Path: "/api/auth/register", Body: map[string]any{"email": " Ada@Example.com ", "password": "correct horse", "name": "Ada"}})
		wantStatus(t, resp, http.StatusCreated)
		body := resp.JSON(t)
		if body["token_type"] != "bearer" || body["access_token"] == "" || body["expires_in"].(float64) != 3600 {
			t.Errorf("register body: %s", resp.Body)
		}
		user := body["user"].(map[string]any)
		if user["email"] != "ada@example.com" || user["name"] != "Ada" || user["id"] == "" {
			t.Errorf("register user: %v", user)
		}
		for _, secret := range []string{"correct horse", "$2a$", "password_hash"} {
			if strings.Contains(string(resp.Body), secret) {
				t.Errorf("register response leaks %q", secret)
			}
		}
		token := body["access_token"].(string)

		me := ts.Do(t, request{Method: "GET", Path: "/api/auth/me", Token: token})
		wantStatus(t, me, http.StatusOK)
		if got := me.JSON(t); got["id"] != user["id"] || got["email"] != "ada@example.com" || got["created_at"] == nil {
			t.Errorf("me: %s", me.Body)
		}
		ts.MustCreateTask(t, token, map[string]any{"title": "registered users have tasks"})

		wantError(t, ts.Do(t, request{Method: "POST", Path: "/api/auth/register", Body: map[string]any{"email": "ADA@example.com", "password": "another one"}}), http.StatusConflict, todo.EEMAILTAKEN)

		for name, body := range map[string]any{
			"bad email":          map[string]any{"email": "not-an-email", "password": "long enough"},
			"display name email": map[string]any{"email": "Ada <x@example.com>", "password": "long enough"},
			"short password":     map[string]any{"email": "b@example.com", "password": "1234567"},
			"73-byte password":   map[string]any{"email": "b@example.com", "password": strings.Repeat("p", 73)},
			"missing password":   map[string]any{"email": "b@example.com"},
			"missing email":      map[string]any{"password": "long enough"},
		} {
			resp := ts.Do(t, request{Method: "POST", Path: "/api/auth/register", Body: body})
			if resp.Status != http.StatusBadRequest {
				t.Errorf("%s: status %d", name, resp.Status)
				continue
			}
			wantError(t, resp, http.StatusBadRequest, todo.EVALIDATION)
		}
		wantStatus(t, ts.Do(t, request{Method: "POST", Path: "/api/auth/register", Body: map[string]any{"email": "c@example.com", "password": strings.Repeat("p", 72)}}), http.StatusCreated)

		login := ts.Do(t, request{Method: "POST", Path: "/api/auth/login", Body: map[string]any{"email": "ada@EXAMPLE.com", "password": "correct horse"}})
		wantStatus(t, login, http.StatusOK)
		if login.JSON(t)["user"].(map[string]any)["id"] != user["id"] {
			t.Errorf("login user: %s", login.Body)
		}
		form := url.Values{"grant_type": {"password"}, "username": {"ada@example.com"}, "password": {"correct horse"}}.Encode()
		formLogin := ts.Do(t, request{Method: "POST", Path: "/api/auth/login", Body: form, Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
		wantStatus(t, formLogin, http.StatusOK)
		wantStatus(t, ts.Do(t, request{Method: "GET", Path: "/api/auth/me", Token: formLogin.JSON(t)["access_token"].(string)}), http.StatusOK)

		wrongPassword := ts.Do(t, request{Method: "POST", Path: "/api/auth/login", Body: map[string]any{"email": "ada@example.com", "password": "wrong horse"}})
		unknownEmail := ts.Do(t, request{Method: "POST", Path: "/api/auth/login", Body: map[string]any{"email": "nobody@example.com", "password": "correct horse"}})
		wantError(t, wrongPassword, http.StatusUnauthorized, todo.EINVALIDCREDENTIALS)
		wantError(t, unknownEmail, http.StatusUnauthorized, todo.EINVALIDCREDENTIALS)
		if a, b := wrongPassword.JSON(t)["error"], unknownEmail.JSON(t)["error"]; a.(map[string]any)["message"] != b.(map[string]any)["message"] {
			t.Errorf("login messages differ: %v vs %v", a, b)
		}
		wantError(t, ts.Do(t, request{Method: "POST", Path: "/api/auth/login", Body: map[string]any{"email": "a\u0000@example.com", "password": "x"}}), http.StatusUnauthorized, todo.EINVALIDCREDENTIALS)
		wantError(t, ts.Do(t, request{Method: "POST", Path: "/api/auth/login", Body: map[string]any{"email": "ada@example.com"}}), http.StatusBadRequest, todo.EVALIDATION)
		wantError(t, ts.Do(t, request{Method: "POST", Path: "/api/auth/login", Body: "email=a", Header: map[string]string{"Content-Type": "text/plain"}}), http.StatusUnsupportedMediaType, todo.EUNSUPPORTEDMEDIA)

		wantError(t, ts.Do(t, request{Method: "GET", Path: "/api/auth/me"}), http.StatusUnauthorized, todo.EUNAUTHORIZED)
	})
}

// A subject first seen through a token gets a users row at once: its tasks
// work and /me answers.
func TestTokenUserNeedsNoRegistration(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, ts *testServer) {
		token, _, err := ts.tokens.IssueToken(todo.Identity{UserID: "external|42", Email: "ext@example.com", Name: "Ext"})
		if err != nil {
			t.Fatal(err)
		}
		ts.MustCreateTask(t, token, map[string]any{"title": "first sight"})
		me := ts.Do(t, request{Method: "GET", Path: "/api/auth/me", Token: token})
		wantStatus(t, me, http.StatusOK)
		if got := me.JSON(t); got["id"] != "external|42" || got["email"] != "ext@example.com" || got["name"] != "Ext" {
			t.Errorf("me: %s", me.Body)
		}
	})
}

// Raising BCRYPT_COST re-hashes an account's password at its next login.
func TestLoginRehashesAtNewCost(t *testing.T) {
	t.Parallel()
	ts := MustServe(t, "sqlite", func(c *todohttp.Config) { c.BcryptCost = 5 })
	old, err := bcrypt.GenerateFromPassword([]byte("correct horse"), 4)
	if err != nil {
		t.Fatal(err)
	}
	email := "old@example.com"
	if err := ts.users.CreateUser(context.Background(), &todo.User{Email: &email, PasswordHash: old}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		wantStatus(t, ts.Do(t, request{Method: "POST", Path: "/api/auth/login", Body: map[string]any{"email": email, "password": "correct horse"}}), http.StatusOK)
	}
	u, err := ts.users.FindUserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost(u.PasswordHash); err != nil || cost != 5 {
		t.Errorf("hash cost after login = %d (%v), want 5", cost, err)
	}
}
