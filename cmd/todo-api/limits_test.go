package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestDefaultRateLimits checks the limits are on with no configuration:
// login is limited per client IP (5/s, burst 20) and task routes per user
// (20/s, burst 100), each answered 429 with Retry-After.
func TestDefaultRateLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"BCRYPT_COST": "4"}
	p := startProcess(t, dir, env)
	p.WaitReady(t)

	burst := func(n int, do func() *http.Response) (limited int, retryAfter string) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp := do()
				resp.Body.Close()
				if resp.StatusCode == http.StatusTooManyRequests {
					mu.Lock()
					limited++
					retryAfter = resp.Header.Get("Retry-After")
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return limited, retryAfter
	}
	post := func(url, token, body string) *http.Response {
		req, _ := http.NewRequest("POST", url, stringsReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return &http.Response{Body: http.NoBody}
		}
		return resp
	}

	limited, retry := burst(40, func() *http.Response {
		return post(p.Base+"/api/auth/login", "", `{"email":"guess@example.com","password":"guess1234"}`)
	})
	if limited < 10 || retry == "" {
		t.Errorf("40 logins at once: %d limited (Retry-After %q), want at least 10 past the burst of 20", limited, retry)
	}

	token := processToken(t, dir, env, "eager")
	limited, retry = burst(150, func() *http.Response {
		req, _ := http.NewRequest("GET", p.Base+"/api/tasks", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return &http.Response{Body: http.NoBody}
		}
		return resp
	})
	// 150 - burst 100 - 20/s refill over up to 2 s of a loaded machine.
	if limited < 10 || retry == "" {
		t.Errorf("150 task requests at once: %d limited (Retry-After %q), want at least 10 past the burst of 100", limited, retry)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
