// Package todotest is the conformance suite that every storage engine runs,
// in the spirit of testing/fstest.TestFS: one behaviour, one suite.
//
// An engine's test file calls TestStore with an Opener that makes a fresh,
// empty, migrated store per call:
//
//	func TestConformance(t *testing.T) {
//		todotest.TestStore(t, func(t *testing.T, cfg todotest.Config) todotest.Store {
//			db := MustOpenDB(t, cfg)
//			return todotest.Store{Tasks: NewTaskService(db), Users: NewUserService(db)}
//		})
//	}
//
// Beyond what the domain's doc comments say, the suite holds stores to
// these choices, so that both engines behave alike:
//   - times come back in UTC, truncated (not rounded) to microseconds;
//   - task ids are version 7 UUIDs in canonical lower-case form, and only the
//     36-character form is an id: braced, urn: and hyphenless spellings of
//     an existing id are TASK_NOT_FOUND, like any other non-UUID;
//   - a canceled context makes every method return an error promptly.
package todotest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	todo "github.com/todo-api/todo-api"
)

// Config is how the suite wants a store made.
type Config struct {
	Now             func() time.Time // the store's clock
	MaxTasksPerUser int              // 0 = no quota
}

// Store is what the suite needs of an engine.
type Store struct {
	Tasks todo.TaskService
	Users todo.UserService
}

// Opener returns a fresh, empty, migrated store built as cfg says.
// It registers its own cleanup with t. The suite calls it once per subtest,
// from parallel subtests.
type Opener func(t *testing.T, cfg Config) Store

// TestStore runs the whole conformance suite against the stores open makes.
func TestStore(t *testing.T, open Opener) {
	t.Helper()
	s := &suite{open: open}
	t.Run("Task", func(t *testing.T) {
		t.Run("Create", s.testCreateTask)
		t.Run("CreateOverwritesServerFields", s.testCreateTaskOverwritesServerFields)
		t.Run("CreateConcurrent", s.testCreateTaskConcurrent)
		t.Run("FindByIDNotFound", s.testFindTaskByIDNotFound)
		t.Run("FindTasksIsolation", s.testFindTasksIsolation)
		t.Run("FindTasksOrder", s.testFindTasksOrder)
		t.Run("FindTasksSameCreatedAt", s.testFindTasksSameCreatedAt)
		t.Run("FindTasksStopsAtError", s.testFindTasksStopsAtError)
		t.Run("FindTasksNone", s.testFindTasksNone)
		t.Run("Replace", s.testReplaceTask)
		t.Run("ReplaceNotFound", s.testReplaceTaskNotFound)
		t.Run("Toggle", s.testToggleTask)
		t.Run("ToggleNotFound", s.testToggleTaskNotFound)
		t.Run("ToggleConcurrent", s.testToggleTaskConcurrent)
		t.Run("Delete", s.testDeleteTask)
		t.Run("DeleteNotFound", s.testDeleteTaskNotFound)
		t.Run("TextRoundTrip", s.testTaskTextRoundTrip)
		t.Run("Quota", s.testTaskQuota)
		t.Run("QuotaConcurrent", s.testTaskQuotaConcurrent)
	})
	t.Run("User", func(t *testing.T) {
		t.Run("Create", s.testCreateUser)
		t.Run("CreateEmailTaken", s.testCreateUserEmailTaken)
		t.Run("FindNotFound", s.testFindUserNotFound)
		t.Run("UpdatePasswordHash", s.testUpdatePasswordHash)
		t.Run("EnsureNew", s.testEnsureUserNew)
		t.Run("EnsureIdempotent", s.testEnsureUserIdempotent)
		t.Run("EnsureUpdates", s.testEnsureUserUpdates)
		t.Run("EnsureEmptyClaims", s.testEnsureUserEmptyClaims)
		t.Run("EnsureEmailOfAnotherAccount", s.testEnsureUserEmailOfAnotherAccount)
	})
	t.Run("CanceledContext", s.testCanceledContext)
}

// suite carries the opener to every subtest.
type suite struct {
	open Opener
}

// openStore opens a store with a fresh clock and no quota.
func (s *suite) openStore(t *testing.T) (Store, *Clock) {
	t.Helper()
	clock := NewClock(startTime())
	return s.open(t, Config{Now: clock.Now}), clock
}

// startTime is where the suite's clocks start: not in UTC and with
// nanoseconds, so that a store that forgets to convert to UTC or to
// truncate to microseconds fails.
func startTime() time.Time {
	return time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+05:30", 5*3600+1800))
}

// Clock is a clock that moves only when told to. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads now until moved.
func NewClock(now time.Time) *Clock {
	return &Clock{now: now}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock by d (which may be negative).
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// StoredTime is what a store must hand back for a time its clock read:
// the same instant in UTC, truncated to microseconds.
func StoredTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// MustEnsureUser makes sure a user row exists for userID, as a request
// carrying a token for it would.
func MustEnsureUser(tb testing.TB, users todo.UserService, userID string) {
	tb.Helper()
	if err := users.EnsureUser(context.Background(), todo.Identity{UserID: userID}); err != nil {
		tb.Fatalf("EnsureUser(%q): %v", userID, err)
	}
}

// MustCreateTask stores t for userID and returns it.
func MustCreateTask(tb testing.TB, tasks todo.TaskService, userID string, t todo.Task) *todo.Task {
	tb.Helper()
	if err := tasks.CreateTask(context.Background(), userID, &t); err != nil {
		tb.Fatalf("CreateTask(%q, %q): %v", userID, t.Title, err)
	}
	return &t
}

// MustFindTaskByID returns the user's task with id.
func MustFindTaskByID(tb testing.TB, tasks todo.TaskService, userID, id string) *todo.Task {
	tb.Helper()
	task, err := tasks.FindTaskByID(context.Background(), userID, id)
	if err != nil {
		tb.Fatalf("FindTaskByID(%q, %q): %v", userID, id, err)
	}
	return task
}

// MustFindTasks returns all of the user's tasks in the order FindTasks gives.
func MustFindTasks(tb testing.TB, tasks todo.TaskService, userID string) []*todo.Task {
	tb.Helper()
	var found []*todo.Task
	err := tasks.FindTasks(context.Background(), userID, func(task *todo.Task) error {
		found = append(found, task)
		return nil
	})
	if err != nil {
		tb.Fatalf("FindTasks(%q): %v", userID, err)
	}
	return found
}

// MustFindUserByID returns the user with id.
func MustFindUserByID(tb testing.TB, users todo.UserService, id string) *todo.User {
	tb.Helper()
	u, err := users.FindUserByID(context.Background(), id)
	if err != nil {
		tb.Fatalf("FindUserByID(%q): %v", id, err)
	}
	return u
}

// checkCode fails the test unless err carries the code want.
func checkCode(tb testing.TB, what string, err error, want string) {
	tb.Helper()
	if got := todo.ErrorCode(err); got != want {
		tb.Errorf("%s: got code %q (err %v), want %q", what, got, err, want)
	}
}

// checkDiff fails the test when got and want differ. cmp compares times
// with time.Time.Equal, so the location is checked by checkTaskTimes.
func checkDiff(tb testing.TB, what string, got, want any) {
	tb.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		tb.Errorf("%s: mismatch (-want +got):\n%s", what, diff)
	}
}

// checkTaskTimes fails the test unless the task's times are in UTC with no
// more than microsecond precision.
func checkTaskTimes(tb testing.TB, what string, task *todo.Task) {
	tb.Helper()
	checkTime(tb, what+" CreatedAt", task.CreatedAt)
	checkTime(tb, what+" UpdatedAt", task.UpdatedAt)
}

func checkTime(tb testing.TB, what string, t time.Time) {
	tb.Helper()
	if t.Location() != time.UTC {
		tb.Errorf("%s: got location %v, want UTC", what, t.Location())
	}
	if t.Nanosecond()%1000 != 0 {
		tb.Errorf("%s: got %v, want microsecond precision", what, t)
	}
}

// checkTaskID fails the test unless id is a version 7 UUID in canonical form.
func checkTaskID(tb testing.TB, id string) {
	tb.Helper()
	parsed, err := uuid.Parse(id)
	if err != nil {
		tb.Errorf("task id %q: not a UUID: %v", id, err)
		return
	}
	if parsed.String() != id {
		tb.Errorf("task id %q: got non-canonical form, want %q", id, parsed.String())
	}
	if v := parsed.Version(); v != 7 {
		tb.Errorf("task id %q: got version %d, want 7", id, v)
	}
}

func ptr[T any](v T) *T { return &v }
