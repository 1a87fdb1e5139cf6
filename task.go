package todo

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on a task's fields, in characters (Unicode code points).
const (
	MaxTitleLength       = 500
	MaxDescriptionLength = 5000
)

// Task is one item on a user's list.
type Task struct {
	ID          string    `json:"id"`
	UserID      string    `json:"user_id"`
	Title       string    `json:"title"`
	Description *string   `json:"description"`
	IsCompleted bool      `json:"is_completed"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// TaskUpdate is the full replacement of a task's editable fields (PUT).
// A nil Description clears it; a nil IsCompleted keeps the stored value.
type TaskUpdate struct {
	Title       string
	Description *string
	IsCompleted *bool
}

// Validate trims the title and checks both fields against the limits.
// Errors: VALIDATION_ERROR, listing every bad field.
func (t *Task) Validate() error {
	return validateTaskFields(&t.Title, t.Description)
}

// Validate trims the title and checks both fields against the limits.
// Errors: VALIDATION_ERROR, listing every bad field.
func (u *TaskUpdate) Validate() error {
	return validateTaskFields(&u.Title, u.Description)
}

func validateTaskFields(title *string, description *string) error {
	var fields []FieldError
	*title = strings.TrimSpace(*title)
	if n := utf8.RuneCountInString(*title); n == 0 {
		fields = append(fields, FieldError{"title", "must not be empty"})
	} else if n > MaxTitleLength {
		fields = append(fields, FieldError{"title", "must be at most 500 characters"})
	} else if msg := checkText(*title); msg != "" {
		fields = append(fields, FieldError{"title", msg})
	}
	if description != nil {
		if utf8.RuneCountInString(*description) > MaxDescriptionLength {
			fields = append(fields, FieldError{"description", "must be at most 5000 characters"})
		} else if msg := checkText(*description); msg != "" {
			fields = append(fields, FieldError{"description", msg})
		}
	}
	if len(fields) > 0 {
		return &Error{Code: EVALIDATION, Message: "The request has invalid fields.", Fields: fields}
	}
	return nil
}

// checkText rejects what neither database can store verbatim: invalid UTF-8
// and NUL, which PostgreSQL's text type refuses.
func checkText(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "must not contain NUL characters"
	}
	return ""
}

// TaskService stores tasks. Every method acts only on the tasks of the user
// it is given; a task of another user behaves exactly like a missing one.
type TaskService interface {
	// FindTaskByID returns the user's task with the given id.
	// Errors: TASK_NOT_FOUND (also for ids that are not UUIDs), SERVICE_UNAVAILABLE.
	FindTaskByID(ctx context.Context, userID, id string) (*Task, error)

	// FindTasks calls fn for each of the user's tasks, newest first
	// (created_at desc, then id desc), and stops at fn's first error.
	// Errors: SERVICE_UNAVAILABLE, or whatever fn returns.
	FindTasks(ctx context.Context, userID string, fn func(*Task) error) error

	// CreateTask stores a validated task for the user and sets its ID,
	// UserID, CreatedAt and UpdatedAt. The user must exist.
	// Errors: TASK_QUOTA_EXCEEDED, SERVICE_UNAVAILABLE.
	CreateTask(ctx context.Context, userID string, t *Task) error

	// ReplaceTask replaces the task's title and description, and its
	// completion when upd.IsCompleted is set, in one statement.
	// Errors: TASK_NOT_FOUND, SERVICE_UNAVAILABLE.
	ReplaceTask(ctx context.Context, userID, id string, upd TaskUpdate) (*Task, error)

	// ToggleTask flips is_completed atomically, in one statement.
	// Errors: TASK_NOT_FOUND, SERVICE_UNAVAILABLE.
	ToggleTask(ctx context.Context, userID, id string) (*Task, error)

	// DeleteTask removes the task.
	// Errors: TASK_NOT_FOUND, SERVICE_UNAVAILABLE.
	DeleteTask(ctx context.Context, userID, id string) error
}
