package http_test

import (
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	todo "github.com/todo-api/todo-api"
	todohttp "github.com/todo-api/todo-api/http"
)

func TestRateLimitPerUser(t *testing.T) {
	t.Parallel()
	ts := MustServe(t, "sqlite", func(c *todohttp.Config) { c.RateLimitUser, c.BurstUser = 0.5, 3 })
	busy, calm := ts.MustToken(t, "busy"), ts.MustToken(t, "calm")
	for range 3 {
		wantStatus(t, ts.Do(t, request{Method: "GET", Path: "/api/tasks", Token: busy}), http.StatusOK)
	}
	resp := ts.Do(t, request{Method: "GET", Path: "/api/tasks", Token: busy})
	wantError(t, resp, http.StatusTooManyRequests, todo.ERATELIMITED)
	if after, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || after < 1 || after > 2 {
		t.Errorf("Retry-After = %q, want 1 or 2 seconds", resp.Header.Get("Retry-After"))
	}
	// Same client address, another user: limited per user only, as a
	// frontend server calling for all its users would be.
	for range 3 {
		wantStatus(t, ts.Do(t, request{Method: "GET", Path: "/api/tasks", Token: calm}), http.StatusOK)
	}
	// Unauthenticated probes are never limited.
	for range 10 {
		wantStatus(t, ts.Do(t, request{Method: "GET", Path: "/health"}), http.StatusOK)
	}
}

func TestRateLimitPerIPOnLogin(t *testing.T) {
	t.Parallel()
	loopback := netip.MustParsePrefix("127.0.0.1/32")
	ts := MustServe(t, "sqlite", func(c *todohttp.Config) {
		c.RateLimitIP, c.BurstIP = 0.5, 2
		c.TrustedProxies = []netip.Prefix{loopback}
	})
	login := func(forwardedFor string) *response {
		h := map[string]string{}
		if forwardedFor != "" {
			h["X-Forwarded-For"] = forwardedFor
		}
		return ts.Do(t, request{Method: "POST", Path: "/api/auth/login", Body: map[string]any{"email": "x@example.com", "password": "guess123"}, Header: h})
	}
	wantStatus(t, login("203.0.113.1"), http.StatusUnauthorized)
	wantStatus(t, login("203.0.113.1"), http.StatusUnauthorized)
	wantError(t, login("203.0.113.1"), http.StatusTooManyRequests, todo.ERATELIMITED)
	// The trusted proxy forwards for someone else: a bucket of their own.
	// What the client itself claims (the left entry) is not believed.
	wantStatus(t, login("203.0.113.1, 198.51.100.7"), http.StatusUnauthorized)
	wantError(t, login("198.51.100.8, 203.0.113.1"), http.StatusTooManyRequests, todo.ERATELIMITED)
	// Authenticated routes are not limited per IP.
	token := ts.MustToken(t, "same-ip")
	for range 5 {
		wantStatus(t, ts.Do(t, request{Method: "GET", Path: "/api/tasks", Token: token, Header: map[string]string{"X-Forwarded-For": "203.0.113.1"}}), http.StatusOK)
	}
}

func TestForwardedForIgnoredFromUntrustedPeers(t *testing.T) {
	t.Parallel()
	ts := MustServe(t, "sqlite", func(c *todohttp.Config) { c.RateLimitIP, c.BurstIP = 0.5, 2 })
	for i := range 2 {
		resp := ts.Do(t, request{Method: "POST", Path: "/api/auth/login", Body: map[string]any{"email": "x@example.com", "password": "guess123"},
			Header: map[string]string{"X-Forwarded-For": "198.51.100." + strconv.Itoa(i)}})
		wantStatus(t, resp, http.StatusUnauthorized)
	}
	// A client cannot dodge the limit by inventing addresses.
	resp := ts.Do(t, request{Method: "POST", Path: "/api/auth/login", Body: map[string]any{"email": "x@example.com", "password": "guess123"},
		Header: map[string]string{"X-Forwarded-For": "198.51.100.99"}})
	wantError(t, resp, http.StatusTooManyRequests, todo.ERATELIMITED)
}

func TestShedLoad(t *testing.T) {
	t.Parallel()
	ts := MustServe(t, "sqlite", func(c *todohttp.Config) { c.MaxInFlight = 1 })
	token := ts.MustToken(t, "shed")
	// A request whose body arrives slowly holds the only slot.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", ts.URL+"/api/tasks", pr)
	req.Header.Set("Authorization", "Bearer "+token)
	slow := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	pw.Write([]byte(`{"title": "sl`))
	deadline := time.Now().Add(5 * time.Second)
	var shed *response
	for time.Now().Before(deadline) {
		shed = ts.Do(t, request{Method: "GET", Path: "/api/tasks", Token: token})
		if shed.Status == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantError(t, shed, http.StatusServiceUnavailable, todo.EUNAVAILABLE)
	if shed.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	wantStatus(t, ts.Do(t, request{Method: "GET", Path: "/health"}), http.StatusOK)
	pw.Write([]byte(`ow"}`))
	pw.Close()
	if status := <-slow; status != http.StatusCreated {
		t.Errorf("slow request: status %d", status)
	}
	wantStatus(t, ts.Do(t, request{Method: "GET", Path: "/api/tasks", Token: token}), http.StatusOK)
}

func TestLongURL(t *testing.T) {
	t.Parallel()
	ts := MustServe(t, "sqlite", nil)
	resp := ts.Do(t, request{Method: "GET", Path: "/api/tasks?q=" + url.QueryEscape(strings.Repeat("x", 9000)), Token: ts.MustToken(t, "u")})
	wantError(t, resp, http.StatusRequestURITooLong, todo.EURITOOLONG)
}
