package todotest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	todo "github.com/todo-api/todo-api"
)

// notUUIDs returns ids that are not UUIDs in the contract's sense, several
// of them spellings of existing that a lenient parser would accept. Each must
// behave like a missing task: TASK_NOT_FOUND, never INTERNAL.
func notUUIDs(existing string) map[string]string {
	return map[string]string{
		"word":          "abc",
		"empty":         "",
		"sql injection": "' OR 1=1 --",
		"braces":        "{" + existing + "}",
		"urn":           "urn:uuid:" + existing,
		"no hyphens":    strings.ReplaceAll(existing, "-", ""),
		"trailing":      existing + " ",
		"truncated":     existing[:len(existing)-1],
		"bad hex":       "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
		"10 KB":         strings.Repeat("a", 10<<10),
		"NUL":           existing[:8] + "\x00" + existing[9:],
	}
}

func (s *suite) testCreateTask(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)
	MustEnsureUser(t, st.Users, "auth0|alice")

	task := &todo.Task{Title: "Buy milk", Description: ptr("2 litres")}
	if err := st.Tasks.CreateTask(context.Background(), "auth0|alice", task); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	checkTaskID(t, task.ID)
	checkTaskTimes(t, "created", task)
	now := StoredTime(clock.Now())
	want := &todo.Task{
		ID: task.ID, UserID: "auth0|alice", Title: "Buy milk", Description: ptr("2 litres"),
		IsCompleted: false, CreatedAt: now, UpdatedAt: now,
	}
	checkDiff(t, "created", task, want)

	got := MustFindTaskByID(t, st.Tasks, "auth0|alice", task.ID)
	checkTaskTimes(t, "found", got)
	checkDiff(t, "found", got, want)

	// A task may be created already completed, and without a description.
	done := MustCreateTask(t, st.Tasks, "auth0|alice", todo.Task{Title: "Done already", IsCompleted: true})
	checkDiff(t, "created completed", MustFindTaskByID(t, st.Tasks, "auth0|alice", done.ID), &todo.Task{
		ID: done.ID, UserID: "auth0|alice", Title: "Done already", IsCompleted: true, CreatedAt: now, UpdatedAt: now,
	})
	if done.ID == task.ID {
		t.Errorf("two tasks got the same id %q", done.ID)
	}
}

func (s *suite) testCreateTaskOverwritesServerFields(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	MustEnsureUser(t, st.Users, "bob")

	// The caller's ID, UserID and times are not the store's to trust.
	bogus := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	task := MustCreateTask(t, st.Tasks, "alice", todo.Task{
		ID: "00000000-0000-7000-8000-000000000000", UserID: "bob", Title: "Mine",
		CreatedAt: bogus, UpdatedAt: bogus,
	})
	checkTaskID(t, task.ID)
	now := StoredTime(clock.Now())
	want := &todo.Task{ID: task.ID, UserID: "alice", Title: "Mine", CreatedAt: now, UpdatedAt: now}
	checkDiff(t, "created", task, want)
	checkDiff(t, "found", MustFindTaskByID(t, st.Tasks, "alice", task.ID), want)
	if n := len(MustFindTasks(t, st.Tasks, "bob")); n != 0 {
		t.Errorf("bob: got %d tasks, want 0", n)
	}
}

func (s *suite) testCreateTaskConcurrent(t *testing.T) {
	t.Parallel()
	st, _ := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")

	const n = 200
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			task := todo.Task{Title: fmt.Sprintf("task %d", i)}
			errs[i] = st.Tasks.CreateTask(context.Background(), "alice", &task)
			ids[i] = task.ID
		})
	}
	wg.Wait()
	distinct := make(map[string]bool)
	for i, err := range errs {
		if err != nil {
			t.Errorf("CreateTask %d: %v", i, err)
			continue
		}
		distinct[ids[i]] = true
	}
	if len(distinct) != n {
		t.Errorf("got %d distinct ids, want %d", len(distinct), n)
	}
	found := MustFindTasks(t, st.Tasks, "alice")
	if len(found) != n {
		t.Errorf("FindTasks: got %d tasks, want %d", len(found), n)
	}
	for _, task := range found {
		if !distinct[task.ID] {
			t.Errorf("FindTasks returned %q, which no CreateTask returned", task.ID)
		}
	}
}

func (s *suite) testFindTaskByIDNotFound(t *testing.T) {
	t.Parallel()
	st, _ := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	MustEnsureUser(t, st.Users, "bob")
	task := MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: "Alice's"})

	ids := notUUIDs(task.ID)
	ids["missing"] = uuid.Must(uuid.NewV7()).String()
	ids["nil UUID"] = uuid.Nil.String()
	for name, id := range ids {
		got, err := st.Tasks.FindTaskByID(context.Background(), "alice", id)
		checkCode(t, "FindTaskByID "+name, err, todo.ETASKNOTFOUND)
		if got != nil {
			t.Errorf("FindTaskByID %s: got task %+v with the error, want nil", name, got)
		}
	}
	got, err := st.Tasks.FindTaskByID(context.Background(), "bob", task.ID)
	checkCode(t, "FindTaskByID of another user's task", err, todo.ETASKNOTFOUND)
	if got != nil {
		t.Errorf("FindTaskByID of another user's task: got %+v, want nil", got)
	}
	// A user with no row at all sees nothing either.
	_, err = st.Tasks.FindTaskByID(context.Background(), "nobody", task.ID)
	checkCode(t, "FindTaskByID by an unknown user", err, todo.ETASKNOTFOUND)
}

func (s *suite) testFindTasksIsolation(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	MustEnsureUser(t, st.Users, "bob")

	var alices, bobs []*todo.Task
	for i := range 3 {
		alices = append(alices, MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: fmt.Sprintf("alice %d", i)}))
		bobs = append(bobs, MustCreateTask(t, st.Tasks, "bob", todo.Task{Title: fmt.Sprintf("bob %d", i)}))
		clock.Add(time.Second)
	}
	slices.Reverse(alices)
	slices.Reverse(bobs)
	checkDiff(t, "alice's tasks", MustFindTasks(t, st.Tasks, "alice"), alices)
	checkDiff(t, "bob's tasks", MustFindTasks(t, st.Tasks, "bob"), bobs)
	if got := MustFindTasks(t, st.Tasks, "nobody"); len(got) != 0 {
		t.Errorf("unknown user: got %d tasks, want 0", len(got))
	}
}

// sortNewestFirst sorts tasks the way FindTasks must return them.
func sortNewestFirst(tasks []*todo.Task) {
	slices.SortFunc(tasks, func(a, b *todo.Task) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
}

func (s *suite) testFindTasksOrder(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")

	// The clock runs backwards and in microsecond steps for some tasks, so
	// id order (v7 ids grow with real time) disagrees with created_at order
	// and only an exact created_at comparison sorts right.
	steps := []time.Duration{-time.Hour, time.Microsecond, -time.Microsecond, 2 * time.Microsecond, 24 * time.Hour, -time.Second, time.Microsecond}
	var want []*todo.Task
	for i, step := range steps {
		clock.Add(step)
		want = append(want, MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: fmt.Sprintf("task %d", i)}))
	}
	sortNewestFirst(want)
	got := MustFindTasks(t, st.Tasks, "alice")
	for _, task := range got {
		checkTaskTimes(t, "listed", task)
	}
	checkDiff(t, "tasks newest first", got, want)
}

func (s *suite) testFindTasksSameCreatedAt(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")

	var want []*todo.Task
	for i := range 5 {
		want = append(want, MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: fmt.Sprintf("tied %d", i)}))
	}
	clock.Add(time.Microsecond)
	for i := range 3 {
		want = append(want, MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: fmt.Sprintf("later %d", i)}))
	}
	sortNewestFirst(want)
	checkDiff(t, "tasks with equal created_at, id desc", MustFindTasks(t, st.Tasks, "alice"), want)
}

func (s *suite) testFindTasksStopsAtError(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	var newest *todo.Task
	for i := range 3 {
		newest = MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: fmt.Sprintf("task %d", i)})
		clock.Add(time.Second)
	}

	errStop := errors.New("stop here")
	var seen []string
	err := st.Tasks.FindTasks(context.Background(), "alice", func(task *todo.Task) error {
		seen = append(seen, task.ID)
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Errorf("FindTasks: got error %v, want fn's error %v", err, errStop)
	}
	checkDiff(t, "tasks seen before the error", seen, []string{newest.ID})

	// The store is still usable after an early stop.
	if n := len(MustFindTasks(t, st.Tasks, "alice")); n != 3 {
		t.Errorf("FindTasks after an early stop: got %d tasks, want 3", n)
	}
}

func (s *suite) testFindTasksNone(t *testing.T) {
	t.Parallel()
	st, _ := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	MustEnsureUser(t, st.Users, "bob")
	MustCreateTask(t, st.Tasks, "bob", todo.Task{Title: "Bob's"})

	calls := 0
	err := st.Tasks.FindTasks(context.Background(), "alice", func(*todo.Task) error {
		calls++
		return nil
	})
	if err != nil {
		t.Errorf("FindTasks: got error %v, want nil", err)
	}
	if calls != 0 {
		t.Errorf("FindTasks: fn called %d times, want 0", calls)
	}
}

func (s *suite) testReplaceTask(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	task := MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: "Old", Description: ptr("old text"), IsCompleted: true})
	created := task.CreatedAt

	steps := []struct {
		name string
		upd  todo.TaskUpdate
		want todo.Task // only Title, Description, IsCompleted
	}{
		{"nil description clears it, nil completion keeps true",
			todo.TaskUpdate{Title: "New"},
			todo.Task{Title: "New", IsCompleted: true}},
		{"set description and completion false",
			todo.TaskUpdate{Title: "Newer", Description: ptr("new text"), IsCompleted: ptr(false)},
			todo.Task{Title: "Newer", Description: ptr("new text"), IsCompleted: false}},
		{"nil completion keeps false, empty description is not nil",
			todo.TaskUpdate{Title: "Newest", Description: ptr("")},
			todo.Task{Title: "Newest", Description: ptr(""), IsCompleted: false}},
		{"completion true",
			todo.TaskUpdate{Title: "Newest", Description: ptr(""), IsCompleted: ptr(true)},
			todo.Task{Title: "Newest", Description: ptr(""), IsCompleted: true}},
	}
	for _, step := range steps {
		clock.Add(90*time.Second + 1234*time.Nanosecond)
		got, err := st.Tasks.ReplaceTask(context.Background(), "alice", task.ID, step.upd)
		if err != nil {
			t.Fatalf("%s: ReplaceTask: %v", step.name, err)
		}
		want := &todo.Task{
			ID: task.ID, UserID: "alice", Title: step.want.Title, Description: step.want.Description,
			IsCompleted: step.want.IsCompleted, CreatedAt: created, UpdatedAt: StoredTime(clock.Now()),
		}
		checkTaskTimes(t, step.name, got)
		checkDiff(t, step.name+": returned", got, want)
		checkDiff(t, step.name+": found", MustFindTaskByID(t, st.Tasks, "alice", task.ID), want)
	}
}

func (s *suite) testReplaceTaskNotFound(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	MustEnsureUser(t, st.Users, "bob")
	task := MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: "Alice's", Description: ptr("keep")})
	clock.Add(time.Minute)

	upd := todo.TaskUpdate{Title: "Hijacked", IsCompleted: ptr(true)}
	got, err := st.Tasks.ReplaceTask(context.Background(), "bob", task.ID, upd)
	checkCode(t, "ReplaceTask of another user's task", err, todo.ETASKNOTFOUND)
	if got != nil {
		t.Errorf("ReplaceTask of another user's task: got %+v, want nil", got)
	}
	ids := notUUIDs(task.ID)
	ids["missing"] = uuid.Must(uuid.NewV7()).String()
	for name, id := range ids {
		_, err := st.Tasks.ReplaceTask(context.Background(), "alice", id, upd)
		checkCode(t, "ReplaceTask "+name, err, todo.ETASKNOTFOUND)
	}
	checkDiff(t, "alice's task after the attempts", MustFindTaskByID(t, st.Tasks, "alice", task.ID), task)
}

func (s *suite) testToggleTask(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	task := MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: "Flip me", Description: ptr("as is")})

	for i, wantCompleted := range []bool{true, false, true} {
		clock.Add(time.Duration(i+1) * time.Millisecond)
		got, err := st.Tasks.ToggleTask(context.Background(), "alice", task.ID)
		if err != nil {
			t.Fatalf("ToggleTask %d: %v", i, err)
		}
		want := *task
		want.IsCompleted = wantCompleted
		want.UpdatedAt = StoredTime(clock.Now())
		checkTaskTimes(t, "toggled", got)
		checkDiff(t, fmt.Sprintf("toggle %d: returned", i), got, &want)
		checkDiff(t, fmt.Sprintf("toggle %d: found", i), MustFindTaskByID(t, st.Tasks, "alice", task.ID), &want)
	}
}

func (s *suite) testToggleTaskNotFound(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	MustEnsureUser(t, st.Users, "bob")
	task := MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: "Alice's"})
	clock.Add(time.Minute)

	got, err := st.Tasks.ToggleTask(context.Background(), "bob", task.ID)
	checkCode(t, "ToggleTask of another user's task", err, todo.ETASKNOTFOUND)
	if got != nil {
		t.Errorf("ToggleTask of another user's task: got %+v, want nil", got)
	}
	ids := notUUIDs(task.ID)
	ids["missing"] = uuid.Must(uuid.NewV7()).String()
	for name, id := range ids {
		_, err := st.Tasks.ToggleTask(context.Background(), "alice", id)
		checkCode(t, "ToggleTask "+name, err, todo.ETASKNOTFOUND)
	}
	checkDiff(t, "alice's task after the attempts", MustFindTaskByID(t, st.Tasks, "alice", task.ID), task)
}

func (s *suite) testToggleTaskConcurrent(t *testing.T) {
	t.Parallel()
	st, _ := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	task := MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: "Contended"})

	// An even number of flips must end where it started; a lost update
	// (read, flip in Go, write) ends there only by luck, and the count of
	// true results tells the story anyway.
	const n = 100
	results := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got, err := st.Tasks.ToggleTask(context.Background(), "alice", task.ID)
			errs[i] = err
			if err == nil {
				results[i] = got.IsCompleted
			}
		})
	}
	wg.Wait()
	trues := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("ToggleTask %d: %v", i, err)
		}
		if results[i] {
			trues++
		}
	}
	// Each toggle returns the state it produced: n serial flips from false
	// produce true exactly n/2 times.
	if trues != n/2 {
		t.Errorf("toggles that returned true: got %d, want %d", trues, n/2)
	}
	if got := MustFindTaskByID(t, st.Tasks, "alice", task.ID); got.IsCompleted != task.IsCompleted {
		t.Errorf("after %d concurrent toggles: got is_completed %v, want %v", n, got.IsCompleted, task.IsCompleted)
	}
}

func (s *suite) testDeleteTask(t *testing.T) {
	t.Parallel()
	st, _ := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	task := MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: "Doomed"})
	keep := MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: "Kept"})

	if err := st.Tasks.DeleteTask(context.Background(), "alice", task.ID); err != nil {
		t.Fatalf("DeleteTask: %v", err)
	}
	_, err := st.Tasks.FindTaskByID(context.Background(), "alice", task.ID)
	checkCode(t, "FindTaskByID after delete", err, todo.ETASKNOTFOUND)
	err = st.Tasks.DeleteTask(context.Background(), "alice", task.ID)
	checkCode(t, "DeleteTask again", err, todo.ETASKNOTFOUND)
	checkDiff(t, "tasks left", MustFindTasks(t, st.Tasks, "alice"), []*todo.Task{keep})
}

func (s *suite) testDeleteTaskNotFound(t *testing.T) {
	t.Parallel()
	st, _ := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	MustEnsureUser(t, st.Users, "bob")
	task := MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: "Alice's"})

	err := st.Tasks.DeleteTask(context.Background(), "bob", task.ID)
	checkCode(t, "DeleteTask of another user's task", err, todo.ETASKNOTFOUND)
	ids := notUUIDs(task.ID)
	ids["missing"] = uuid.Must(uuid.NewV7()).String()
	for name, id := range ids {
		err := st.Tasks.DeleteTask(context.Background(), "alice", id)
		checkCode(t, "DeleteTask "+name, err, todo.ETASKNOTFOUND)
	}
	checkDiff(t, "alice's task after the attempts", MustFindTaskByID(t, st.Tasks, "alice", task.ID), task)
}

func (s *suite) testTaskTextRoundTrip(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")

	texts := []struct {
		name        string
		title       string
		description *string
	}{
		{"emoji", "Feed 🐈 and 👩🏽‍💻 family 👨‍👩‍👧‍👦", ptr("🎉🎉🎉")},
		{"CJK", "買い物リスト 购物清单 장보기", ptr("牛乳を買う")},
		{"combining marks kept, not normalized", "e\u0301 vs \u00e9, Z\u0335\u0321a\u0336l\u0337g\u0338o", ptr("a\u0308\u0304")},
		{"SQL", "Robert'); DROP TABLE tasks;--", ptr("' OR '1'='1\"; --")},
		{"HTML", "<script>alert(1)</script>", ptr("<b>&amp;</b>")},
		{"backslashes and percent", `C:\path\%_\n`, ptr(`\x00 %s %% _`)},
		{"whitespace inside", "tab\there\nnewline\r\nend", ptr("  leading and trailing  ")},
		{"500 four-byte code points", strings.Repeat("𝄞", todo.MaxTitleLength), ptr(strings.Repeat("😀", todo.MaxDescriptionLength))},
		{"5000-character description", "long", ptr(strings.Repeat("abcdé", todo.MaxDescriptionLength/5))},
		{"empty description", "empty", ptr("")},
		{"nil description", "none", nil},
	}
	var want []*todo.Task
	for _, text := range texts {
		clock.Add(time.Second)
		task := MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: text.title, Description: text.description})
		checkDiff(t, text.name+": created", task.Title, text.title)
		checkDiff(t, text.name+": found", MustFindTaskByID(t, st.Tasks, "alice", task.ID), task)
		want = append(want, task)

		// The same text written by ReplaceTask comes back just as verbatim.
		other := MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: "placeholder", Description: ptr("x")})
		replaced, err := st.Tasks.ReplaceTask(context.Background(), "alice", other.ID, todo.TaskUpdate{Title: text.title, Description: text.description})
		if err != nil {
			t.Fatalf("%s: ReplaceTask: %v", text.name, err)
		}
		checkDiff(t, text.name+": replaced title", replaced.Title, text.title)
		checkDiff(t, text.name+": replaced description", replaced.Description, text.description)
		checkDiff(t, text.name+": found replaced", MustFindTaskByID(t, st.Tasks, "alice", other.ID), replaced)
		want = append(want, replaced)
	}
	sortNewestFirst(want)
	checkDiff(t, "listed", MustFindTasks(t, st.Tasks, "alice"), want)
}

func (s *suite) testTaskQuota(t *testing.T) {
	t.Parallel()
	clock := NewClock(startTime())
	st := s.open(t, Config{Now: clock.Now, MaxTasksPerUser: 3})
	MustEnsureUser(t, st.Users, "alice")
	MustEnsureUser(t, st.Users, "bob")

	var alices []*todo.Task
	for i := range 3 {
		alices = append(alices, MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: fmt.Sprintf("alice %d", i)}))
	}
	over := todo.Task{Title: "one too many"}
	err := st.Tasks.CreateTask(context.Background(), "alice", &over)
	checkCode(t, "fourth CreateTask", err, todo.ETASKQUOTA)
	if n := len(MustFindTasks(t, st.Tasks, "alice")); n != 3 {
		t.Errorf("after the refused create: got %d tasks, want 3", n)
	}

	// The quota is per user.
	for i := range 3 {
		MustCreateTask(t, st.Tasks, "bob", todo.Task{Title: fmt.Sprintf("bob %d", i)})
	}

	if err := st.Tasks.DeleteTask(context.Background(), "alice", alices[0].ID); err != nil {
		t.Fatalf("DeleteTask: %v", err)
	}
	MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: "fits again"})
	err = st.Tasks.CreateTask(context.Background(), "alice", &todo.Task{Title: "full again"})
	checkCode(t, "CreateTask when full again", err, todo.ETASKQUOTA)
}

func (s *suite) testTaskQuotaConcurrent(t *testing.T) {
	t.Parallel()
	clock := NewClock(startTime())
	st := s.open(t, Config{Now: clock.Now, MaxTasksPerUser: 5})
	MustEnsureUser(t, st.Users, "alice")

	const n, quota = 20, 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = st.Tasks.CreateTask(context.Background(), "alice", &todo.Task{Title: fmt.Sprintf("task %d", i)})
		})
	}
	wg.Wait()
	created := 0
	for i, err := range errs {
		switch todo.ErrorCode(err) {
		case "":
			created++
		case todo.ETASKQUOTA:
		default:
			t.Errorf("CreateTask %d: got %v, want success or %s", i, err, todo.ETASKQUOTA)
		}
	}
	if created != quota {
		t.Errorf("concurrent creates that succeeded: got %d, want %d", created, quota)
	}
	if got := len(MustFindTasks(t, st.Tasks, "alice")); got != quota {
		t.Errorf("stored tasks: got %d, want %d", got, quota)
	}
}

// testCanceledContext checks that every method gives up on a canceled
// context with an error, without panicking or hanging.
func (s *suite) testCanceledContext(t *testing.T) {
	t.Parallel()
	st, _ := s.openStore(t)
	MustEnsureUser(t, st.Users, "alice")
	task := MustCreateTask(t, st.Tasks, "alice", todo.Task{Title: "Alice's"})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"FindTaskByID": func() error { _, err := st.Tasks.FindTaskByID(ctx, "alice", task.ID); return err },
		"FindTasks": func() error {
			return st.Tasks.FindTasks(ctx, "alice", func(*todo.Task) error { return nil })
		},
		"CreateTask": func() error { return st.Tasks.CreateTask(ctx, "alice", &todo.Task{Title: "never"}) },
		"ReplaceTask": func() error {
			_, err := st.Tasks.ReplaceTask(ctx, "alice", task.ID, todo.TaskUpdate{Title: "never"})
			return err
		},
		"ToggleTask": func() error { _, err := st.Tasks.ToggleTask(ctx, "alice", task.ID); return err },
		"DeleteTask": func() error { return st.Tasks.DeleteTask(ctx, "alice", task.ID) },
		"CreateUser": func() error {
			return st.Users.CreateUser(ctx, &todo.User{Email: ptr("never@example.com"), PasswordHash: []byte("hash")})
		},
		"FindUserByID":    func() error { _, err := st.Users.FindUserByID(ctx, "alice"); return err },
		"FindUserByEmail": func() error { _, err := st.Users.FindUserByEmail(ctx, "alice@example.com"); return err },
		"EnsureUser":      func() error { return st.Users.EnsureUser(ctx, todo.Identity{UserID: "carol"}) },
	}
	for name, call := range calls {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s with a canceled context: got nil error", name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s with a canceled context: still running after 10s", name)
		}
	}
	// Nothing a canceled call attempted happened.
	checkDiff(t, "task after canceled calls", MustFindTaskByID(t, st.Tasks, "alice", task.ID), task)
	if _, err := st.Users.FindUserByID(context.Background(), "carol"); todo.ErrorCode(err) != todo.ENOTFOUND {
		t.Errorf("FindUserByID(carol) after a canceled EnsureUser: got %v, want %s", err, todo.ENOTFOUND)
	}
}
