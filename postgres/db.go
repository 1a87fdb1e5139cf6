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
	"net"
	"net/url"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	// Logger receives migration progress.
	Logger *slog.Logger

	url  string
	pool *pgxpool.Pool
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
		// prepared on one are missing on the next. The exec mode sends each
		// statement unprepared, in one round trip.
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	if _, ok := params["pool_max_conns"]; !ok {
		cfg.MaxConns = int32(max(4, 4*runtime.GOMAXPROCS(0)))
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
// land on another one and the lock leaks. Both poll every second (goose's
// default is five) for up to five minutes.
func migrationLocker(cfg *pgx.ConnConfig) (goose.ProviderOption, error) {
	if behindPooler(cfg) {
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

// Migrate applies every pending migration, each in its own transaction.
// Errors: SERVICE_UNAVAILABLE.
func (db *DB) Migrate(ctx context.Context) error {
	p, closeDB, err := db.provider()
	if err != nil {
		return err
	}
	defer closeDB()
	results, err := p.Up(ctx)
	db.logMigrations(ctx, results)
	if err != nil {
		return translate("migrate up", err)
	}
	return nil
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
		return translate("migrate down", err)
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
		return translate("migrate reset", err)
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
		return nil, translate("migration status", err)
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
// readiness probe never creates tables.
// Errors: SERVICE_UNAVAILABLE.
func (db *DB) Ready(ctx context.Context) error {
	var applied []int64
	err := db.run(ctx, "check migrations", func(q querier) error {
		rows, err := q.Query(ctx, `SELECT version_id FROM `+migrationTable+` WHERE is_applied`)
		if err != nil {
			return err
		}
		applied, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
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

// querier runs statements: a pooled connection today. Row-level security
// will make it a transaction that first sets the request's user, a change
// confined to run.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// run calls fn with a connection from the pool and translates the error it
// returns; op names the operation in wrapped errors. Errors fn returns that
// are already *todo.Error pass through unchanged.
func (db *DB) run(ctx context.Context, op string, fn func(q querier) error) error {
	conn, err := db.acquire(ctx, op)
	if err != nil {
		return err
	}
	defer conn.Release()
	if err := fn(conn); err != nil {
		return translate(op, err)
	}
	return nil
}

// runTx is run inside one transaction, committed when fn returns nil.
func (db *DB) runTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	conn, err := db.acquire(ctx, op)
	if err != nil {
		return err
	}
	defer conn.Release()
	if err := pgx.BeginFunc(ctx, conn, fn); err != nil {
		return translate(op, err)
	}
	return nil
}

// acquire takes a connection from the pool. Not getting one is the database
// being unavailable, whatever the cause (refused, DNS, TLS, authentication,
// or no free connection before the deadline), except a client that gave up.
func (db *DB) acquire(ctx context.Context, op string) (*pgxpool.Conn, error) {
	if db.pool == nil {
		return nil, fmt.Errorf("%s: postgres DB is not open", op)
	}
	conn, err := db.pool.Acquire(ctx)
	if errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("%s: %w", op, err)
	} else if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", todo.ErrUnavailable, op, err)
	}
	return conn, nil
}

// translate turns a driver error into the domain's: a broken or
// shutting-down server becomes SERVICE_UNAVAILABLE, text PostgreSQL cannot
// store becomes VALIDATION_ERROR, a *todo.Error passes unchanged, and anything
// else is wrapped as internal. A context that ended mid-statement passes
// through wrapped, so callers can tell a client that went away or a request
// that ran out of time from a broken database.
func translate(op string, err error) error {
	var todoErr *todo.Error
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &todoErr):
		return err
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
