package main

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
)

// config is everything the environment (and .env) can set.
type config struct {
	Addr string

	Engine   string // "sqlite" or "postgres"
	DBPath   string // SQLite file
	DBURL    string // PostgreSQL URL
	DBSource string // DATABASE_URL as given, for messages (password masked)

	JWTSecret   string
	JWKSURL     string
	Issuers     []string
	Audiences   []string
	TokenTTL    time.Duration
	CORSOrigins []string

	RequestTimeout    time.Duration
	ShutdownTimeout   time.Duration
	ShutdownDelay     time.Duration
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	MaxBodyBytes      int64
	MaxTasksPerUser   int
	BcryptCost        int

	RateLimitUser  float64 // per second; burst is 5× this
	RateLimitIP    float64 // per second; burst is 4× this
	TrustedProxies []netip.Prefix
	MaxInFlight    int

	LogLevel  string
	LogFormat string
	// LogFlushInterval is how long info lines may wait in memory before
	// they are written; 0 writes each line at once.
	LogFlushInterval time.Duration

	// PprofAddr, when set, serves net/http/pprof there (keep it on loopback).
	PprofAddr string
	// MemoryLimitSet is true when GOMEMLIMIT is set (the runtime reads it).
	MemoryLimitSet bool
}

// envWithDotEnv wraps getenv so that values from a .env file in the working
// directory fill in what the real environment leaves unset.
func envWithDotEnv(getenv func(string) string) (func(string) string, error) {
	values, err := godotenv.Read(".env")
	if errors.Is(err, os.ErrNotExist) {
		return getenv, nil
	} else if err != nil {
		return nil, fmt.Errorf("read .env: %w", err)
	}
	return func(key string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return values[key]
	}, nil
}

// loadConfig reads the configuration; every problem is reported at once.
func loadConfig(getenv func(string) string) (*config, error) {
	var errs []error
	c := &config{
		JWTSecret: firstSet(getenv, "JWT_SECRET", "BETTER_AUTH_SECRET"),
		JWKSURL:   strings.TrimSpace(getenv("JWKS_URL")),
		Issuers:   splitList(getenv("JWT_ISSUER")),
		Audiences: splitList(getenv("JWT_AUDIENCE")),
		LogLevel:  strings.ToLower(orDefault(getenv("LOG_LEVEL"), "info")),
		LogFormat: strings.ToLower(orDefault(getenv("LOG_FORMAT"), "json")),
		PprofAddr: strings.TrimSpace(getenv("PPROF_ADDR")),

		MemoryLimitSet: getenv("GOMEMLIMIT") != "",
	}
	origins := getenv("CORS_ORIGINS")
	if origins == "" {
		origins = getenv("FRONTEND_URL")
	}
	c.CORSOrigins = splitList(origins)

	host := orDefault(getenv("HOST"), "0.0.0.0")
	port := orDefault(getenv("PORT"), "8000")
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		errs = append(errs, fmt.Errorf("PORT=%q: want a port number", port))
	}
	c.Addr = joinHostPort(host, port)

	if err := c.parseDatabaseURL(getenv("DATABASE_URL")); err != nil {
		errs = append(errs, err)
	}

	hours := orDefault(getenv("JWT_EXPIRATION_HOURS"), "24")
	if h, err := strconv.ParseFloat(hours, 64); err != nil || h <= 0 || h > 24*365 {
		errs = append(errs, fmt.Errorf("JWT_EXPIRATION_HOURS=%q: want a positive number of hours", hours))
	} else {
		c.TokenTTL = time.Duration(h * float64(time.Hour))
	}
	c.RequestTimeout = durationVar(getenv, "REQUEST_TIMEOUT", 10*time.Second, &errs)
	c.ShutdownTimeout = durationVar(getenv, "SHUTDOWN_TIMEOUT", 20*time.Second, &errs)
	if v := getenv("SHUTDOWN_DELAY"); v != "" && v != "0" {
		c.ShutdownDelay = durationVar(getenv, "SHUTDOWN_DELAY", 0, &errs)
	}
	c.LogFlushInterval = 100 * time.Millisecond
	if v := getenv("LOG_FLUSH_INTERVAL"); v == "0" {
		c.LogFlushInterval = 0
	} else {
		c.LogFlushInterval = durationVar(getenv, "LOG_FLUSH_INTERVAL", c.LogFlushInterval, &errs)
	}
	c.ReadHeaderTimeout = durationVar(getenv, "READ_HEADER_TIMEOUT", 5*time.Second, &errs)
	c.ReadTimeout = durationVar(getenv, "READ_TIMEOUT", 30*time.Second, &errs)
	c.MaxBodyBytes = int64(intVar(getenv, "MAX_BODY_BYTES", 1<<20, 1024, 1<<30, &errs))
	c.MaxTasksPerUser = intVar(getenv, "MAX_TASKS_PER_USER", 10_000, 0, 1<<31-1, &errs)
	c.BcryptCost = intVar(getenv, "BCRYPT_COST", 10, 4, 16, &errs)

	c.RateLimitUser = rateVar(getenv, "RATE_LIMIT_USER", 20, &errs)
	c.RateLimitIP = rateVar(getenv, "RATE_LIMIT_IP", 5, &errs)
	c.MaxInFlight = intVar(getenv, "MAX_IN_FLIGHT", 1024, 0, 1<<20, &errs)
	for _, p := range splitList(getenv("TRUSTED_PROXIES")) {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, addrErr := netip.ParseAddr(p)
			if addrErr != nil {
				errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %q is neither an IP address nor a CIDR prefix", p))
				continue
			}
			prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix.Masked())
	}

	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, fmt.Errorf("JWT_SECRET is %d bytes; it must be at least 32. Make one with: openssl rand -base64 48", len(c.JWTSecret)))
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT=%q: want json or text", c.LogFormat))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// parseDatabaseURL picks the engine: postgres:// and postgresql:// URLs are
// PostgreSQL; sqlite:PATH, file:PATH, a plain path or nothing is SQLite.
func (c *config) parseDatabaseURL(v string) error {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		c.Engine, c.DBPath = "sqlite", "todo.db"
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		c.Engine, c.DBURL = "postgres", v
	case strings.HasPrefix(v, "sqlite:"), strings.HasPrefix(v, "file:"):
		_, path, _ := strings.Cut(v, ":")
		// sqlite:///abs/path and sqlite://rel/path are common spellings too.
		if strings.HasPrefix(path, "//") {
			path = path[2:]
		}
		path, _, _ = strings.Cut(path, "?")
		if path == "" {
			return fmt.Errorf("DATABASE_URL=%q: no file path", v)
		}
		c.Engine, c.DBPath = "sqlite", path
	case strings.Contains(v, "://"):
		scheme, _, _ := strings.Cut(v, "://")
		return fmt.Errorf("DATABASE_URL: unsupported scheme %q; use postgres://…, sqlite:PATH or a file path", scheme)
	default:
		c.Engine, c.DBPath = "sqlite", v
	}
	c.DBSource = c.DBPath
	if c.Engine == "postgres" {
		c.DBSource = maskPassword(v)
	}
	return nil
}

// maskPassword hides a PostgreSQL URL's password, in the user info or as a
// password= parameter (pgx reads both), for log lines and messages.
func maskPassword(raw string) string {
	scheme, rest, _ := strings.Cut(raw, "://")
	// The user info ends at the first @ before any /, as pgx parses it.
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		if user, _, ok := strings.Cut(rest[:i], ":"); ok {
			rest = user + ":***" + rest[i:]
		}
	}
	if path, query, ok := strings.Cut(rest, "?"); ok {
		params := strings.Split(query, "&")
		for k, param := range params {
			name, _, _ := strings.Cut(param, "=")
			if name, err := url.QueryUnescape(name); err != nil || name == "password" {
				params[k] = "password=***"
			}
		}
		rest = path + "?" + strings.Join(params, "&")
	}
	return scheme + "://" + rest
}

func firstSet(getenv func(string) string, keys ...string) string {
	for _, k := range keys {
		if v := getenv(k); v != "" {
			return v
		}
	}
	return ""
}

func orDefault(v, def string) string {
	if v = strings.TrimSpace(v); v == "" {
		return def
	}
	return v
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

func durationVar(getenv func(string) string, key string, def time.Duration, errs *[]error) time.Duration {
	v := getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		*errs = append(*errs, fmt.Errorf("%s=%q: want a duration such as 10s", key, v))
		return def
	}
	return d
}

func rateVar(getenv func(string) string, key string, def float64, errs *[]error) float64 {
	v := getenv(key)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		*errs = append(*errs, fmt.Errorf("%s=%q: want requests per second (0 turns the limit off)", key, v))
		return def
	}
	return f
}

func intVar(getenv func(string) string, key string, def, min, max int, errs *[]error) int {
	v := getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		*errs = append(*errs, fmt.Errorf("%s=%q: want a whole number from %d to %d", key, v, min, max))
		return def
	}
	return n
}
