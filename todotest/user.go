package todotest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	todo "github.com/todo-api/todo-api"
)

// MustCreateUser stores u and returns it with its ID and times set.
func MustCreateUser(tb testing.TB, users todo.UserService, u todo.User) *todo.User {
	tb.Helper()
	if err := users.CreateUser(context.Background(), &u); err != nil {
		tb.Fatalf("CreateUser(%v): %v", u.Email, err)
	}
	return &u
}

func checkUserTimes(tb testing.TB, what string, u *todo.User) {
	tb.Helper()
	checkTime(tb, what+" CreatedAt", u.CreatedAt)
	checkTime(tb, what+" UpdatedAt", u.UpdatedAt)
}

func (s *suite) testCreateUser(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)

	hash := []byte("$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234")
	u := &todo.User{Email: ptr("alice@example.com"), Name: ptr("Alice Ünicode 🐈"), PasswordHash: hash}
	if err := st.Users.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if u.ID == "" {
		t.Fatalf("CreateUser: ID not set")
	}
	checkUserTimes(t, "created", u)
	now := StoredTime(clock.Now())
	want := &todo.User{ID: u.ID, Email: ptr("alice@example.com"), Name: ptr("Alice Ünicode 🐈"), PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	checkDiff(t, "created", u, want)

	byID := MustFindUserByID(t, st.Users, u.ID)
	checkUserTimes(t, "found by id", byID)
	checkDiff(t, "found by id", byID, want)
	byEmail, err := st.Users.FindUserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatalf("FindUserByEmail: %v", err)
	}
	checkDiff(t, "found by email, password hash included", byEmail, want)

	// A second account without a name gets its own id and a nil name.
	clock.Add(time.Second)
	bob := MustCreateUser(t, st.Users, todo.User{Email: ptr("bob@example.com"), PasswordHash: []byte("other hash")})
	if bob.ID == u.ID {
		t.Errorf("two users got the same id %q", bob.ID)
	}
	bobNow := StoredTime(clock.Now())
	checkDiff(t, "bob found", MustFindUserByID(t, st.Users, bob.ID), &todo.User{
		ID: bob.ID, Email: ptr("bob@example.com"), PasswordHash: []byte("other hash"), CreatedAt: bobNow, UpdatedAt: bobNow,
	})

	// A registered user can own tasks.
	task := MustCreateTask(t, st.Tasks, u.ID, todo.Task{Title: "registered user's task"})
	checkDiff(t, "task of a registered user", MustFindTaskByID(t, st.Tasks, u.ID, task.ID), task)
}

func (s *suite) testCreateUserEmailTaken(t *testing.T) {
	t.Parallel()
	st, _ := s.openStore(t)
	alice := MustCreateUser(t, st.Users, todo.User{Email: ptr("alice@example.com"), Name: ptr("Alice"), PasswordHash: []byte("hash 1")})

	err := st.Users.CreateUser(context.Background(), &todo.User{Email: ptr("alice@example.com"), Name: ptr("Mallory"), PasswordHash: []byte("hash 2")})
	checkCode(t, "CreateUser with a taken email", err, todo.EEMAILTAKEN)
	got, err := st.Users.FindUserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatalf("FindUserByEmail: %v", err)
	}
	checkDiff(t, "the first account", got, alice)

	// Emails that tokens brought in count too.
	if err := st.Users.EnsureUser(context.Background(), todo.Identity{UserID: "ext|1", Email: "carol@example.com"}); err != nil {
		t.Fatalf("EnsureUser: %v", err)
	}
	err = st.Users.CreateUser(context.Background(), &todo.User{Email: ptr("carol@example.com"), PasswordHash: []byte("hash 3")})
	checkCode(t, "CreateUser with an email a token brought", err, todo.EEMAILTAKEN)

	// Concurrent registrations of one email: exactly one wins.
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = st.Users.CreateUser(context.Background(), &todo.User{Email: ptr("dave@example.com"), PasswordHash: fmt.Appendf(nil, "hash %d", i)})
		})
	}
	wg.Wait()
	created := 0
	for i, err := range errs {
		switch todo.ErrorCode(err) {
		case "":
			created++
		case todo.EEMAILTAKEN:
		default:
			t.Errorf("concurrent CreateUser %d: got %v, want success or %s", i, err, todo.EEMAILTAKEN)
		}
	}
	if created != 1 {
		t.Errorf("concurrent registrations of one email that succeeded: got %d, want 1", created)
	}
}

func (s *suite) testUpdatePasswordHash(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)
	alice := MustCreateUser(t, st.Users, todo.User{Email: ptr("alice@example.com"), PasswordHash: []byte("old hash")})
	bob := MustCreateUser(t, st.Users, todo.User{Email: ptr("bob@example.com"), PasswordHash: []byte("bob's hash")})
	clock.Add(time.Minute)
	if err := st.Users.UpdatePasswordHash(context.Background(), alice.ID, []byte("new hash")); err != nil {
		t.Fatalf("UpdatePasswordHash: %v", err)
	}
	got, err := st.Users.FindUserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.PasswordHash) != "new hash" || !got.CreatedAt.Equal(alice.CreatedAt) {
		t.Errorf("after UpdatePasswordHash: hash %q, created_at %v; want new hash, created_at %v", got.PasswordHash, got.CreatedAt, alice.CreatedAt)
	}
	if other, err := st.Users.FindUserByEmail(context.Background(), "bob@example.com"); err != nil || string(other.PasswordHash) != "bob's hash" || other.ID != bob.ID {
		t.Errorf("another account changed: %+v, %v", other, err)
	}
	err = st.Users.UpdatePasswordHash(context.Background(), "missing", []byte("x"))
	checkCode(t, "UpdatePasswordHash(missing)", err, todo.ENOTFOUND)
}

func (s *suite) testFindUserNotFound(t *testing.T) {
	t.Parallel()
	st, _ := s.openStore(t)
	MustCreateUser(t, st.Users, todo.User{Email: ptr("alice@example.com"), PasswordHash: []byte("hash")})
	MustEnsureUser(t, st.Users, "ext|1")

	for _, id := range []string{"missing", "", "' OR 1=1 --", strings.Repeat("x", 10<<10)} {
		u, err := st.Users.FindUserByID(context.Background(), id)
		checkCode(t, fmt.Sprintf("FindUserByID(%.20q)", id), err, todo.ENOTFOUND)
		if u != nil {
			t.Errorf("FindUserByID(%.20q): got %+v with the error, want nil", id, u)
		}
	}
	for _, email := range []string{"bob@example.com", "", "' OR 1=1 --"} {
		u, err := st.Users.FindUserByEmail(context.Background(), email)
		checkCode(t, fmt.Sprintf("FindUserByEmail(%q)", email), err, todo.ENOTFOUND)
		if u != nil {
			t.Errorf("FindUserByEmail(%q): got %+v with the error, want nil", email, u)
		}
	}
}

func (s *suite) testEnsureUserNew(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)

	id := todo.Identity{UserID: "auth0|5f7c8ec7c33c6c004bbafe82", Email: "erin@example.com", Name: "Erin"}
	if err := st.Users.EnsureUser(context.Background(), id); err != nil {
		t.Fatalf("EnsureUser: %v", err)
	}
	now := StoredTime(clock.Now())
	want := &todo.User{ID: id.UserID, Email: ptr("erin@example.com"), Name: ptr("Erin"), CreatedAt: now, UpdatedAt: now}
	got := MustFindUserByID(t, st.Users, id.UserID)
	checkUserTimes(t, "ensured", got)
	checkDiff(t, "ensured user", got, want)
	byEmail, err := st.Users.FindUserByEmail(context.Background(), "erin@example.com")
	if err != nil {
		t.Fatalf("FindUserByEmail: %v", err)
	}
	checkDiff(t, "ensured user by email, no password hash", byEmail, want)

	// The row satisfies the tasks' foreign key at once.
	task := MustCreateTask(t, st.Tasks, id.UserID, todo.Task{Title: "first task"})
	checkDiff(t, "first task", MustFindTaskByID(t, st.Tasks, id.UserID, task.ID), task)

	// Any subject a token may carry is a valid id.
	odd := todo.Identity{UserID: strings.Repeat("é", 100) + "'\"; --"}
	if err := st.Users.EnsureUser(context.Background(), odd); err != nil {
		t.Fatalf("EnsureUser(odd subject): %v", err)
	}
	checkDiff(t, "odd subject", MustFindUserByID(t, st.Users, odd.UserID).ID, odd.UserID)
	MustCreateTask(t, st.Tasks, odd.UserID, todo.Task{Title: "odd subject's task"})
}

func (s *suite) testEnsureUserIdempotent(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)

	id := todo.Identity{UserID: "ext|1", Email: "erin@example.com", Name: "Erin"}
	if err := st.Users.EnsureUser(context.Background(), id); err != nil {
		t.Fatalf("EnsureUser: %v", err)
	}
	first := MustFindUserByID(t, st.Users, id.UserID)
	task := MustCreateTask(t, st.Tasks, id.UserID, todo.Task{Title: "survives"})
	clock.Add(time.Hour)
	if err := st.Users.EnsureUser(context.Background(), id); err != nil {
		t.Fatalf("EnsureUser again: %v", err)
	}
	again := MustFindUserByID(t, st.Users, id.UserID)
	checkDiff(t, "created_at after a second EnsureUser", again.CreatedAt, first.CreatedAt)
	checkDiff(t, "email and name after a second EnsureUser", []*string{again.Email, again.Name}, []*string{first.Email, first.Name})
	checkDiff(t, "task after a second EnsureUser", MustFindTasks(t, st.Tasks, id.UserID), []*todo.Task{task})

	// The first requests of a new user often arrive together.
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = st.Users.EnsureUser(context.Background(), todo.Identity{UserID: "ext|burst", Email: "burst@example.com", Name: "Burst"})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent EnsureUser %d: %v", i, err)
		}
	}
	burst := MustFindUserByID(t, st.Users, "ext|burst")
	checkDiff(t, "burst user's email", burst.Email, ptr("burst@example.com"))
}

func (s *suite) testEnsureUserUpdates(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)

	if err := st.Users.EnsureUser(context.Background(), todo.Identity{UserID: "ext|1", Email: "old@example.com", Name: "Old"}); err != nil {
		t.Fatalf("EnsureUser: %v", err)
	}
	created := StoredTime(clock.Now())
	clock.Add(time.Hour)
	if err := st.Users.EnsureUser(context.Background(), todo.Identity{UserID: "ext|1", Email: "new@example.com", Name: "New"}); err != nil {
		t.Fatalf("EnsureUser with new claims: %v", err)
	}
	updated := StoredTime(clock.Now())
	checkDiff(t, "updated user", MustFindUserByID(t, st.Users, "ext|1"), &todo.User{
		ID: "ext|1", Email: ptr("new@example.com"), Name: ptr("New"), CreatedAt: created, UpdatedAt: updated,
	})

	// Only one claim changing updates only it.
	clock.Add(time.Hour)
	if err := st.Users.EnsureUser(context.Background(), todo.Identity{UserID: "ext|1", Email: "new@example.com", Name: "Newer"}); err != nil {
		t.Fatalf("EnsureUser with a new name: %v", err)
	}
	got := MustFindUserByID(t, st.Users, "ext|1")
	checkDiff(t, "email and name after a name change", []*string{got.Email, got.Name}, []*string{ptr("new@example.com"), ptr("Newer")})

	// The old email is free again.
	MustCreateUser(t, st.Users, todo.User{Email: ptr("old@example.com"), PasswordHash: []byte("hash")})
}

func (s *suite) testEnsureUserEmptyClaims(t *testing.T) {
	t.Parallel()
	st, clock := s.openStore(t)

	if err := st.Users.EnsureUser(context.Background(), todo.Identity{UserID: "ext|1"}); err != nil {
		t.Fatalf("EnsureUser without claims: %v", err)
	}
	now := StoredTime(clock.Now())
	checkDiff(t, "user without claims", MustFindUserByID(t, st.Users, "ext|1"), &todo.User{
		ID: "ext|1", CreatedAt: now, UpdatedAt: now,
	})
	// Two users without an email do not collide on the unique email.
	MustEnsureUser(t, st.Users, "ext|2")
	checkDiff(t, "second user without claims", MustFindUserByID(t, st.Users, "ext|2").Email, (*string)(nil))

	clock.Add(time.Minute)
	if err := st.Users.EnsureUser(context.Background(), todo.Identity{UserID: "ext|1", Email: "one@example.com", Name: "One"}); err != nil {
		t.Fatalf("EnsureUser with claims: %v", err)
	}
	clock.Add(time.Minute)
	for _, id := range []todo.Identity{
		{UserID: "ext|1"},
		{UserID: "ext|1", Email: "one@example.com"},
		{UserID: "ext|1", Name: "One"},
	} {
		if err := st.Users.EnsureUser(context.Background(), id); err != nil {
			t.Fatalf("EnsureUser(%+v): %v", id, err)
		}
		got := MustFindUserByID(t, st.Users, "ext|1")
		checkDiff(t, fmt.Sprintf("after EnsureUser(%+v), empty claims overwrite nothing", id),
			[]*string{got.Email, got.Name}, []*string{ptr("one@example.com"), ptr("One")})
	}

	// One claim changing while the other is absent changes only that one.
	for _, step := range []struct {
		id          todo.Identity
		email, name string
	}{
		{todo.Identity{UserID: "ext|1", Email: "two@example.com"}, "two@example.com", "One"},
		{todo.Identity{UserID: "ext|1", Name: "Two"}, "two@example.com", "Two"},
	} {
		if err := st.Users.EnsureUser(context.Background(), step.id); err != nil {
			t.Fatalf("EnsureUser(%+v): %v", step.id, err)
		}
		got := MustFindUserByID(t, st.Users, "ext|1")
		checkDiff(t, fmt.Sprintf("after EnsureUser(%+v)", step.id),
			[]*string{got.Email, got.Name}, []*string{ptr(step.email), ptr(step.name)})
	}
}

func (s *suite) testEnsureUserEmailOfAnotherAccount(t *testing.T) {
	t.Parallel()
	st, _ := s.openStore(t)
	alice := MustCreateUser(t, st.Users, todo.User{Email: ptr("alice@example.com"), Name: ptr("Alice"), PasswordHash: []byte("hash")})

	// A new subject whose token claims a taken email still gets a row.
	if err := st.Users.EnsureUser(context.Background(), todo.Identity{UserID: "ext|1", Email: "alice@example.com", Name: "Imposter"}); err != nil {
		t.Fatalf("EnsureUser(new subject, taken email): %v", err)
	}
	got := MustFindUserByID(t, st.Users, "ext|1")
	checkDiff(t, "new subject with a taken email", []*string{got.Email, got.Name}, []*string{nil, ptr("Imposter")})
	MustCreateTask(t, st.Tasks, "ext|1", todo.Task{Title: "works anyway"})

	// An existing subject keeps its email and still gets its new name.
	if err := st.Users.EnsureUser(context.Background(), todo.Identity{UserID: "ext|2", Email: "two@example.com", Name: "Two"}); err != nil {
		t.Fatalf("EnsureUser: %v", err)
	}
	if err := st.Users.EnsureUser(context.Background(), todo.Identity{UserID: "ext|2", Email: "alice@example.com", Name: "Two Renamed"}); err != nil {
		t.Fatalf("EnsureUser(existing subject, taken email): %v", err)
	}
	got = MustFindUserByID(t, st.Users, "ext|2")
	checkDiff(t, "existing subject with a taken email", []*string{got.Email, got.Name}, []*string{ptr("two@example.com"), ptr("Two Renamed")})

	// The account that owns the email is untouched.
	byEmail, err := st.Users.FindUserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatalf("FindUserByEmail: %v", err)
	}
	checkDiff(t, "the email's owner", byEmail, alice)
}
