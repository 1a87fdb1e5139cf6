package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	sqlite3 "modernc.org/sqlite/lib"

	todo "github.com/todo-api/todo-api"
)

// TaskService stores tasks in the database. Every statement names the user,
// so one user's tasks are out of another's reach in SQL itself.
type TaskService struct {
	db *DB
}

var _ todo.TaskService = (*TaskService)(nil)

// NewTaskService returns a TaskService backed by db.
func NewTaskService(db *DB) *TaskService {
	return &TaskService{db: db}
}

const taskColumns = `id, user_id, title, description, is_completed, created_at, updated_at`

// listColumns leaves out user_id, which the list query fixes: copying it
// out of SQLite for every row was a few per cent of a list's CPU.
const listColumns = `id, title, description, is_completed, created_at, updated_at`

func errTaskNotFound() error {
	return todo.Errorf(todo.ETASKNOTFOUND, "Task not found.")
}

// FindTaskByID returns the user's task with the given id.
// Errors: TASK_NOT_FOUND (also for ids that are not UUIDs), SERVICE_UNAVAILABLE.
func (s *TaskService) FindTaskByID(ctx context.Context, userID, id string) (*todo.Task, error) {
	id, ok := parseTaskID(id)
	if !ok {
		return nil, errTaskNotFound()
	}
	release, err := s.db.readSlot(ctx)
	if err != nil {
		return nil, wrapTaskError("find task", err)
	}
	defer release()
	task, err := scanOneTask(s.db.query(ctx,
		`SELECT `+taskColumns+` FROM tasks WHERE id = ? AND user_id = ?`, id, userID))
	if err != nil {
		return nil, wrapTaskError("find task", err)
	}
	return task, nil
}

// FindTasks calls fn for each of the user's tasks, newest first
// (created_at desc, then id desc), and stops at fn's first error.
// Errors: SERVICE_UNAVAILABLE, or whatever fn returns.
func (s *TaskService) FindTasks(ctx context.Context, userID string, fn func(*todo.Task) error) error {
	release, err := s.db.readSlot(ctx)
	if err != nil {
		return wrapError("find tasks", err)
	}
	defer release()
	rows, err := s.db.query(ctx,
		`SELECT `+listColumns+` FROM tasks WHERE user_id = ? ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return wrapError("find tasks", err)
	}
	defer rows.Close()
	for rows.Next() {
		task, err := scanTask(rows, userID)
		if err != nil {
			return wrapError("find tasks", err)
		}
		if err := fn(task); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return wrapError("find tasks", err)
	}
	return nil
}

// CreateTask stores a validated task for the user and sets its ID,
// UserID, CreatedAt and UpdatedAt. The user must exist.
// Errors: TASK_QUOTA_EXCEEDED, SERVICE_UNAVAILABLE.
func (s *TaskService) CreateTask(ctx context.Context, userID string, t *todo.Task) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("create task: new id: %w", err)
	}
	now := s.db.now()
	args := []any{id.String(), userID, t.Title, t.Description, t.IsCompleted, now.UnixMicro(), now.UnixMicro()}
	query := `INSERT INTO tasks (` + taskColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`
	if s.db.MaxTasksPerUser > 0 {
		// The count and the insert are one statement run by the one
		// writer, so concurrent creates cannot both see room for one.
		query = `INSERT INTO tasks (` + taskColumns + `) SELECT ?, ?, ?, ?, ?, ?, ?
			WHERE (SELECT count(*) FROM tasks WHERE user_id = ?) < ?`
		args = append(args, userID, s.db.MaxTasksPerUser)
	}
	err = s.db.write(ctx, "create task", func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.db.txExec(ctx, tx, query, args...)
		if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
			return fmt.Errorf("create task: user %q has no row (EnsureUser first): %w", userID, err)
		} else if err != nil {
			return wrapError("create task", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return wrapError("create task", err)
		}
		if n == 0 {
			return todo.Errorf(todo.ETASKQUOTA, "You have reached the limit of %d tasks; delete some to add more.", s.db.MaxTasksPerUser)
		}
		return nil
	})
	if err != nil {
		return err
	}
	t.ID = id.String()
	t.UserID = userID
	t.CreatedAt = now
	t.UpdatedAt = now
	return nil
}

// ReplaceTask replaces the task's title and description, and its
// completion when upd.IsCompleted is set, in one statement.
// Errors: TASK_NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *TaskService) ReplaceTask(ctx context.Context, userID, id string, upd todo.TaskUpdate) (*todo.Task, error) {
	id, ok := parseTaskID(id)
	if !ok {
		return nil, errTaskNotFound()
	}
	var task *todo.Task
	err := s.db.write(ctx, "replace task", func(ctx context.Context, tx *sql.Tx) (err error) {
		task, err = scanOneTask(s.db.txQuery(ctx, tx,
			`UPDATE tasks SET title = ?, description = ?, is_completed = coalesce(?, is_completed), updated_at = ?
			WHERE id = ? AND user_id = ?
			RETURNING `+taskColumns,
			upd.Title, upd.Description, upd.IsCompleted, s.db.now().UnixMicro(), id, userID))
		return wrapTaskError("replace task", err)
	})
	if err != nil {
		return nil, err
	}
	return task, nil
}

// ToggleTask flips is_completed atomically, in one statement.
// Errors: TASK_NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *TaskService) ToggleTask(ctx context.Context, userID, id string) (*todo.Task, error) {
	id, ok := parseTaskID(id)
	if !ok {
		return nil, errTaskNotFound()
	}
	var task *todo.Task
	err := s.db.write(ctx, "toggle task", func(ctx context.Context, tx *sql.Tx) (err error) {
		task, err = scanOneTask(s.db.txQuery(ctx, tx,
			`UPDATE tasks SET is_completed = NOT is_completed, updated_at = ?
			WHERE id = ? AND user_id = ?
			RETURNING `+taskColumns,
			s.db.now().UnixMicro(), id, userID))
		return wrapTaskError("toggle task", err)
	})
	if err != nil {
		return nil, err
	}
	return task, nil
}

// DeleteTask removes the task.
// Errors: TASK_NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *TaskService) DeleteTask(ctx context.Context, userID, id string) error {
	id, ok := parseTaskID(id)
	if !ok {
		return errTaskNotFound()
	}
	return s.db.write(ctx, "delete task", func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.db.txExec(ctx, tx, `DELETE FROM tasks WHERE id = ? AND user_id = ?`, id, userID)
		if err != nil {
			return wrapError("delete task", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return wrapError("delete task", err)
		}
		if n == 0 {
			return errTaskNotFound()
		}
		return nil
	})
}

// scanOneTask reads the result of a statement that yields at most one
// task. It reads the result to the end rather than stopping at the first
// row, so that an UPDATE ... RETURNING has run to completion, and its error
// been seen, before the task is returned. No row is sql.ErrNoRows.
func scanOneTask(rows *sql.Rows, err error) (*todo.Task, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var task *todo.Task
	for rows.Next() {
		if task, err = scanTask(rows, ""); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if task == nil {
		return nil, sql.ErrNoRows
	}
	return task, nil
}

// scanTask reads a row of taskColumns, or of listColumns when the rows are
// all userID's.
func scanTask(rows *sql.Rows, userID string) (*todo.Task, error) {
	var (
		task                 todo.Task
		description          sql.NullString
		createdAt, updatedAt int64
	)
	var err error
	if userID == "" {
		err = rows.Scan(&task.ID, &task.UserID, &task.Title, &description, &task.IsCompleted, &createdAt, &updatedAt)
	} else {
		task.UserID = userID
		err = rows.Scan(&task.ID, &task.Title, &description, &task.IsCompleted, &createdAt, &updatedAt)
	}
	if err != nil {
		return nil, err
	}
	if description.Valid {
		task.Description = &description.String
	}
	task.CreatedAt = fromMicros(createdAt)
	task.UpdatedAt = fromMicros(updatedAt)
	return &task, nil
}

// wrapTaskError turns no row into TASK_NOT_FOUND and wraps anything else;
// nil stays nil.
func wrapTaskError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return errTaskNotFound()
	}
	return wrapError(op, err)
}
