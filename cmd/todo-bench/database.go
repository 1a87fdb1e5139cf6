package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

// database is a fresh database of one engine that the benchmark owns.
type database struct {
	engine string
	url    string // DATABASE_URL for todo-api
	path   string // SQLite file
	drop   func() error
}

// pgNameSeq numbers the databases one run creates.
var pgNameSeq atomic.Int64

// newDatabase makes an empty database: a file in dir for SQLite; for
// PostgreSQL a database of its own, todo_bench_…, created on the server
// at adminURL and dropped by drop. It never touches other databases.
func newDatabase(ctx context.Context, engine, dir, adminURL, name string) (*database, error) {
	if engine == "sqlite" {
		path := filepath.Join(dir, name+".db")
		return &database{engine: engine, url: "sqlite:" + path, path: path, drop: func() error {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(path + suffix)
			}
			return nil
		}}, nil
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("-database-url: %w", err)
	}
	dbName := fmt.Sprintf("todo_bench_%d_%d_%s", os.Getpid(), pgNameSeq.Add(1), name)
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", redact(adminURL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{dbName}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database %s: %w", dbName, err)
	}
	u.Path = "/" + dbName
	return &database{engine: engine, url: u.String(), drop: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{dbName}.Sanitize()+" WITH (FORCE)")
		return err
	}}, nil
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the URL"
	}
	return p.Redacted()
}

// migrate runs `todo-api migrate up` on db.
func migrate(ctx context.Context, bin, dir string, db *database) error {
	cmd := exec.CommandContext(ctx, bin, "migrate", "up")
	cmd.Dir, cmd.Env = dir, serverEnv(db.url)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("todo-api migrate up: %v\n%s", err, out)
	}
	return nil
}

// seedGroup is users named prefix0 … prefix(users-1), each with perUser tasks.
type seedGroup struct {
	prefix         string
	users, perUser int
}

func (g seedGroup) userID(k int) string { return g.prefix + strconv.Itoa(k) }

// seedBase is the newest created_at that seeded tasks get; task j of a user
// is j milliseconds older.
var seedBase = time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)

// seed adds the groups' users and tasks straight in SQL, matching the
// schema exactly: the tasks get UUIDv7 ids whose time is their created_at.
func seed(ctx context.Context, db *database, groups []seedGroup) error {
	if db.engine == "sqlite" {
		return seedSQLite(ctx, db.path, groups)
	}
	return seedPostgres(ctx, db.url, groups)
}

func seedSQLite(ctx context.Context, path string, groups []seedGroup) error {
	// No fsync while seeding: this is not an acknowledged API write, and
	// the server that opens the file next reads it from the page cache.
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=synchronous(OFF)&_txlock=immediate")
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer tx.Rollback()
	insertUser, err := tx.PrepareContext(ctx, `INSERT INTO users (id, created_at, updated_at) VALUES (?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	insertTask, err := tx.PrepareContext(ctx, `INSERT INTO tasks (id, user_id, title, description, is_completed, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	r := newRand(uint64(time.Now().UnixNano()))
	now := time.Now().UnixMicro()
	for _, g := range groups {
		for k := range g.users {
			userID := g.userID(k)
			if _, err := insertUser.ExecContext(ctx, userID, now, now); err != nil {
				return fmt.Errorf("seed user %s: %w", userID, err)
			}
			for j := range g.perUser {
				created := seedBase.Add(-time.Duration(j) * time.Millisecond)
				var description any
				if j%2 == 0 {
					description = "seeded description " + strconv.Itoa(j)
				}
				_, err := insertTask.ExecContext(ctx, uuidV7At(created, r), userID, "seeded task "+strconv.Itoa(j),
					description, j%3 == 0, created.UnixMicro(), created.UnixMicro())
				if err != nil {
					return fmt.Errorf("seed task of %s: %w", userID, err)
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

// uuidV7At returns a version 7 UUID for the time t.
func uuidV7At(t time.Time, r *rand.Rand) string {
	var u uuid.UUID
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(t.UnixMilli()))
	copy(u[:6], ms[2:])
	binary.BigEndian.PutUint64(u[8:], r.Uint64())
	u[6] = 0x70 | byte(r.IntN(16))
	u[7] = byte(r.IntN(256))
	u[8] = 0x80 | u[8]&0x3f
	return u.String()
}

// seedPostgres builds the rows in the server with generate_series; the id
// is a UUIDv7 made of created_at's milliseconds and an md5 of its position.
func seedPostgres(ctx context.Context, dbURL string, groups []seedGroup) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, g := range groups {
		_, err := conn.Exec(ctx, `INSERT INTO users (id, created_at, updated_at)
			SELECT $1::text || u, now(), now() FROM generate_series(0, $2::int - 1) u`, g.prefix, g.users)
		if err != nil {
			return fmt.Errorf("seed users %s*: %w", g.prefix, err)
		}
		_, err = conn.Exec(ctx, `INSERT INTO tasks (id, user_id, title, description, is_completed, created_at, updated_at)
			SELECT (lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid,
				$1::text || u, 'seeded task ' || j, CASE WHEN j % 2 = 0 THEN 'seeded description ' || j END, j % 3 = 0, ts, ts
			FROM generate_series(0, $2::int - 1) u, generate_series(0, $3::int - 1) j,
				LATERAL (SELECT $4::timestamptz - j * interval '1 millisecond' AS ts, md5($1::text || u || ':' || j) AS h) x`,
			g.prefix, g.users, g.perUser, seedBase)
		if err != nil {
			return fmt.Errorf("seed tasks of %s*: %w", g.prefix, err)
		}
	}
	// What autovacuum would soon do after a bulk load: statistics and the
	// visibility map, so that plans and index-only paths are as in steady state.
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE tasks`); err != nil {
		return fmt.Errorf("seed: vacuum: %w", err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE users`); err != nil {
		return fmt.Errorf("seed: analyze: %w", err)
	}
	return nil
}

// loadUser reads what the database holds of a user's tasks, so that the
// API's answers for a seeded user can be checked exactly.
func loadUser(ctx context.Context, db *database, userID, token string) (*user, error) {
	u := newUser(userID, token)
	const query = `SELECT id::text, title, is_completed FROM tasks WHERE user_id = $1`
	if db.engine == "sqlite" {
		conn, err := sql.Open("sqlite", "file:"+db.path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		rows, err := conn.QueryContext(ctx, strings.Replace(strings.Replace(query, "$1", "?", 1), "id::text", "id", 1), userID)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return u, addTasks(u, rows)
	}
	conn, err := pgx.Connect(ctx, db.url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, query, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return u, addTasks(u, rows)
}

// taskRows is what database/sql's and pgx's rows have in common.
type taskRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// addTasks gives u every (id, title, is_completed) row.
func addTasks(u *user, rows taskRows) error {
	for rows.Next() {
		var id, title string
		var completed bool
		if err := rows.Scan(&id, &title, &completed); err != nil {
			return err
		}
		u.add(id, title, completed)
	}
	return rows.Err()
}

// listQuery is the statement both stores run for GET /api/tasks.
const listQuery = `SELECT id, user_id, title, description, is_completed, created_at, updated_at FROM tasks WHERE user_id = %s ORDER BY created_at DESC, id DESC`

// ceiling is the database's own rate for the list query.
type ceiling struct {
	what string
	qps  float64
}

// sqliteCeiling runs the list query for the given users on the file from
// clients goroutines over a pool like the server's readers, scanning every
// column as the store does, for d.
func sqliteCeiling(ctx context.Context, path string, users []string, clients int, d time.Duration) (ceiling, error) {
	pool, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=query_only(1)")
	if err != nil {
		return ceiling{}, err
	}
	defer pool.Close()
	conns := max(4, runtime.NumCPU())
	pool.SetMaxOpenConns(conns)
	pool.SetMaxIdleConns(conns)
	query := fmt.Sprintf(listQuery, "?")
	var total atomic.Int64
	var firstErr error
	var errOnce sync.Once
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			r := newRand(uint64(i) + 77)
			for time.Now().Before(end) && ctx.Err() == nil {
				rows, err := pool.QueryContext(ctx, query, users[r.IntN(len(users))])
				if err == nil {
					for rows.Next() {
						var id, userID, title string
						var description sql.NullString
						var completed bool
						var created, updated int64
						if err = rows.Scan(&id, &userID, &title, &description, &completed, &created, &updated); err != nil {
							break
						}
					}
					if err == nil {
						err = rows.Err()
					}
					rows.Close()
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				total.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return ceiling{}, fmt.Errorf("sqlite ceiling: %w", firstErr)
	}
	return ceiling{
		what: fmt.Sprintf("Go loop, %d goroutines, %d connections, same SQL and scan", clients, conns),
		qps:  float64(total.Load()) / d.Seconds(),
	}, nil
}

// findPgbench returns the pgbench binary: the flag, PATH, or PostgreSQL's
// versioned directory on Debian.
func findPgbench(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", errors.New("pgbench not found: install postgresql-contrib (or the postgresql package), or pass -pgbench")
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbenchCeiling runs the list query as a prepared statement from clients
// connections for d, users chosen at random among prefix0 … prefix(n-1).
func pgbenchCeiling(ctx context.Context, bin, dbURL, dir, prefix string, n, clients int, d time.Duration) (ceiling, error) {
	script := filepath.Join(dir, "list.sql")
	body := fmt.Sprintf("\\set n random(0, %d)\n"+listQuery+";\n", n-1, "'"+prefix+"' || :n::text")
	if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
		return ceiling{}, err
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, bin, "-n", "-M", "prepared", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, runtime.NumCPU())),
		"-T", strconv.Itoa(secs), "-f", script, dbURL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return ceiling{}, fmt.Errorf("pgbench: %v\n%s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return ceiling{}, fmt.Errorf("pgbench: no tps line in its output:\n%s", out)
	}
	qps, _ := strconv.ParseFloat(string(m[1]), 64)
	return ceiling{what: fmt.Sprintf("pgbench -M prepared, %d clients, same SQL", clients), qps: qps}, nil
}
