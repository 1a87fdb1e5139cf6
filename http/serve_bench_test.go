package http_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// discardWriter is the cheapest ResponseWriter: it keeps the status and
// the byte count, so the benchmarks measure the handler and its
// middleware, not a recorder.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}
func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(b)
	return len(b), nil
}

func (w *discardWriter) reset() {
	clear(w.header)
	w.status, w.n = 0, 0
}

// BenchmarkHandler measures one request through the whole handler stack
// (request id, log line, metrics, security headers, limits, token check,
// store, encoding) without the network, on each engine, with allocations:
//
//	go test ./http -run '^$' -bench Handler -benchmem
func BenchmarkHandler(b *testing.B) {
	for _, engine := range engines {
		b.Run(engine, func(b *testing.B) {
			ts := MustServe(b, engine, nil)
			h := ts.Config.Handler
			token := ts.MustToken(b, "bench-user")
			auth := "Bearer " + token
			var ids []string
			for i := range 50 {
				ids = append(ids, ts.MustCreateTask(b, token, map[string]any{"title": fmt.Sprintf("task %d", i), "description": "a description"}).ID)
			}
			w := &discardWriter{header: http.Header{}}
			serve := func(b *testing.B, method, path, body string, want int) {
				var r io.Reader
				if body != "" {
					r = strings.NewReader(body)
				}
				req, err := http.NewRequest(method, path, r)
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Authorization", auth)
				if body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				req.RemoteAddr = "127.0.0.1:40000"
				w.reset()
				h.ServeHTTP(w, req)
				if w.status != want {
					b.Fatalf("%s %s: status %d, want %d", method, path, w.status, want)
				}
			}
			b.Run("list50", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					serve(b, "GET", "/api/tasks", "", http.StatusOK)
				}
				if w.n < 50*100 {
					b.Fatalf("the list was %d bytes", w.n)
				}
			})
			b.Run("get", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					serve(b, "GET", "/api/tasks/"+ids[7], "", http.StatusOK)
				}
			})
			b.Run("toggle", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					serve(b, "PATCH", "/api/tasks/"+ids[3]+"/toggle", "", http.StatusOK)
				}
			})
			b.Run("create", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					serve(b, "POST", "/api/tasks", `{"title":"created","description":"by the benchmark"}`, http.StatusCreated)
				}
			})
		})
	}
}
