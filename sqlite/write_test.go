package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	todo "github.com/todo-api/todo-api"
	"github.com/todo-api/todo-api/todotest"
)

// holdWriter queues a write that keeps the writer goroutine busy until the
// returned release is called, so that writes queued meanwhile form the next
// batch. It returns once the writer runs the held write.
func holdWriter(tb testing.TB, db *DB) (release func()) {
	tb.Helper()
	running, hold := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.write(context.Background(), "hold", func(context.Context, *sql.Tx) error {
			close(running)
			<-hold
			return nil
		})
	}()
	<-running
	return func() {
		close(hold)
		if err := <-done; err != nil {
			tb.Errorf("held write: %v", err)
		}
	}
}

// insertUser is a write that adds a users row, then fails when fail is set.
func insertUser(id string, fail error, txs chan<- *sql.Tx) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		txs <- tx
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, created_at, updated_at) VALUES (?, 0, 0)`, id); err != nil {
			return err
		}
		return fail
	}
}

func userIDs(tb testing.TB, db *DB) []string {
	tb.Helper()
	return queryStrings(tb, db, `SELECT id FROM users ORDER BY id`)
}

// TestWriteBatchIsolatesFailures checks that writes sharing a transaction
// commit together, and that one write's failure undoes only its own changes.
func TestWriteBatchIsolatesFailures(t *testing.T) {
	t.Parallel()
	errFail := errors.New("fail after inserting")
	// Queued writes join one batch once they all wait in the queue, which
	// the test cannot observe; it retries until they did.
	for attempt := range 20 {
		db := MustOpenDB(t, todotest.Config{})
		release := holdWriter(t, db)
		txs := make(chan *sql.Tx, 3)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i, fail := range []error{nil, errFail, nil} {
			wg.Go(func() {
				errs[i] = db.write(context.Background(), "insert", insertUser(fmt.Sprintf("user-%d", i), fail, txs))
			})
		}
		time.Sleep(time.Duration(20*(attempt+1)) * time.Millisecond)
		release()
		wg.Wait()
		close(txs)
		first := <-txs
		batched := true
		for tx := range txs {
			batched = batched && tx == first
		}
		if !batched {
			t.Logf("attempt %d: the writes ran in different transactions; retrying", attempt)
			continue
		}

		if errs[0] != nil || errs[2] != nil {
			t.Errorf("the writes that succeeded: got errors %v and %v, want nil", errs[0], errs[2])
		}
		if !errors.Is(errs[1], errFail) {
			t.Errorf("the failing write: got %v, want %v", errs[1], errFail)
		}
		if diff := cmp.Diff([]string{"user-0", "user-2"}, userIDs(t, db)); diff != "" {
			t.Errorf("users after the batch (-want +got):\n%s", diff)
		}
		return
	}
	t.Fatal("the three writes never shared a transaction")
}

// TestWriteCanceledBeforeRunning checks that a caller who gives up while
// its write is queued gets its context's error at once and that the write
// never runs, while the writes around it do.
func TestWriteCanceledBeforeRunning(t *testing.T) {
	t.Parallel()
	db := MustOpenDB(t, todotest.Config{})
	release := holdWriter(t, db)

	ctx, cancel := context.WithCancel(context.Background())
	txs := make(chan *sql.Tx, 2)
	canceled := make(chan error, 1)
	go func() { canceled <- db.write(ctx, "insert", insertUser("canceled", nil, txs)) }()
	kept := make(chan error, 1)
	go func() { kept <- db.write(context.Background(), "insert", insertUser("kept", nil, txs)) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-canceled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("canceled write: got %v, want %v", err, context.Canceled)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("canceled write: still waiting 5s after its context ended")
	}
	release()
	if err := <-kept; err != nil {
		t.Errorf("write queued beside the canceled one: %v", err)
	}
	if diff := cmp.Diff([]string{"kept"}, userIDs(t, db)); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
}

// TestWriteAfterClose checks that writes fail, rather than hang, once the
// database is closed.
func TestWriteAfterClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := NewDB(filepath.Join(t.TempDir(), "todo.db"))
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err := NewTaskService(db).CreateTask(ctx, "late", &todo.Task{Title: "too late"})
	if !errors.Is(err, errClosed) {
		t.Errorf("CreateTask after Close: got %v, want %v", err, errClosed)
	}
}

// TestConcurrentCreatesAllStored checks group commit under load: every
// create that 100 writers see acknowledged is in the file, each exactly
// once, and quota checks stay exact when the creates share transactions.
func TestConcurrentCreatesAllStored(t *testing.T) {
	t.Parallel()
	const limit = 30
	db := MustOpenDB(t, todotest.Config{MaxTasksPerUser: limit})
	users, tasks := NewUserService(db), NewTaskService(db)
	ctx := context.Background()
	todotest.MustEnsureUser(t, users, "alice")
	todotest.MustEnsureUser(t, users, "bob")

	var (
		mu                 sync.Mutex
		acked              = map[string]string{} // task id → user
		quotaErrs, aliceOK int
		wg                 sync.WaitGroup
	)
	for i := range 100 {
		wg.Go(func() {
			// Each user's 50 creates race for 30 places.
			userID := []string{"alice", "bob"}[i%2]
			task := todo.Task{Title: fmt.Sprintf("task %d", i)}
			err := tasks.CreateTask(ctx, userID, &task)
			mu.Lock()
			defer mu.Unlock()
			switch todo.ErrorCode(err) {
			case "":
				acked[task.ID] = userID
				if userID == "alice" {
					aliceOK++
				}
			case todo.ETASKQUOTA:
				quotaErrs++
			default:
				t.Errorf("CreateTask for %s: %v", userID, err)
			}
		})
	}
	wg.Wait()
	if len(acked) != 2*limit || aliceOK != limit || quotaErrs != 100-2*limit {
		t.Errorf("creates: got %d acknowledged (%d for alice) and %d over quota, want %d (%d) and %d",
			len(acked), aliceOK, quotaErrs, 2*limit, limit, 100-2*limit)
	}
	for id, userID := range acked {
		if _, err := tasks.FindTaskByID(ctx, userID, id); err != nil {
			t.Errorf("acknowledged task %s of %s: %v", id, userID, err)
		}
	}
	var stored int
	if err := db.reader.QueryRow(`SELECT count(*) FROM tasks`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(acked) {
		t.Errorf("tasks stored: got %d, want %d", stored, len(acked))
	}
}
