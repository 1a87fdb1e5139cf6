package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/prometheus/client_golang/prometheus"
	todo "github.com/todo-api/todo-api"
	todohttp "github.com/todo-api/todo-api/http"
	"github.com/todo-api/todo-api/jwt"
	"github.com/todo-api/todo-api/postgres"
	"github.com/todo-api/todo-api/sqlite"
)

// defaultMemoryLimit is the soft limit for the Go runtime when GOMEMLIMIT
// is not set.
const defaultMemoryLimit = 64 << 20

const usage = `usage: todo-api [command]

commands:
  serve                      start the HTTP server (the default); applies pending migrations first
  migrate up|down|reset|status
                             apply all, roll back the latest, roll back all, or list migrations
  token --sub ID [--email E] [--name N] [--ttl 24h]
                             print a token signed with the secret the server would use
  help                       show this text

Configuration comes from the environment and a .env file: see .env.example.
`

// run is the whole program: main only calls it with the real process's
// arguments, environment and streams, and tests call it with their own.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	getenv, err := envWithDotEnv(getenv)
	if err != nil {
		return err
	}
	cmd, rest := "serve", []string(nil)
	if len(args) > 1 {
		cmd, rest = args[1], args[2:]
	}
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "serve", "migrate", "token":
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if cmd == "serve" && cfg.LogFlushInterval > 0 {
		lw := newLogWriter(stderr, cfg.LogFlushInterval)
		defer lw.Close()
		stderr = lw
	}
	logger := newLogger(cfg, stderr)
	switch cmd {
	case "migrate":
		return runMigrate(ctx, cfg, logger, rest, stdout)
	case "token":
		return runToken(ctx, cfg, rest, stdout)
	}
	return serve(ctx, cfg, logger, stdout)
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	if lw, ok := w.(*logWriter); ok {
		h = flushOnWarn{h, lw}
	}
	return slog.New(h)
}

// store is what serve and migrate need of either engine.
type store interface {
	Open(ctx context.Context) error
	Close() error
	Migrate(ctx context.Context) error
	MigrateDown(ctx context.Context) error
	MigrateReset(ctx context.Context) error
	MigrateStatus(ctx context.Context) ([]*goose.MigrationStatus, error)
	Ready(ctx context.Context) error
}

// database is an opened engine with its services.
type database struct {
	store
	tasks todo.TaskService
	users todo.UserService
}

func openDatabase(ctx context.Context, cfg *config, logger *slog.Logger) (*database, error) {
	var d *database
	switch cfg.Engine {
	case "postgres":
		db := postgres.NewDB(cfg.DBURL)
		db.Logger, db.MaxTasksPerUser = logger, cfg.MaxTasksPerUser
		d = &database{store: db, tasks: postgres.NewTaskService(db), users: postgres.NewUserService(db)}
	default:
		db := sqlite.NewDB(cfg.DBPath)
		db.Logger, db.MaxTasksPerUser = logger, cfg.MaxTasksPerUser
		d = &database{store: db, tasks: sqlite.NewTaskService(db), users: sqlite.NewUserService(db)}
	}
	if err := d.Open(ctx); err != nil {
		return nil, fmt.Errorf("open %s database %s: %w", cfg.Engine, cfg.DBSource, err)
	}
	return d, nil
}

func runMigrate(ctx context.Context, cfg *config, logger *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: todo-api migrate up|down|reset|status")
	}
	db, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	switch args[0] {
	case "up":
		err = db.Migrate(ctx)
	case "down":
		err = db.MigrateDown(ctx)
	case "reset":
		err = db.MigrateReset(ctx)
	case "status":
	default:
		return fmt.Errorf("unknown migrate command %q: want up, down, reset or status", args[0])
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", args[0], err)
	}
	statuses, err := db.MigrateStatus(ctx)
	if err != nil {
		return fmt.Errorf("migrate status: %w", err)
	}
	for _, st := range statuses {
		applied := "pending"
		if st.State == goose.StateApplied {
			applied = "applied " + st.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%05d  %-28s %s\n", st.Source.Version, baseName(st.Source.Path), applied)
	}
	return nil
}

func baseName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

func runToken(ctx context.Context, cfg *config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	sub := fs.String("sub", "", "the token's subject (user id); required")
	email := fs.String("email", "", "email claim")
	name := fs.String("name", "", "name claim")
	ttl := fs.Duration("ttl", cfg.TokenTTL, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: --sub is required")
	}
	secret, _, err := resolveSecret(cfg)
	if err != nil {
		return err
	}
	if secret == nil {
		return errors.New("token: no HS256 secret: set JWT_SECRET (tokens from JWKS_URL come from their issuer)")
	}
	tokens, err := jwt.New(ctx, jwt.Config{Secret: secret, Issuers: cfg.Issuers, Audiences: cfg.Audiences, Expiration: *ttl})
	if err != nil {
		return err
	}
	defer tokens.Close()
	token, _, err := tokens.IssueToken(todo.Identity{UserID: *sub, Email: *email, Name: *name})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, token)
	return nil
}

func serve(ctx context.Context, cfg *config, logger *slog.Logger, stdout io.Writer) error {
	// A soft memory limit, unless the operator set GOMEMLIMIT: the GC works
	// harder near it instead of letting garbage double the heap. With 2,000
	// keep-alive connections it keeps peak RSS under 100 MB (122 MB without)
	// at no throughput cost measured.
	if !cfg.MemoryLimitSet {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	secret, secretSource, err := resolveSecret(cfg)
	if err != nil {
		return err
	}
	if secret == nil && cfg.JWKSURL == "" {
		return errors.New("no way to check tokens: set JWT_SECRET (at least 32 bytes; make one with: openssl rand -base64 48) or JWKS_URL")
	}
	tokens, err := jwt.New(ctx, jwt.Config{
		Secret: secret, JWKSURL: cfg.JWKSURL, Issuers: cfg.Issuers, Audiences: cfg.Audiences,
		Expiration: cfg.TokenTTL, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer tokens.Close()

	db, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()

	// SQLite is local: a migration failure is fatal. PostgreSQL may be
	// briefly unreachable (a restart, Neon waking up): serve 503s and keep
	// trying rather than crash-looping.
	var migrated, draining atomic.Bool
	migrateCtx, cancelMigrate := context.WithCancel(ctx)
	defer cancelMigrate()
	if cfg.Engine == "sqlite" {
		if err := db.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		migrated.Store(true)
	} else {
		go migrateUntilDone(migrateCtx, db, logger, &migrated)
	}

	if strings.HasSuffix(secretSource, "(generated)") || strings.HasSuffix(secretSource, ".secret") {
		logger.Warn("JWT_SECRET is not set: using a generated secret kept beside the database; set JWT_SECRET (or JWKS_URL) in production",
			"secret_file", strings.TrimSuffix(secretSource, " (generated)"))
	}
	var issuer todo.TokenIssuer
	if secret != nil {
		issuer = tokens
	}
	registry := prometheus.NewRegistry()
	handler := todohttp.NewServer(todohttp.Config{
		Tasks: db.tasks, Users: db.users, Tokens: tokens, Issuer: issuer,
		Ready: func(ctx context.Context) error {
			if draining.Load() {
				return todo.Errorf(todo.EUNAVAILABLE, "shutting down")
			}
			if !migrated.Load() {
				return todo.Errorf(todo.EUNAVAILABLE, "migrations are not applied yet")
			}
			if err := db.Ready(ctx); err != nil {
				return err
			}
			return tokens.Ready(ctx)
		},
		Available: func() error {
			if !migrated.Load() {
				return todo.ErrUnavailable
			}
			return nil
		},
		Logger: logger, Registry: registry, CORSOrigins: cfg.CORSOrigins,
		MaxBodyBytes: cfg.MaxBodyBytes, RequestTimeout: cfg.RequestTimeout, BcryptCost: cfg.BcryptCost,
		RateLimitUser: cfg.RateLimitUser, BurstUser: int(math.Ceil(5 * cfg.RateLimitUser)),
		RateLimitIP: cfg.RateLimitIP, BurstIP: int(math.Ceil(4 * cfg.RateLimitIP)),
		TrustedProxies: cfg.TrustedProxies, MaxInFlight: cfg.MaxInFlight,
	})
	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.RequestTimeout + 20*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	logger.Info("todo-api started", "addr", ln.Addr().String(), "engine", cfg.Engine, "database", cfg.DBSource,
		"hs256", secretSource, "jwks_url", cfg.JWKSURL, "built_in_accounts", issuer != nil)
	// The bound address, so that PORT=0 (any free port) is usable too.
	host, _, _ := net.SplitHostPort(cfg.Addr)
	bound := net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	fmt.Fprintf(stdout, "todo-api listening on http://%s (docs: http://%s/docs, database: %s %s)\n",
		bound, displayAddr(ln.Addr()), cfg.Engine, cfg.DBSource)

	if cfg.PprofAddr != "" {
		go servePprof(ctx, cfg.PprofAddr, logger)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Finish what is in flight, then let the deferred closes run: the
	// database closes only after the last request has answered.
	// Behind a load balancer, /ready turns 503 first and the server keeps
	// serving for SHUTDOWN_DELAY, so that no new request is sent to a
	// listener that is about to close.
	draining.Store(true)
	if cfg.ShutdownDelay > 0 {
		logger.Info("draining before shutdown", "delay", cfg.ShutdownDelay.String())
		time.Sleep(cfg.ShutdownDelay)
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// servePprof serves the profiler on its own listener, apart from the API,
// for finding where time goes under load. Off unless PPROF_ADDR is set.
func servePprof(ctx context.Context, addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	logger.Warn("profiler listening; do not expose it", "addr", addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("profiler", "error", err.Error())
	}
}

// displayAddr is the address a person can open: localhost for wildcards.
func displayAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		if ok {
			return fmt.Sprintf("localhost:%d", tcp.Port)
		}
	}
	return addr.String()
}

// migrateUntilDone retries migrations with backoff until they apply or ctx ends.
func migrateUntilDone(ctx context.Context, db *database, logger *slog.Logger, migrated *atomic.Bool) {
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := db.Migrate(attemptCtx)
		cancel()
		if err == nil {
			migrated.Store(true)
			if attempt > 1 {
				logger.Info("migrations applied", "attempts", attempt)
			}
			return
		}
		if attempt == 1 || attempt%20 == 0 {
			logger.Warn("cannot apply migrations yet; retrying", "error", err.Error(), "attempt", attempt)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}
