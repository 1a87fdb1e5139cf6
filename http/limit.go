package http

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	todo "github.com/todo-api/todo-api"
	"golang.org/x/time/rate"
)

// rateLimiter keeps one token bucket per key (a user id or a client IP).
// Buckets idle long enough to have refilled are dropped, so memory follows
// the number of active clients, not of all clients ever seen.
type rateLimiter struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	limiter *rate.Limiter
	seen    time.Time
}

// newRateLimiter returns a limiter of perSecond with the given burst, or
// nil when perSecond is 0 (off).
func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	return &rateLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: make(map[string]*bucket)}
}

// allow takes a token for key; when none is left it returns how long until one is.
func (l *rateLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{limiter: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	if now.Sub(l.lastSweep) > time.Minute {
		l.sweep(now)
	}
	r := b.limiter.ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		return false, delay
	}
	return true, 0
}

// sweep drops buckets that have been idle long enough to be full again.
func (l *rateLimiter) sweep(now time.Time) {
	refill := time.Duration(float64(l.burst)/float64(l.limit)*float64(time.Second)) + time.Second
	for k, b := range l.buckets {
		if now.Sub(b.seen) > refill {
			delete(l.buckets, k)
		}
	}
	l.lastSweep = now
}

// tooManyRequests writes 429 RATE_LIMITED with Retry-After in whole seconds.
func tooManyRequests(w http.ResponseWriter, r *http.Request, delay time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(delay.Seconds())))))
	Error(w, r, todo.Errorf(todo.ERATELIMITED, "Too many requests; retry later."))
}

// limitByIP applies the per-client-IP limit to unauthenticated routes that
// are worth guessing at: login and register.
func (s *Server) limitByIP(next http.Handler) http.Handler {
	if s.ipLimiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, delay := s.ipLimiter.allow(s.clientIP(r), time.Now()); !ok {
			s.metrics.limited.WithLabelValues("ip").Inc()
			tooManyRequests(w, r, delay)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientIP is the connection's peer address, or — only when that peer is
// a trusted proxy — the nearest untrusted address in X-Forwarded-For.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		addr, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			// A garbled entry ends what we can believe.
			break
		}
		if !s.trusted(addr) {
			return addr.Unmap().String()
		}
		peer = addr
	}
	return peer.Unmap().String()
}

func (s *Server) trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// shedLoad bounds the requests in flight on /api/: past the bound it
// answers 503 at once rather than queue work that would exhaust memory or
// the database pool. Probes and docs are never shed.
func (s *Server) shedLoad(next http.Handler) http.Handler {
	if s.cfg.MaxInFlight <= 0 {
		return next
	}
	slots := make(chan struct{}, s.cfg.MaxInFlight)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			next.ServeHTTP(w, r)
		default:
			s.metrics.shed.Inc()
			w.Header().Set("Retry-After", "1")
			Error(w, r, todo.Errorf(todo.EUNAVAILABLE, "The server is busy; retry shortly."))
		}
	})
}

// limitURL refuses request targets longer than the limit.
func (s *Server) limitURL(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.RequestURI) > maxURLLength {
			Error(w, r, todo.Errorf(todo.EURITOOLONG, "The URL is longer than %d bytes.", maxURLLength))
			return
		}
		next.ServeHTTP(w, r)
	})
}

const maxURLLength = 8 << 10
