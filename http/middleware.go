package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	todo "github.com/todo-api/todo-api"
)

// requestInfo is what the middleware learns about a request as it passes
// through: one mutable record per request, so that the outer request log
// sees the route and user that inner layers find.
type requestInfo struct {
	id     string
	route  string
	userID string
	base   *slog.Logger
}

// logger returns a logger that tags lines with the request id. It is built
// on demand: most requests never log anything but their summary line.
func (info *requestInfo) logger() *slog.Logger {
	return info.base.With(slog.String("request_id", info.id))
}

type requestInfoKey struct{}

func requestInfoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{base: slog.New(slog.DiscardHandler)}
}

// statusWriter remembers the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	size   int64
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.size += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recoverPanics turns a panic into a 500 INTERNAL with the stack in the log,
// never in the response.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				// Deliberate: abort a response already under way.
				panic(v)
			}
			s.logger.LogAttrs(r.Context(), slog.LevelError, "panic",
				slog.String("request_id", w.Header().Get("X-Request-Id")),
				slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			Error(w, r, fmt.Errorf("panic: %v", v))
		}()
		next.ServeHTTP(w, r)
	})
}

// logRequests gives each request an id (X-Request-ID, echoed when sane) and
// a deadline, then logs one line and records metrics when it is done. It
// never logs headers, so no Authorization header or token can leak.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header()["X-Request-Id"] = []string{id} // the canonical key: no copy of it per request
		info := &requestInfo{id: id, base: s.logger}
		ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), requestInfoKey{}, info), s.cfg.RequestTimeout)
		defer cancel()

		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			route := info.route
			if route == "" {
				route = "unmatched"
			}
			elapsed := time.Since(start)
			s.metrics.observe(r.Method, route, status, elapsed)
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelWarn
			}
			s.logger.LogAttrs(ctx, level, "request",
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Int64("bytes", sw.size),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.String("user", info.userID),
				slog.String("remote", r.RemoteAddr),
			)
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// validRequestID accepts ids a client may choose, short and printable, so
// that they cannot forge log lines.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// secureHeaders sets the headers every response carries. API responses are
// JSON that no browser should sniff, frame or cache.
func (s *Server) secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		headers := apiHeaders
		if strings.HasPrefix(r.URL.Path, "/docs") {
			headers = docsHeaders
		}
		for _, kv := range headers {
			h[kv.key] = kv.value
		}
		next.ServeHTTP(w, r)
	})
}

// constHeader is a header whose value never changes, set by assigning a
// slice made once: Header().Set makes a new one on every call, seven times
// per response. Keys are in canonical form, as Set would make them; the
// shared slices are never written to (Set replaces, Add appends to a copy).
type constHeader struct {
	key   string
	value []string
}

var (
	commonHeaders = []constHeader{
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"X-Frame-Options", []string{"DENY"}},
		{"Referrer-Policy", []string{"no-referrer"}},
		{"Cross-Origin-Resource-Policy", []string{"same-site"}},
	}
	apiHeaders = append(commonHeaders[:len(commonHeaders):len(commonHeaders)],
		constHeader{"Content-Security-Policy", []string{"default-src 'none'; frame-ancestors 'none'"}},
		constHeader{"Cache-Control", []string{"no-store"}},
	)
	docsHeaders = append(commonHeaders[:len(commonHeaders):len(commonHeaders)],
		constHeader{"Content-Security-Policy", []string{"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"}},
	)
	jsonContentType = []string{"application/json"}
)

// limitBody refuses bodies over the limit up front when Content-Length
// says so, and caps the reader for bodies that do not say.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBodyBytes {
			// Let the server close the connection rather than read the body.
			w.Header().Set("Connection", "close")
			Error(w, r, todo.Errorf(todo.EPAYLOADTOOLARGE, "The request body is larger than %d bytes.", s.cfg.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// route records the matched route for logs and metrics; handlers are
// wrapped in it by routes().
func route(pattern string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requestInfoFrom(r.Context()).route = pattern
		next.ServeHTTP(w, r)
	})
}

// requireAuth checks the bearer token, makes sure its user has a row, and
// puts the identity in the context. Anything else is 401 with a
// WWW-Authenticate challenge.
func (s *Server) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="todo-api"`)
			Error(w, r, todo.Errorf(todo.EUNAUTHORIZED, "A bearer token is required."))
			return
		}
		id, err := s.cfg.Tokens.VerifyToken(r.Context(), token)
		if err != nil {
			if todo.ErrorCode(err) == todo.EUNAUTHORIZED {
				w.Header().Set("WWW-Authenticate", `Bearer realm="todo-api", error="invalid_token"`)
			}
			Error(w, r, err)
			return
		}
		id.Normalize()
		if err := s.users.ensure(r.Context(), s.cfg.Users, id); err != nil {
			Error(w, r, err)
			return
		}
		requestInfoFrom(r.Context()).userID = id.UserID
		if s.userLimiter != nil {
			if ok, delay := s.userLimiter.allow(id.UserID, time.Now()); !ok {
				s.metrics.limited.WithLabelValues("user").Inc()
				tooManyRequests(w, r, delay)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(todo.NewContextWithIdentity(r.Context(), id)))
	})
}

// bearerToken extracts the token from an Authorization header; the scheme
// is case-insensitive.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// identity returns the caller's identity; requireAuth guarantees it.
func identity(r *http.Request) todo.Identity {
	id, _ := todo.IdentityFromContext(r.Context())
	return id
}
