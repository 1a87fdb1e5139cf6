package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// bareServerCommand, as the first argument, makes todo-bench the
// bare-bones server instead of the load tool: the benchmark re-executes
// itself with it, so the baseline runs in a process of its own.
const bareServerCommand = "bare-server"

// The bare-bones server is the baseline of issue 5: the same task routes
// as todo-api, written the plain way — the standard mux, jwt/v5 on every
// request, the SQL, encoding/json — with no middleware, logging, metrics
// or limits. It uses the tables todo-api created, so the generator checks
// its answers exactly as it checks todo-api's. It is a yardstick, not a
// product: it does not create users (the benchmark's users exist already)
// and writes errors only as far as the generator needs them.

// bareTask is a task as the API returns it.
type bareTask struct {
	ID          string    `json:"id"`
	UserID      string    `json:"user_id"`
	Title       string    `json:"title"`
	Description *string   `json:"description"`
	IsCompleted bool      `json:"is_completed"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// bareStore runs the task statements of one engine. Every statement names
// the user; errNoTask means no such task of that user.
type bareStore interface {
	ping(ctx context.Context) error
	list(ctx context.Context, userID string) ([]bareTask, error)
	get(ctx context.Context, userID, id string) (bareTask, error)
	create(ctx context.Context, t bareTask) (bareTask, error)
	replace(ctx context.Context, userID, id, title string, description *string, completed *bool) (bareTask, error)
	toggle(ctx context.Context, userID, id string) (bareTask, error)
	remove(ctx context.Context, userID, id string) error
	close()
}

var errNoTask = errors.New("task not found")

const bareColumns = `id, user_id, title, description, is_completed, created_at, updated_at`

// runBareServer serves the task routes on $HOST:$PORT from $DATABASE_URL
// (postgres://… or sqlite:PATH) until ctx ends.
func runBareServer(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	var store bareStore
	var err error
	dbURL := getenv("DATABASE_URL")
	if strings.HasPrefix(dbURL, "postgres://") || strings.HasPrefix(dbURL, "postgresql://") {
		store, err = openBarePostgres(ctx, dbURL)
	} else {
		store, err = openBareSQLite(strings.TrimPrefix(dbURL, "sqlite:"))
	}
	if err != nil {
		return err
	}
	defer store.close()

	ln, err := net.Listen("tcp", net.JoinHostPort(getenv("HOST"), getenv("PORT")))
	if err != nil {
		return err
	}
	h := newBareHandler(store, []byte(getenv("JWT_SECRET")), logger)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "bare-bones server listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

type bareServer struct {
	store  bareStore
	secret []byte
	logger *slog.Logger
}

// newBareHandler returns the bare-bones server's routes.
func newBareHandler(store bareStore, secret []byte, logger *slog.Logger) http.Handler {
	s := &bareServer{store: store, secret: secret, logger: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", s.ready)
	mux.HandleFunc("GET /api/tasks", s.list)
	mux.HandleFunc("POST /api/tasks", s.create)
	mux.HandleFunc("GET /api/tasks/{id}", s.get)
	mux.HandleFunc("PUT /api/tasks/{id}", s.replace)
	mux.HandleFunc("PATCH /api/tasks/{id}/toggle", s.toggle)
	mux.HandleFunc("DELETE /api/tasks/{id}", s.remove)
	return mux
}

// userID returns the subject of the request's HS256 Bearer token.
func (s *bareServer) userID(r *http.Request) (string, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false
	}
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return s.secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	if err != nil || claims.Subject == "" {
		return "", false
	}
	return claims.Subject, true
}

// taskOf answers 401 or 404 itself, or returns the token's user and the
// path's task id.
func (s *bareServer) taskOf(w http.ResponseWriter, r *http.Request) (userID, id string, ok bool) {
	if userID, ok = s.userID(r); !ok {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Missing or invalid token.")
		return "", "", false
	}
	parsed, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, "TASK_NOT_FOUND", "Task not found.")
		return "", "", false
	}
	return userID, parsed.String(), true
}

func (s *bareServer) ready(w http.ResponseWriter, r *http.Request) {
	if err := s.store.ping(r.Context()); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *bareServer) list(w http.ResponseWriter, r *http.Request) {
	userID, ok := s.userID(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Missing or invalid token.")
		return
	}
	tasks, err := s.store.list(r.Context(), userID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": tasks, "count": len(tasks)})
}

func (s *bareServer) get(w http.ResponseWriter, r *http.Request) {
	userID, id, ok := s.taskOf(w, r)
	if !ok {
		return
	}
	task, err := s.store.get(r.Context(), userID, id)
	s.respond(w, r, http.StatusOK, task, err)
}

// taskInput is the body of a create or a replace.
type taskInput struct {
	Title       string  `json:"title"`
	Description *string `json:"description"`
	IsCompleted *bool   `json:"is_completed"`
}

// decodeTask reads and checks the body, writing a 400 when it is wrong.
func decodeTask(w http.ResponseWriter, r *http.Request) (taskInput, bool) {
	var in taskInput
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_JSON", "The body is not valid JSON.")
		return in, false
	}
	in.Title = strings.TrimSpace(in.Title)
	if n := utf8.RuneCountInString(in.Title); n < 1 || n > 500 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "title must be 1 to 500 characters.")
		return in, false
	}
	if in.Description != nil && utf8.RuneCountInString(*in.Description) > 5000 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "description must be at most 5000 characters.")
		return in, false
	}
	return in, true
}

func (s *bareServer) create(w http.ResponseWriter, r *http.Request) {
	userID, ok := s.userID(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Missing or invalid token.")
		return
	}
	in, ok := decodeTask(w, r)
	if !ok {
		return
	}
	id, err := uuid.NewV7()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := time.Now().UTC()
	task, err := s.store.create(r.Context(), bareTask{
		ID: id.String(), UserID: userID, Title: in.Title, Description: in.Description,
		IsCompleted: in.IsCompleted != nil && *in.IsCompleted, CreatedAt: now, UpdatedAt: now,
	})
	if err == nil {
		w.Header().Set("Location", "/api/tasks/"+task.ID)
	}
	s.respond(w, r, http.StatusCreated, task, err)
}

func (s *bareServer) replace(w http.ResponseWriter, r *http.Request) {
	userID, id, ok := s.taskOf(w, r)
	if !ok {
		return
	}
	in, ok := decodeTask(w, r)
	if !ok {
		return
	}
	task, err := s.store.replace(r.Context(), userID, id, in.Title, in.Description, in.IsCompleted)
	s.respond(w, r, http.StatusOK, task, err)
}

func (s *bareServer) toggle(w http.ResponseWriter, r *http.Request) {
	userID, id, ok := s.taskOf(w, r)
	if !ok {
		return
	}
	task, err := s.store.toggle(r.Context(), userID, id)
	s.respond(w, r, http.StatusOK, task, err)
}

func (s *bareServer) remove(w http.ResponseWriter, r *http.Request) {
	userID, id, ok := s.taskOf(w, r)
	if !ok {
		return
	}
	err := s.store.remove(r.Context(), userID, id)
	switch {
	case errors.Is(err, errNoTask):
		writeError(w, http.StatusNotFound, "TASK_NOT_FOUND", "Task not found.")
	case err != nil:
		s.fail(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// respond writes task with status, or the error.
func (s *bareServer) respond(w http.ResponseWriter, r *http.Request, status int, task bareTask, err error) {
	switch {
	case errors.Is(err, errNoTask):
		writeError(w, http.StatusNotFound, "TASK_NOT_FOUND", "Task not found.")
	case err != nil:
		s.fail(w, r, err)
	default:
		writeJSON(w, status, task)
	}
}

// fail logs err, which the benchmark finds in the log, and answers 500.
func (s *bareServer) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	writeError(w, http.StatusInternalServerError, "INTERNAL", "Internal error.")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

// barePostgres is the store on a pgxpool with its defaults: as many
// connections as cores (at least 4), statements prepared and cached per
// connection.
type barePostgres struct{ pool *pgxpool.Pool }

func openBarePostgres(ctx context.Context, url string) (*barePostgres, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	// tasks has FORCE ROW LEVEL SECURITY, which todo-api meets with a
	// per-transaction setting; plain SQL filtered by user_id sees rows only
	// as a role that bypasses it (the benchmark's postgres superuser does).
	var bypass bool
	err = pool.QueryRow(ctx, `SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&bypass)
	if err == nil && !bypass {
		err = errors.New("the bare-bones server needs a superuser or BYPASSRLS role: row-level security on tasks hides every row from plain SQL")
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &barePostgres{pool: pool}, nil
}

func (s *barePostgres) ping(ctx context.Context) error { return s.pool.Ping(ctx) }
func (s *barePostgres) close()                         { s.pool.Close() }

func scanPostgresTask(row pgx.CollectableRow) (bareTask, error) {
	var t bareTask
	err := row.Scan(&t.ID, &t.UserID, &t.Title, &t.Description, &t.IsCompleted, &t.CreatedAt, &t.UpdatedAt)
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return t, err
}

// one reads the single task a statement returns.
func (s *barePostgres) one(ctx context.Context, query string, args ...any) (bareTask, error) {
	rows, _ := s.pool.Query(ctx, query, args...)
	t, err := pgx.CollectExactlyOneRow(rows, scanPostgresTask)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, errNoTask
	}
	return t, err
}

func (s *barePostgres) list(ctx context.Context, userID string) ([]bareTask, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+bareColumns+` FROM tasks WHERE user_id = $1 ORDER BY created_at DESC, id DESC`, userID)
	tasks, err := pgx.CollectRows(rows, scanPostgresTask)
	if tasks == nil {
		tasks = []bareTask{}
	}
	return tasks, err
}

func (s *barePostgres) get(ctx context.Context, userID, id string) (bareTask, error) {
	return s.one(ctx, `SELECT `+bareColumns+` FROM tasks WHERE id = $1 AND user_id = $2`, id, userID)
}

func (s *barePostgres) create(ctx context.Context, t bareTask) (bareTask, error) {
	return s.one(ctx, `INSERT INTO tasks (`+bareColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+bareColumns,
		t.ID, t.UserID, t.Title, t.Description, t.IsCompleted, t.CreatedAt, t.UpdatedAt)
}

func (s *barePostgres) replace(ctx context.Context, userID, id, title string, description *string, completed *bool) (bareTask, error) {
	return s.one(ctx, `UPDATE tasks SET title = $3, description = $4, is_completed = coalesce($5, is_completed), updated_at = now()
		WHERE id = $1 AND user_id = $2 RETURNING `+bareColumns, id, userID, title, description, completed)
}

func (s *barePostgres) toggle(ctx context.Context, userID, id string) (bareTask, error) {
	return s.one(ctx, `UPDATE tasks SET is_completed = NOT is_completed, updated_at = now()
		WHERE id = $1 AND user_id = $2 RETURNING `+bareColumns, id, userID)
}

func (s *barePostgres) remove(ctx context.Context, userID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM tasks WHERE id = $1 AND user_id = $2`, id, userID)
	if err == nil && tag.RowsAffected() == 0 {
		return errNoTask
	}
	return err
}

// bareSQLite is the store on the SQLite file, in todo-api's format (times
// are unix microseconds). Reads share a small pool; writes go through one
// connection, so the server's own writers never contend for the lock, and
// busy_timeout covers anyone else's. synchronous=FULL, as todo-api: every
// acknowledged write is on disk, as the contract asks (the common recipe's
// NORMAL would skip the fsync of each commit).
type bareSQLite struct{ read, write *sql.DB }

func openBareSQLite(path string) (*bareSQLite, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"
	read, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	read.SetMaxOpenConns(max(4, runtime.NumCPU()))
	read.SetMaxIdleConns(max(4, runtime.NumCPU()))
	write, err := sql.Open("sqlite", dsn)
	if err != nil {
		read.Close()
		return nil, err
	}
	write.SetMaxOpenConns(1)
	return &bareSQLite{read: read, write: write}, nil
}

func (s *bareSQLite) ping(ctx context.Context) error { return s.write.PingContext(ctx) }
func (s *bareSQLite) close()                         { s.read.Close(); s.write.Close() }

type rowScanner interface{ Scan(dest ...any) error }

func scanSQLiteTask(row rowScanner) (bareTask, error) {
	var t bareTask
	var created, updated int64
	err := row.Scan(&t.ID, &t.UserID, &t.Title, &t.Description, &t.IsCompleted, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return t, errNoTask
	}
	t.CreatedAt, t.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return t, err
}

func (s *bareSQLite) list(ctx context.Context, userID string) ([]bareTask, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+bareColumns+` FROM tasks WHERE user_id = ? ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tasks := []bareTask{}
	for rows.Next() {
		t, err := scanSQLiteTask(rows)
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, t)
	}
	return tasks, rows.Err()
}

func (s *bareSQLite) get(ctx context.Context, userID, id string) (bareTask, error) {
	return scanSQLiteTask(s.read.QueryRowContext(ctx, `SELECT `+bareColumns+` FROM tasks WHERE id = ? AND user_id = ?`, id, userID))
}

func (s *bareSQLite) create(ctx context.Context, t bareTask) (bareTask, error) {
	return scanSQLiteTask(s.write.QueryRowContext(ctx, `INSERT INTO tasks (`+bareColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING `+bareColumns,
		t.ID, t.UserID, t.Title, t.Description, t.IsCompleted, t.CreatedAt.UnixMicro(), t.UpdatedAt.UnixMicro()))
}

func (s *bareSQLite) replace(ctx context.Context, userID, id, title string, description *string, completed *bool) (bareTask, error) {
	return scanSQLiteTask(s.write.QueryRowContext(ctx, `UPDATE tasks SET title = ?, description = ?, is_completed = coalesce(?, is_completed), updated_at = ?
		WHERE id = ? AND user_id = ? RETURNING `+bareColumns, title, description, completed, time.Now().UnixMicro(), id, userID))
}

func (s *bareSQLite) toggle(ctx context.Context, userID, id string) (bareTask, error) {
	return scanSQLiteTask(s.write.QueryRowContext(ctx, `UPDATE tasks SET is_completed = NOT is_completed, updated_at = ?
		WHERE id = ? AND user_id = ? RETURNING `+bareColumns, time.Now().UnixMicro(), id, userID))
}

func (s *bareSQLite) remove(ctx context.Context, userID, id string) error {
	res, err := s.write.ExecContext(ctx, `DELETE FROM tasks WHERE id = ? AND user_id = ?`, id, userID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errNoTask
	}
	return err
}
