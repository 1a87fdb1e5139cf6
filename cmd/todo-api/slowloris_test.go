package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests in this file play hostile clients against the real binary:
// connections that trickle their headers or body, connections that say
// nothing, and requests past the size limits.
//
// The server's timeouts are long in production (5 s for headers, 30 s for
// a request), so these tests shorten them through READ_HEADER_TIMEOUT and
// READ_TIMEOUT, durations like the other *_TIMEOUT variables.

// hostileEnv is the environment of the tests below: short read timeouts.
func hostileEnv(dir string) map[string]string {
	return map[string]string{
		"DATABASE_URL":        "sqlite:" + dir + "/todo.db",
		"JWT_SECRET":          durableSecret,
		"READ_HEADER_TIMEOUT": "1s",
		"READ_TIMEOUT":        "2s",
		"RATE_LIMIT_IP":       "0",
		"MAX_BODY_BYTES":      "4096",
		"LOG_LEVEL":           "warn",
	}
}

// dial opens a raw connection to the process.
func dial(tb testing.TB, p *process) net.Conn {
	tb.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.Base, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// trickle writes data one byte every interval until it is all sent, the
// connection fails, or stop is closed.
func trickle(conn net.Conn, data string, interval time.Duration, stop <-chan struct{}) {
	for i := 0; i < len(data); i++ {
		if _, err := conn.Write([]byte{data[i]}); err != nil {
			return
		}
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
	}
}

// readUntilClosed reads from conn until the server closes it or limit
// passes, and returns what it read and when the connection ended (zero if
// it did not).
func readUntilClosed(conn net.Conn, limit time.Duration) ([]byte, time.Time) {
	conn.SetReadDeadline(time.Now().Add(limit))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				return got, time.Time{}
			}
			return got, time.Now()
		}
	}
}

// TestSlowHeadersAreCutOff: a client that sends its headers a byte at a
// time, never finishing, is disconnected once READ_HEADER_TIMEOUT has
// passed since it connected, however steadily the bytes come.
func TestSlowHeadersAreCutOff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startProcess(t, dir, hostileEnv(dir))
	p.WaitHealthy(t)

	conn := dial(t, p)
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go trickle(conn, "GET /health HTTP/1.1\r\nHost: todo\r\nX-Slow: "+strings.Repeat("s", 100), 200*time.Millisecond, stop)
	got, closed := readUntilClosed(conn, 4*time.Second)
	if closed.IsZero() {
		t.Fatalf("a client trickling its headers is still connected after %v; READ_HEADER_TIMEOUT=1s should have cut it", time.Since(start).Round(time.Millisecond))
	}
	if elapsed := closed.Sub(start); elapsed < 900*time.Millisecond || elapsed > 2500*time.Millisecond {
		t.Errorf("cut off after %v, want about READ_HEADER_TIMEOUT=1s", elapsed)
	}
	if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 4") {
		t.Errorf("the server answered the unfinished request: %q", got)
	}
}

// TestSlowBodyIsCutOff: a client that sends its headers at once and its
// body a byte at a time is stopped at READ_TIMEOUT, answered (if at all)
// with a 4xx error, and disconnected.
func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startProcess(t, dir, hostileEnv(dir))
	p.WaitHealthy(t)

	body := `{"email":"slow@example.com","password":"` + strings.Repeat("p", 60) + `"}`
	conn := dial(t, p)
	start := time.Now()
	fmt.Fprintf(conn, "POST /api/auth/login HTTP/1.1\r\nHost: todo\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	stop := make(chan struct{})
	defer close(stop)
	go trickle(conn, body, 200*time.Millisecond, stop)
	got, closed := readUntilClosed(conn, 6*time.Second)
	if closed.IsZero() {
		t.Fatalf("a client trickling its body is still connected after %v (got %q); READ_TIMEOUT=2s should have stopped it", time.Since(start).Round(time.Millisecond), got)
	}
	if elapsed := closed.Sub(start); elapsed < 1800*time.Millisecond || elapsed > 3500*time.Millisecond {
		t.Errorf("stopped after %v, want about READ_TIMEOUT=2s", elapsed)
	}
	if len(got) == 0 {
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(got))), nil)
	if err != nil {
		t.Fatalf("unreadable answer %q: %v", got, err)
	}
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Errorf("answered %s, want a 4xx error: the request never arrived whole", resp.Status)
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error.Code == "" {
		t.Errorf("answer is not the contract's JSON error: %q", got)
	}
}

// TestIdleConnectionsDoNotStarveOthers opens hundreds of connections that
// send nothing or half a request head: the server keeps answering
// everyone else at once, and closes the idle ones at READ_HEADER_TIMEOUT.
func TestIdleConnectionsDoNotStarveOthers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startProcess(t, dir, hostileEnv(dir))
	p.WaitHealthy(t)

	const silent, halfOpen = 200, 100
	idle := make([]net.Conn, 0, silent+halfOpen)
	opened := time.Now()
	for i := range silent + halfOpen {
		conn := dial(t, p)
		if i >= silent {
			fmt.Fprintf(conn, "GET /health HTTP/1.1\r\nHost: todo\r\n")
		}
		idle = append(idle, conn)
	}

	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var slowest time.Duration
	for i := range 20 {
		start := time.Now()
		resp, err := client.Get(p.Base + "/health")
		if err != nil {
			t.Fatalf("request %d with %d idle connections open: %v", i, len(idle), err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %s", i, resp.Status)
		}
		slowest = max(slowest, time.Since(start))
	}
	if slowest > 500*time.Millisecond {
		t.Errorf("with %d idle connections the slowest request took %v", len(idle), slowest)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	open := 0
	for _, conn := range idle {
		wg.Go(func() {
			if _, closed := readUntilClosed(conn, time.Until(opened.Add(3*time.Second))); closed.IsZero() {
				mu.Lock()
				open++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if open > 0 {
		t.Errorf("%d of %d idle connections are still open 3 s after they connected; READ_HEADER_TIMEOUT=1s should have closed them", open, len(idle))
	}
}

// rawExchange sends a raw request and reads the response, if one comes.
func rawExchange(tb testing.TB, p *process, request string) (*http.Response, []byte) {
	tb.Helper()
	conn := dial(tb, p)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// The server may answer and close before the request is all written.
	go io.WriteString(conn, request)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("no response to a %d-byte request: %v", len(request), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// wantJSONError fails unless the response is the status with the contract's
// JSON error of the code.
func wantJSONError(tb testing.TB, what string, resp *http.Response, body []byte, status int, code string) {
	tb.Helper()
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if resp.StatusCode != status || json.Unmarshal(body, &e) != nil || e.Error.Code != code {
		tb.Errorf("%s: %s %s, want %d %s", what, resp.Status, body, status, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
}

// TestSizeLimits checks each limit on both sides of its edge: headers
// (64 KiB, Go's server answers 431), the URL (8 KiB, 414 URI_TOO_LONG) and
// the body (MAX_BODY_BYTES, 413 PAYLOAD_TOO_LARGE, with and without a
// Content-Length).
func TestSizeLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := hostileEnv(dir)
	p := startProcess(t, dir, env)
	p.WaitReady(t)
	token := processToken(t, dir, env, "limits")
	auth := "Authorization: Bearer " + token + "\r\n"

	t.Run("headers", func(t *testing.T) {
		resp, _ := rawExchange(t, p, "GET /health HTTP/1.1\r\nHost: todo\r\nX-Pad: "+strings.Repeat("h", 60<<10)+"\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("60 KiB of headers: %s, want 200", resp.Status)
		}
		// Go's server allows MaxHeaderBytes plus 4 KiB of slack.
		resp, _ = rawExchange(t, p, "GET /health HTTP/1.1\r\nHost: todo\r\nX-Pad: "+strings.Repeat("h", 100<<10)+"\r\n\r\n")
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("100 KiB of headers: %s, want 431", resp.Status)
		}
	})

	t.Run("url", func(t *testing.T) {
		target := func(n int) string {
			prefix := "/health?pad="
			return prefix + strings.Repeat("u", n-len(prefix))
		}
		resp, body := rawExchange(t, p, "GET "+target(8<<10)+" HTTP/1.1\r\nHost: todo\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("8192-byte URL: %s %s, want 200", resp.Status, body)
		}
		resp, body = rawExchange(t, p, "GET "+target(8<<10+1)+" HTTP/1.1\r\nHost: todo\r\n\r\n")
		wantJSONError(t, "8193-byte URL", resp, body, http.StatusRequestURITooLong, "URI_TOO_LONG")
		resp, body = rawExchange(t, p, "GET /api/tasks/"+strings.Repeat("9", 60<<10)+" HTTP/1.1\r\nHost: todo\r\n"+auth+"\r\n")
		wantJSONError(t, "60 KiB URL", resp, body, http.StatusRequestURITooLong, "URI_TOO_LONG")
	})

	t.Run("body", func(t *testing.T) {
		// A task body of exactly MAX_BODY_BYTES, padded in the description.
		taskOf := func(size int) string {
			head, tail := `{"title":"at the limit","description":"`, `"}`
			return head + strings.Repeat("d", size-len(head)-len(tail)) + tail
		}
		post := func(body string, chunked bool) (*http.Response, []byte) {
			if chunked {
				return rawExchange(t, p, "POST /api/tasks HTTP/1.1\r\nHost: todo\r\n"+auth+"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+
					fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body))
			}
			return rawExchange(t, p, "POST /api/tasks HTTP/1.1\r\nHost: todo\r\n"+auth+"Content-Type: application/json\r\n"+
				fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
		}
		for _, chunked := range []bool{false, true} {
			what := map[bool]string{false: "with Content-Length", true: "chunked"}[chunked]
			resp, body := post(taskOf(4096), chunked)
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("4096-byte body %s: %s %s, want 201", what, resp.Status, body)
			}
			resp, body = post(taskOf(4097), chunked)
			wantJSONError(t, "4097-byte body "+what, resp, body, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
		}
		form := "username=a%40example.com&password=" + strings.Repeat("p", 5000)
		resp, body := rawExchange(t, p, "POST /api/auth/login HTTP/1.1\r\nHost: todo\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(form), form))
		wantJSONError(t, "5 KB login form", resp, body, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
		// A declared length over the limit is refused before any body is read.
		resp, body = rawExchange(t, p, "POST /api/tasks HTTP/1.1\r\nHost: todo\r\n"+auth+"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{")
		wantJSONError(t, "a declared 1 GB body", resp, body, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
	})
}
