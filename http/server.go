// Package http serves todo-api's HTTP contract over the domain's services:
// routes, handlers, middleware, the single error writer, the OpenAPI document
// and the embedded docs page.
package http

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	todo "github.com/todo-api/todo-api"
)

// Config holds the server's dependencies and settings.
type Config struct {
	Tasks  todo.TaskService
	Users  todo.UserService
	Tokens todo.TokenVerifier
	// Issuer mints tokens for the built-in accounts; nil turns
	// /api/auth/register and /api/auth/login off (404).
	Issuer todo.TokenIssuer
	// Ready reports whether the database and token sources are usable.
	Ready func(ctx context.Context) error
	// Available, when set, gates every /api/ route: while it returns an
	// error (say, migrations not applied yet) they answer 503.
	Available func() error

	Logger   *slog.Logger
	Registry *prometheus.Registry // nil = a fresh registry

	CORSOrigins    []string      // allowed origins; "*" allows any
	MaxBodyBytes   int64         // default 1 MiB
	RequestTimeout time.Duration // deadline for each request's work; default 10 s
	BcryptCost     int           // default bcrypt.DefaultCost

	// Rate limits, in requests per second with the given bursts; 0 is off.
	// Authenticated routes are limited per user only, so a frontend server
	// calling for all its users from one address is not throttled as one;
	// login and register are limited per client IP.
	RateLimitUser, RateLimitIP float64
	BurstUser, BurstIP         int
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// MaxInFlight bounds concurrent /api/ requests; past it they get 503.
	// 0 is no bound.
	MaxInFlight int
}

// Server is todo-api's HTTP handler.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	main    *http.ServeMux
	compat  *http.ServeMux
	handler http.Handler
	metrics *metrics
	users   *seenUsers
	cors    *cors

	userLimiter *rateLimiter
	ipLimiter   *rateLimiter
}

// NewServer returns the handler that serves the whole contract.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Ready == nil {
		cfg.Ready = func(context.Context) error { return nil }
	}
	s := &Server{
		cfg:     cfg,
		logger:  cfg.Logger,
		main:    http.NewServeMux(),
		compat:  http.NewServeMux(),
		metrics: newMetrics(cfg.Registry),
		users:   newSeenUsers(100_000),
		cors:    newCORS(cfg.CORSOrigins),

		userLimiter: newRateLimiter(cfg.RateLimitUser, cfg.BurstUser),
		ipLimiter:   newRateLimiter(cfg.RateLimitIP, cfg.BurstIP),
	}
	for _, rt := range s.routes() {
		mux := s.main
		if rt.compat {
			mux = s.compat
		}
		mux.Handle(rt.pattern, rt.handler)
	}
	// Built inside out: a request meets recoverPanics first, dispatch last.
	var h http.Handler = http.HandlerFunc(s.dispatch)
	h = s.limitBody(h)
	h = s.shedLoad(h)
	h = s.limitURL(h)
	h = s.cors.handle(h)
	h = s.secureHeaders(h)
	h = s.logRequests(h)
	s.handler = s.recoverPanics(h)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// dispatch routes a request to the main mux or, for the /api/{user_id}/…
// compatibility routes, to the second mux: one Go mux cannot hold both
// GET /api/tasks/{id} and GET /api/{user_id}/tasks. The main mux wins when
// both match. The muxes' own 404 and 405 are plain text, so unmatched
// requests get the contract's JSON errors instead.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	// The mux would redirect unclean paths (//, /./, /../) with an HTML
	// body; no route of ours is spelled that way.
	if !cleanPath(r.URL.Path) {
		Error(w, r, todo.Errorf(todo.ENOTFOUND, "No route matches %s %s.", r.Method, r.URL.Path))
		return
	}
	if s.cfg.Available != nil && strings.HasPrefix(r.URL.Path, "/api/") {
		if err := s.cfg.Available(); err != nil {
			Error(w, r, err)
			return
		}
	}
	if _, pattern := s.main.Handler(r); pattern != "" {
		s.main.ServeHTTP(w, r)
		return
	}
	if _, pattern := s.compat.Handler(r); pattern != "" {
		s.compat.ServeHTTP(w, r)
		return
	}
	for _, mux := range []*http.ServeMux{s.main, s.compat} {
		if allow := allowedMethods(mux, r); allow != "" {
			w.Header().Set("Allow", allow)
			Error(w, r, todo.Errorf(todo.EMETHODNOTALLOWED, "Method %s is not allowed here.", r.Method))
			return
		}
	}
	Error(w, r, todo.Errorf(todo.ENOTFOUND, "No route matches %s %s.", r.Method, r.URL.Path))
}

// cleanPath reports whether p is already in the form path.Clean gives
// (keeping a trailing slash).
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// allowedMethods returns the Allow header the mux would send for a path
// that exists under other methods, or "".
func allowedMethods(mux *http.ServeMux, r *http.Request) string {
	h, _ := mux.Handler(r)
	rec := &headerRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status != http.StatusMethodNotAllowed {
		return ""
	}
	return rec.header.Get("Allow")
}

// headerRecorder captures a status and headers and discards the body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(status int)      { h.status = status }
