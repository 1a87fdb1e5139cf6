package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	todo "github.com/todo-api/todo-api"
)

// TaskService stores tasks in PostgreSQL. It implements todo.TaskService.
type TaskService struct {
	db *DB
}

var _ todo.TaskService = (*TaskService)(nil)

// NewTaskService returns a TaskService backed by db.
func NewTaskService(db *DB) *TaskService {
	return &TaskService{db: db}
}

// taskColumns is the column list every statement returns, in scanTask's order.
const taskColumns = `id, user_id, title, description, is_completed, created_at, updated_at`

// FindTaskByID returns the user's task with the given id.
// Errors: TASK_NOT_FOUND (also for ids that are not UUIDs), SERVICE_UNAVAILABLE.
func (s *TaskService) FindTaskByID(ctx context.Context, userID, id string) (*todo.Task, error) {
	taskID, ok := parseTaskID(id)
	if !ok {
		return nil, errTaskNotFound()
	}
	var t *todo.Task
	err := s.db.read(ctx, "find task", userID, func(q *userConn) error {
		var err error
		t, err = taskOrNotFound(scanTask(q.QueryRow(ctx,
			`SELECT `+taskColumns+` FROM tasks WHERE id = $1 AND user_id = $2`,
			taskID, userID)))
		return err
	})
	return t, err
}

// FindTasks calls fn for each of the user's tasks, newest first (created_at
// desc, then id desc), and stops at fn's first error, which it returns as is.
// Errors: SERVICE_UNAVAILABLE.
func (s *TaskService) FindTasks(ctx context.Context, userID string, fn func(*todo.Task) error) error {
	var fnErr error
	err := s.db.read(ctx, "find tasks", userID, func(q *userConn) error {
		rows, err := q.Query(ctx,
			`SELECT `+taskColumns+` FROM tasks WHERE user_id = $1 ORDER BY created_at DESC, id DESC`,
			userID)
		if err != nil {
			return err
		}
		defer rows.Close()
		delivered := false
		binary := allBinary(rows.FieldDescriptions())
		for rows.Next() {
			var t *todo.Task
			var err error
			if binary {
				t, err = decodeTask(rows.RawValues())
			} else {
				t, err = scanTask(rows)
			}
			if err != nil {
				return err
			}
			delivered = true
			if fnErr = fn(t); fnErr != nil {
				return nil
			}
		}
		if delivered {
			// The caller has rows already: a broken connection now
			// cannot be retried without handing them over twice.
			return final(rows.Err())
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	return fnErr
}

// CreateTask stores a validated task for the user and sets its ID, UserID,
// CreatedAt and UpdatedAt. The user must exist.
// Errors: TASK_QUOTA_EXCEEDED, SERVICE_UNAVAILABLE.
func (s *TaskService) CreateTask(ctx context.Context, userID string, t *todo.Task) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("create task: new id: %w", err)
	}
	now := s.db.now()
	args := []any{id.String(), userID, t.Title, t.Description, t.IsCompleted, now}

	var created *todo.Task
	err = s.db.run(ctx, "create task", userID, func(q *userConn) error {
		var err error
		if s.db.MaxTasksPerUser <= 0 {
			created, err = scanTask(q.QueryRow(ctx, `
				INSERT INTO tasks (id, user_id, title, description, is_completed, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $6)
				RETURNING `+taskColumns,
				args...))
			return err
		}
		// Locking the owner's row serializes the user's creates, so the
		// count the INSERT checks (taken after the lock, in a new statement
		// of the same batch and so of the same transaction) cannot miss a
		// concurrent insert.
		created, err = scanTask(q.then(`SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID).QueryRow(ctx, `
			INSERT INTO tasks (id, user_id, title, description, is_completed, created_at, updated_at)
			SELECT $1::uuid, $2::text, $3::text, $4::text, $5::boolean, $6::timestamptz, $6::timestamptz
			WHERE (SELECT count(*) FROM tasks WHERE user_id = $2) < $7
			RETURNING `+taskColumns,
			append(args, s.db.MaxTasksPerUser)...))
		if errors.Is(err, pgx.ErrNoRows) {
			return todo.Errorf(todo.ETASKQUOTA, "You have reached the limit of %d tasks; delete some to add more.", s.db.MaxTasksPerUser)
		}
		return err
	})
	if err != nil {
		return err
	}
	*t = *created
	return nil
}

// ReplaceTask replaces the task's title and description, and its completion
// when upd.IsCompleted is set, in one statement.
// Errors: TASK_NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *TaskService) ReplaceTask(ctx context.Context, userID, id string, upd todo.TaskUpdate) (*todo.Task, error) {
	taskID, ok := parseTaskID(id)
	if !ok {
		return nil, errTaskNotFound()
	}
	var t *todo.Task
	err := s.db.run(ctx, "replace task", userID, func(q *userConn) error {
		var err error
		t, err = taskOrNotFound(scanTask(q.QueryRow(ctx, `
			UPDATE tasks
			SET title = $3, description = $4, is_completed = COALESCE($5::boolean, is_completed), updated_at = $6
			WHERE id = $1 AND user_id = $2
			RETURNING `+taskColumns,
			taskID, userID, upd.Title, upd.Description, upd.IsCompleted, s.db.now())))
		return err
	})
	return t, err
}

// ToggleTask flips is_completed atomically, in one statement.
// Errors: TASK_NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *TaskService) ToggleTask(ctx context.Context, userID, id string) (*todo.Task, error) {
	taskID, ok := parseTaskID(id)
	if !ok {
		return nil, errTaskNotFound()
	}
	var t *todo.Task
	err := s.db.run(ctx, "toggle task", userID, func(q *userConn) error {
		var err error
		t, err = taskOrNotFound(scanTask(q.QueryRow(ctx, `
			UPDATE tasks
			SET is_completed = NOT is_completed, updated_at = $3
			WHERE id = $1 AND user_id = $2
			RETURNING `+taskColumns,
			taskID, userID, s.db.now())))
		return err
	})
	return t, err
}

// DeleteTask removes the task.
// Errors: TASK_NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *TaskService) DeleteTask(ctx context.Context, userID, id string) error {
	taskID, ok := parseTaskID(id)
	if !ok {
		return errTaskNotFound()
	}
	return s.db.run(ctx, "delete task", userID, func(q *userConn) error {
		tag, err := q.Exec(ctx, `DELETE FROM tasks WHERE id = $1 AND user_id = $2`, taskID, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errTaskNotFound()
		}
		return nil
	})
}

// scanTask reads one task from a row holding taskColumns; a statement that
// matched no row gives pgx.ErrNoRows.
func scanTask(row pgx.Row) (*todo.Task, error) {
	var t todo.Task
	err := row.Scan(&t.ID, &t.UserID, &t.Title, &t.Description, &t.IsCompleted, &t.CreatedAt, &t.UpdatedAt)
	if err != nil {
		return nil, err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	t.UpdatedAt = t.UpdatedAt.UTC()
	return &t, nil
}

// allBinary reports whether the id, is_completed and timestamp columns
// come in binary format, as they do in the cache_statement, cache_describe
// and describe_exec modes (exec and simple_protocol send text). Text columns
// are the same bytes in either format.
func allBinary(fields []pgconn.FieldDescription) bool {
	if len(fields) != 7 {
		return false
	}
	for i, oid := range map[int]uint32{0: pgtype.UUIDOID, 4: pgtype.BoolOID, 5: pgtype.TimestamptzOID, 6: pgtype.TimestamptzOID} {
		if fields[i].Format != pgx.BinaryFormatCode || fields[i].DataTypeOID != oid {
			return false
		}
	}
	for _, i := range []int{1, 2, 3} {
		if fields[i].DataTypeOID != pgtype.TextOID {
			return false
		}
	}
	return true
}

// pgEpochMicros is where PostgreSQL's binary timestamps count from
// (2000-01-01 UTC), in Unix microseconds.
const pgEpochMicros = 946_684_800_000_000

// decodeTask reads one row of taskColumns in binary format directly. Lists
// are most of the traffic, and pgx's general Scan was a sixth of the
// server's CPU on them; a test holds this to Scan's results.
func decodeTask(raw [][]byte) (*todo.Task, error) {
	if len(raw) != 7 || len(raw[0]) != 16 || len(raw[4]) != 1 || len(raw[5]) != 8 || len(raw[6]) != 8 || raw[1] == nil || raw[2] == nil {
		return nil, fmt.Errorf("decode task: unexpected row shape")
	}
	t := &todo.Task{
		ID:          uuid.UUID(raw[0]).String(),
		UserID:      string(raw[1]),
		Title:       string(raw[2]),
		IsCompleted: raw[4][0] != 0,
		CreatedAt:   time.UnixMicro(pgEpochMicros + int64(binary.BigEndian.Uint64(raw[5]))).UTC(),
		UpdatedAt:   time.UnixMicro(pgEpochMicros + int64(binary.BigEndian.Uint64(raw[6]))).UTC(),
	}
	if raw[3] != nil {
		d := string(raw[3])
		t.Description = &d
	}
	return t, nil
}

// parseTaskID returns id in canonical (lower-case) form, or false when id is
// not a UUID in the 36-character hyphenated form the store hands out. The
// braced, urn: and hyphenless forms uuid.Parse and PostgreSQL also accept
// are not ids here, as in the SQLite store; no task has them, so no query.
func parseTaskID(id string) (string, bool) {
	if len(id) != 36 {
		return "", false
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

func errTaskNotFound() error {
	return todo.Errorf(todo.ETASKNOTFOUND, "Task not found.")
}

// taskOrNotFound maps "no row" to TASK_NOT_FOUND: the task is missing or
// belongs to another user, which the caller must not be able to tell apart.
func taskOrNotFound(t *todo.Task, err error) (*todo.Task, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errTaskNotFound()
	}
	return t, err
}

// now returns the store's clock in UTC, at PostgreSQL's microsecond precision,
// so what a write returns equals what a later read returns.
func (db *DB) now() time.Time {
	return db.Now().UTC().Truncate(time.Microsecond)
}
