package postgres

import (
	"context"
	"net/url"
	"runtime"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	todo "github.com/todo-api/todo-api"
	"github.com/todo-api/todo-api/postgres/pgtest"
	"github.com/todo-api/todo-api/todotest"
)

func TestPoolConfig(t *testing.T) {
	t.Parallel()
	defaultConns := int32(max(4, 4*runtime.GOMAXPROCS(0)))
	tests := []struct {
		name     string
		url      string
		mode     pgx.QueryExecMode
		maxConns int32
	}{
		{"local", "postgres://postgres@127.0.0.1:5432/todo?sslmode=disable",
			pgx.QueryExecModeCacheStatement, defaultConns},
		{"neon direct", "postgresql://alex:secret@ep-cool-darkness-123456.us-east-2.aws.neon.tech/todo?sslmode=require&channel_binding=require",
			pgx.QueryExecModeCacheStatement, defaultConns},
		{"neon pooled", "postgresql://alex:secret@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/todo?sslmode=require&channel_binding=require",
			pgx.QueryExecModeCacheDescribe, defaultConns},
		{"pooled, mode given", "postgresql://alex:secret@ep-x-pooler.neon.tech/todo?sslmode=require&default_query_exec_mode=simple_protocol",
			pgx.QueryExecModeSimpleProtocol, defaultConns},
		{"pooled, cache mode asked for", "postgresql://alex:secret@ep-x-pooler.neon.tech/todo?default_query_exec_mode=cache_statement",
			pgx.QueryExecModeCacheStatement, defaultConns},
		{"mode given", "postgres://postgres@localhost/todo?default_query_exec_mode=describe_exec",
			pgx.QueryExecModeDescribeExec, defaultConns},
		{"pool size given", "postgres://postgres@localhost/todo?pool_max_conns=2",
			pgx.QueryExecModeCacheStatement, 2},
		{"keyword/value, pooled", "host=ep-x-pooler.neon.tech user=alex dbname=todo sslmode=require pool_max_conns=7",
			pgx.QueryExecModeCacheDescribe, 7},
		{"keyword/value, mode given", "host=ep-x-pooler.neon.tech user=alex dbname=todo default_query_exec_mode=exec",
			pgx.QueryExecModeExec, defaultConns},
		{"pooled fallback host", "postgres://alex@ep-a.neon.tech,ep-b-pooler.neon.tech/todo",
			pgx.QueryExecModeCacheDescribe, defaultConns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := poolConfig(tt.url)
			if err != nil {
				t.Fatalf("poolConfig(%q): %v", tt.url, err)
			}
			if got := cfg.ConnConfig.DefaultQueryExecMode; got != tt.mode {
				t.Errorf("exec mode: got %v, want %v", got, tt.mode)
			}
			if got := cfg.MaxConns; got != tt.maxConns {
				t.Errorf("max conns: got %d, want %d", got, tt.maxConns)
			}
		})
	}
}

func TestPoolConfigTLS(t *testing.T) {
	t.Parallel()
	cfg, err := poolConfig("postgresql://alex:secret@ep-x.neon.tech/todo?sslmode=require&channel_binding=require")
	if err != nil {
		t.Fatalf("poolConfig: %v", err)
	}
	if cfg.ConnConfig.TLSConfig == nil {
		t.Errorf("sslmode=require: got no TLS config")
	}
	if got := cfg.ConnConfig.ChannelBinding; got != "require" {
		t.Errorf("channel binding: got %q, want require", got)
	}
}

func TestPoolConfigInvalid(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"postgres://postgres@localhost/todo?default_query_exec_mode=bogus",
		"postgres://postgres@localhost/todo?channel_binding=sometimes",
		"postgres://postgres:secret@localhost:notaport/todo",
	} {
		if _, err := poolConfig(url); err == nil {
			t.Errorf("poolConfig(%q): got nil error", url)
		}
	}
}

// TestBehindPooler runs the store as it runs behind Neon's pooler (exec mode,
// table-based migration lock) against a real server, reached through a
// "-pooler" host name that resolves to it.
func TestBehindPooler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	realHost := u.Hostname()
	u.Host = "ep-test-123-pooler.invalid:" + u.Port()

	var dbs []*DB
	for range 2 {
		cfg, err := poolConfig(u.String())
		if err != nil {
			t.Fatalf("poolConfig: %v", err)
		}
		cfg.ConnConfig.LookupFunc = func(context.Context, string) ([]string, error) {
			return []string{realHost}, nil
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("NewWithConfig: %v", err)
		}
		t.Cleanup(pool.Close)
		db := NewDB(u.String())
		db.pool = pool
		if got, want := db.QueryExecMode(), pgx.QueryExecModeCacheDescribe.String(); got != want {
			t.Errorf("QueryExecMode: got %q, want %q", got, want)
		}
		dbs = append(dbs, db)
	}

	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.Migrate(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	var lockTable bool
	if err := dbs[0].pool.QueryRow(ctx, `SELECT to_regclass('goose_lock') IS NOT NULL`).Scan(&lockTable); err != nil {
		t.Fatal(err)
	}
	if !lockTable {
		t.Errorf("behind a pooler, migrations did not use goose's table lock")
	}
	if err := dbs[1].Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}

	tasks, users := NewTaskService(dbs[0]), NewUserService(dbs[0])
	todotest.MustEnsureUser(t, users, "alice")
	task := todotest.MustCreateTask(t, tasks, "alice", todo.Task{Title: "pooled"})
	if _, err := tasks.ToggleTask(ctx, "alice", task.ID); err != nil {
		t.Errorf("ToggleTask: %v", err)
	}
	_, err = tasks.FindTaskByID(ctx, "alice", "01900000-0000-7000-8000-000000000000")
	if got := todo.ErrorCode(err); got != todo.ETASKNOTFOUND {
		t.Errorf("FindTaskByID of a missing task: got %v, want %s", err, todo.ETASKNOTFOUND)
	}
}
