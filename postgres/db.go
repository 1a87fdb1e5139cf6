// Package postgres stores todo-api's tasks and users in PostgreSQL through
// pgx's connection pool. It implements todo.TaskService and todo.UserService
// and carries its own embedded goose migrations.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	todo "github.com/todo-api/todo-api"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationTable is goose's default version table, named here because Ready
// reads it directly.
const migrationTable = goose.DefaultTablename

// DB is a PostgreSQL database: a pgx connection pool and the clock and
// limits the services share. Set the exported fields before Open.
type DB struct {
	// Now is the clock that stamps created_at and updated_at.
	Now func() time.Time
	// MaxTasksPerUser caps each user's tasks; 0 means unlimited.
	MaxTasksPerUser int
	// Logger receives migration progress and the row-level security warning.
	Logger *slog.Logger
	// ConnectWait bounds how long a call whose context has no deadline keeps
	// retrying to connect while the server refuses connections; a deadline
	// always wins. Zero means 10 s.
	ConnectWait time.Duration

	url  string
	pool *pgxpool.Pool
	// withoutUser sends statements without setting app.user_id: only the
	// benchmarks use it, to measure what row-level security costs.
	withoutUser bool
}

// NewDB returns a DB for the connection string url (a postgres:// URL or a
// keyword/value string). Nothing connects until Open.
func NewDB(url string) *DB {
	return &DB{
		Now:    time.Now,
		Logger: slog.New(slog.DiscardHandler),
		url:    url,
	}
}

// Open builds the connection pool. It does not connect: a server that is down
// now makes calls fail with SERVICE_UNAVAILABLE until it is back, rather than
// keeping the process from starting. It fails only for an invalid URL.
func (db *DB) Open(ctx context.Context) error {
	cfg, err := poolConfig(db.url)
	if err != nil {
		return err
	}
	if db.Now == nil {
		db.Now = time.Now
	}
	if db.Logger == nil {
		db.Logger = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open postgres pool: %w", err)
	}
	db.pool = pool
	return nil
}

// Close closes every connection of the pool.
func (db *DB) Close() error {
	if db.pool != nil {
		db.pool.Close()
	}
	return nil
}

// QueryExecMode names the way statements are sent (pgx's
// default_query_exec_mode values), for the start-up log line.
func (db *DB) QueryExecMode() string {
	if db.pool == nil {
		return ""
	}
	return db.pool.Config().ConnConfig.DefaultQueryExecMode.String()
}

// poolConfig parses url and applies the rules pgx cannot infer itself: the
// statement mode a connection pooler needs and a pool size for this machine.
func poolConfig(connString string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx redacts the password from its parse errors.
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	params := connParams(connString)
	if _, ok := params["default_query_exec_mode"]; !ok && behindPooler(cfg.ConnConfig) {
		// PgBouncer in transaction mode (Neon's "-pooler" endpoints) hands
		// each transaction a different server connection, so statements
		// prepared on one are missing on the next. cache_describe keeps only
		// each statement's description (its parameter and column types) on
		// the client and sends the statement unnamed, in one round trip, with
		// binary results; the exec mode, which needs no description, gets
		// text results, and in the benchmark cost the server 10-25 % more
		// CPU per request.
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	if _, ok := params["pool_max_conns"]; !ok {
		cfg.MaxConns = int32(max(4, 4*runtime.GOMAXPROCS(0)))
	}
	// A connection the server closed while it sat in the pool (a restart,
	// a failover, Neon suspending its compute) is dropped before use, so
	// its statement goes to a new connection instead of failing: a write
	// that fails after being sent is never retried.
	cfg.PrepareConn = func(_ context.Context, conn *pgx.Conn) (bool, error) {
		return idleConnAlive(conn.PgConn().Conn()), nil
	}
	// When a request's deadline passes mid-statement, ask the server to
	// cancel the statement, so that it stops holding locks and never
	// commits a write whose client already got its 503; the socket
	// deadline, half a second later, bounds the wait if the server is gone.
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 500 * time.Millisecond}
	}
	return cfg, nil
}

// behindPooler reports whether any host of cfg is a Neon pooled endpoint.
func behindPooler(cfg *pgx.ConnConfig) bool {
	if strings.Contains(cfg.Host, "-pooler") {
		return true
	}
	for _, fb := range cfg.Fallbacks {
		if strings.Contains(fb.Host, "-pooler") {
			return true
		}
	}
	return false
}

// connParams returns the parameter names a connection string sets, for both
// the URL and the keyword/value forms. pgx removes its own parameters from
// the parsed config, so whether one was given must be read from the source.
func connParams(connString string) map[string]struct{} {
	params := make(map[string]struct{})
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return params
		}
		for k := range u.Query() {
			params[k] = struct{}{}
		}
		return params
	}
	for _, field := range strings.Fields(connString) {
		if k, _, ok := strings.Cut(field, "="); ok {
			params[strings.TrimSpace(k)] = struct{}{}
		}
	}
	return params
}

// provider returns a goose provider over the pool. Its *sql.DB borrows the
// pool's connections, so migrations use the same URL, TLS and limits.
// The lock lets several instances start at once: one migrates, the others
// wait and then find nothing pending.
func (db *DB) provider() (*goose.Provider, func() error, error) {
	if db.pool == nil {
		return nil, nil, errors.New("postgres: DB is not open")
	}
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, nil, err
	}
	locker, err := migrationLocker(db.pool.Config().ConnConfig)
	if err != nil {
		return nil, nil, fmt.Errorf("create migration lock: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations,
		locker,
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(db.Logger),
	)
	if err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("create migration provider: %w", err)
	}
	return p, sqlDB.Close, nil
}

// migrationLocker returns goose's PostgreSQL session advisory lock, or,
// behind a transaction pooler, its table lock: a session lock taken through
// PgBouncer stays on whichever server connection ran it, so the unlock may
// land on another one and the lock leaks. A pooler is a "-pooler" host or a
// URL that asks for a statement mode without prepared statements (exec or
// simple_protocol), which nobody picks for a direct connection. Both poll
// every second (goose's default is five) for up to five minutes.
func migrationLocker(cfg *pgx.ConnConfig) (goose.ProviderOption, error) {
	if poolerLock(cfg) {
		l, err := lock.NewPostgresTableLocker(lock.WithTableLockTimeout(time.Second, 300))
		if err != nil {
			return nil, err
		}
		return goose.WithLocker(l), nil
	}
	l, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, err
	}
	return goose.WithSessionLocker(l), nil
}

// poolerLock reports whether migrations need the lock that works through a
// transaction pooler.
func poolerLock(cfg *pgx.ConnConfig) bool {
	return behindPooler(cfg) || cfg.DefaultQueryExecMode == pgx.QueryExecModeExec ||
		cfg.DefaultQueryExecMode == pgx.QueryExecModeCacheDescribe ||
		cfg.DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol
}

// Migrate applies every pending migration, each in its own transaction,
// then warns in the log when row-level security cannot hold (see
// RLSEnforced). A server that refuses connections is waited for until ctx's
// deadline (or ConnectWait), so a start that races the database's own start
// does not fail.
// Errors: SERVICE_UNAVAILABLE.
func (db *DB) Migrate(ctx context.Context) error {
	// goose borrows connections without the store's retry: wait here.
	conn, err := db.acquire(ctx, "migrate up", true)
	if err != nil {
		return err
	}
	conn.Release()
	p, closeDB, err := db.provider()
	if err != nil {
		return err
	}
	defer closeDB()
	results, err := p.Up(ctx)
	db.logMigrations(ctx, results)
	if err != nil {
		return translate(ctx, "migrate up", err)
	}
	db.logRLS(ctx)
	return nil
}

// RLSEnforced reports whether row-level security confines the store to the
// request's user: the tasks table has it enabled and forced, and the role
// the pool connects as is neither a superuser nor BYPASSRLS, either of
// which ignores every policy.
// Errors: SERVICE_UNAVAILABLE.
func (db *DB) RLSEnforced(ctx context.Context) (bool, error) {
	var enforced bool
	err := db.run(ctx, "check row-level security", "", func(q *userConn) error {
		return q.QueryRow(ctx, `
			SELECT NOT (rolsuper OR rolbypassrls) AND COALESCE(
				(SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = to_regclass('tasks')),
				false)
			FROM pg_roles WHERE rolname = current_user`).Scan(&enforced)
	})
	return enforced, err
}

// logRLS warns when row-level security is not in force, so an operator
// sees that a forgotten filter would not be caught.
func (db *DB) logRLS(ctx context.Context) {
	enforced, err := db.RLSEnforced(ctx)
	switch {
	case err != nil:
		db.Logger.WarnContext(ctx, "cannot check row-level security", "error", err.Error())
	case !enforced:
		db.Logger.WarnContext(ctx, "row-level security is NOT enforced: the database role is a superuser or has BYPASSRLS "+
			"(or migration 00003 is not applied), so only the queries' own user filters keep users apart; "+
			"connect as a role created with NOSUPERUSER NOBYPASSRLS")
	default:
		db.Logger.InfoContext(ctx, "row-level security enforced on tasks")
	}
}

// MigrateDown rolls back the latest applied migration; it fails when none
// is applied.
// Errors: SERVICE_UNAVAILABLE.
func (db *DB) MigrateDown(ctx context.Context) error {
	p, closeDB, err := db.provider()
	if err != nil {
		return err
	}
	defer closeDB()
	result, err := p.Down(ctx)
	if result != nil {
		db.logMigrations(ctx, []*goose.MigrationResult{result})
	}
	if errors.Is(err, goose.ErrNoNextVersion) {
		return errors.New("migrate down: no migration is applied")
	} else if err != nil {
		return translate(ctx, "migrate down", err)
	}
	return nil
}

// MigrateReset rolls back every applied migration.
// Errors: SERVICE_UNAVAILABLE.
func (db *DB) MigrateReset(ctx context.Context) error {
	p, closeDB, err := db.provider()
	if err != nil {
		return err
	}
	defer closeDB()
	results, err := p.DownTo(ctx, 0)
	db.logMigrations(ctx, results)
	if err != nil {
		return translate(ctx, "migrate reset", err)
	}
	return nil
}

// MigrateStatus lists every known migration and whether it is applied.
// Errors: SERVICE_UNAVAILABLE.
func (db *DB) MigrateStatus(ctx context.Context) ([]*goose.MigrationStatus, error) {
	p, closeDB, err := db.provider()
	if err != nil {
		return nil, err
	}
	defer closeDB()
	status, err := p.Status(ctx)
	if err != nil {
		return nil, translate(ctx, "migration status", err)
	}
	return status, nil
}

func (db *DB) logMigrations(ctx context.Context, results []*goose.MigrationResult) {
	for _, r := range results {
		msg := "migration applied"
		if r.Direction == "down" {
			msg = "migration rolled back"
		}
		if r.Error != nil {
			db.Logger.ErrorContext(ctx, "migration failed", "migration", r.String(), "error", r.Error)
			continue
		}
		db.Logger.InfoContext(ctx, msg, "migration", r.String())
	}
}

// Ready reports whether the server answers and every embedded migration is
// applied. It reads goose's table with one query and changes nothing, so a
// readiness probe never creates tables; it does not wait for a server that
// refuses connections, so it reports the database as it is now.
// Errors: SERVICE_UNAVAILABLE.
func (db *DB) Ready(ctx context.Context) error {
	var applied []int64
	conn, err := db.acquire(ctx, "check migrations", false)
	if err != nil {
		return err
	}
	rows, err := conn.Query(ctx, `SELECT version_id FROM `+migrationTable+` WHERE is_applied`)
	if err == nil {
		applied, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	conn.Release()
	if err != nil {
		err = translate(ctx, "check migrations", err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
		return fmt.Errorf("%w: migrations are pending", todo.ErrUnavailable)
	} else if err != nil {
		return err
	}
	have := make(map[int64]bool, len(applied))
	for _, v := range applied {
		have[v] = true
	}
	versions, err := migrationVersions()
	if err != nil {
		return err
	}
	for _, v := range versions {
		if !have[v] {
			return fmt.Errorf("%w: migration %d is pending", todo.ErrUnavailable, v)
		}
	}
	return nil
}

// migrationVersions returns the versions of the embedded migrations.
func migrationVersions() ([]int64, error) {
	entries, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	versions := make([]int64, 0, len(entries))
	for _, e := range entries {
		v, err := goose.NumericComponent(e.Name())
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		versions = append(versions, v)
	}
	return versions, nil
}

// run calls fn with a connection from the pool on which every statement
// runs as userID (see userConn; "" for statements that are about no one
// user's tasks) and translates the error fn returns; op names the operation
// in wrapped errors. Errors fn returns that are already *todo.Error pass
// through unchanged.
//
// A statement that failed before any of it reached the server (pgx's
// SafeToRetry) is tried again on a new connection; nothing that may have
// run is ever sent twice.
func (db *DB) run(ctx context.Context, op, userID string, fn func(q *userConn) error) error {
	return db.retry(ctx, op, pgconn.SafeToRetry, func(conn *pgxpool.Conn) error {
		return fn(&userConn{conn: conn, userID: userID, withoutUser: db.withoutUser})
	})
}

// read is run for statements that change nothing: when the connection
// breaks under one (the server restarted, or closed a stale connection
// while it sat in the pool), it is run again on a new connection until
// ctx's deadline. fn must wrap an error in final once it has handed rows to
// its caller, since those cannot be taken back.
func (db *DB) read(ctx context.Context, op, userID string, fn func(q *userConn) error) error {
	retryable := func(err error) bool {
		var f finalError
		return !errors.As(err, &f) && (pgconn.SafeToRetry(err) || serverGone(err))
	}
	return db.retry(ctx, op, retryable, func(conn *pgxpool.Conn) error {
		return fn(&userConn{conn: conn, userID: userID, withoutUser: db.withoutUser})
	})
}

// finalError marks an error that must not be retried.
type finalError struct{ err error }

func (e finalError) Error() string { return e.err.Error() }
func (e finalError) Unwrap() error { return e.err }

func final(err error) error {
	if err == nil {
		return nil
	}
	return finalError{err}
}

// retry acquires a connection and calls fn with it, again on a new
// connection while fn's error is retryable and ctx has time left.
func (db *DB) retry(ctx context.Context, op string, retryable func(error) bool, fn func(*pgxpool.Conn) error) error {
	b := db.newBackoff(ctx)
	for {
		conn, err := db.acquire(ctx, op, true)
		if err != nil {
			return err
		}
		err = fn(conn)
		conn.Release()
		if err == nil {
			return nil
		}
		if ctx.Err() == nil && serverGone(err) {
			// The server restarted or went away: every idle connection
			// is as dead as this one, so drop them all now rather than
			// failing one request for each.
			db.pool.Reset()
		}
		if ctx.Err() != nil || !retryable(err) || !b.wait() {
			return translate(ctx, op, err)
		}
	}
}

// acquire takes a connection from the pool. While the server refuses
// connections or is starting up (a restart; Neon waking a suspended
// compute), it tries again with backoff until ctx's deadline, or
// ConnectWait when ctx has none, and then answers SERVICE_UNAVAILABLE just
// before the deadline. Any other failure to connect (authentication, a
// missing database, a host that does not resolve) is unavailable at once.
// A client that gave up gets its context's error.
//
// With wait false it tries once: a readiness probe reports the database as
// it is now.
func (db *DB) acquire(ctx context.Context, op string, wait bool) (*pgxpool.Conn, error) {
	if db.pool == nil {
		return nil, fmt.Errorf("%s: postgres DB is not open", op)
	}
	b := db.newBackoff(ctx)
	for {
		conn, err := db.pool.Acquire(ctx)
		if err == nil {
			return conn, nil
		}
		if errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if !wait || ctx.Err() != nil || !connectRetryable(err) || !b.wait() {
			return nil, fmt.Errorf("%w: %s: %v", todo.ErrUnavailable, op, err)
		}
	}
}

// backoff paces retries: 25 ms doubling to 500 ms, with jitter, until the
// deadline, keeping back enough time to answer before it.
type backoff struct {
	ctx      context.Context
	deadline time.Time
	delay    time.Duration
}

// retryReserve is the time kept back before a deadline to answer in.
const retryReserve = 100 * time.Millisecond

func (db *DB) newBackoff(ctx context.Context) *backoff {
	deadline, ok := ctx.Deadline()
	if !ok {
		wait := db.ConnectWait
		if wait <= 0 {
			wait = 10 * time.Second
		}
		deadline = time.Now().Add(wait)
	}
	return &backoff{ctx: ctx, deadline: deadline, delay: 25 * time.Millisecond}
}

// wait sleeps before the next attempt and reports whether to make one:
// false once the deadline, less the time kept to answer, has come. The last
// attempt is made just before that point rather than a full delay earlier.
func (b *backoff) wait() bool {
	d := min(b.delay/2+rand.N(b.delay), time.Until(b.deadline)-retryReserve)
	b.delay = min(2*b.delay, 500*time.Millisecond)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// connectRetryable reports whether a failure to connect is one that goes
// away by itself: the server refusing or dropping connections, starting
// up, or not answering in time.
func connectRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") ||
			pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	var netErr net.Error
	return errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		(errors.As(err, &netErr) && netErr.Timeout())
}

// serverGone reports whether err means the connection's server session
// ended: it shut down, crashed, or the connection broke.
func serverGone(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02"
	}
	return brokenConn(err)
}

// translate turns a driver error into the domain's: a broken or
// shutting-down server becomes SERVICE_UNAVAILABLE, text PostgreSQL cannot
// store becomes VALIDATION_ERROR, a *todo.Error passes unchanged, and anything
// else is wrapped as internal. A context that ended mid-statement passes
// through wrapped, so callers can tell a client that went away or a request
// that ran out of time from a broken database; that includes the statement
// the server canceled because the context ended.
func translate(ctx context.Context, op string, err error) error {
	var todoErr *todo.Error
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &todoErr):
		return err
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		return fmt.Errorf("%s: %w (%v)", op, ctx.Err(), err)
	case errors.As(err, &pgErr):
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now: starting up or shutting down
			pgErr.Code == "53300": // too_many_connections
			return fmt.Errorf("%w: %s: %v", todo.ErrUnavailable, op, err)
		case pgErr.Code == "22021", // character_not_in_repertoire: NUL or invalid UTF-8
			pgErr.Code == "22P05": // untranslatable_character
			// The domain rejects such text in the fields it validates; this
			// catches what it cannot see, such as a token's subject.
			return &todo.Error{Code: todo.EVALIDATION, Message: "The request contains text that cannot be stored."}
		}
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	case brokenConn(err):
		return fmt.Errorf("%w: %s: %v", todo.ErrUnavailable, op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// brokenConn reports whether err means the server could not be reached or
// the connection broke under a statement: refused, reset, closed, or a
// network timeout.
func brokenConn(err error) bool {
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) ||
		errors.As(err, &netErr) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}
