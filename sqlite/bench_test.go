package sqlite

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	todo "github.com/todo-api/todo-api"
	"github.com/todo-api/todo-api/todotest"
)

// writers is how many goroutines the write benchmarks run at once: the
// issue's "100 concurrent writers".
const writers = 100

// parallelism returns the b.SetParallelism factor that runs about n goroutines.
func parallelism(n int) int {
	return max(1, n/runtime.GOMAXPROCS(0))
}

// BenchmarkCreateTask measures durable creates from 100 concurrent writers,
// each its own user: the group commit's case.
func BenchmarkCreateTask(b *testing.B) {
	db := MustOpenDB(b, todotest.Config{})
	users, tasks := NewUserService(db), NewTaskService(db)
	for i := range writers {
		todotest.MustEnsureUser(b, users, fmt.Sprintf("user-%d", i))
	}
	var next atomic.Int64
	b.SetParallelism(parallelism(writers))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		userID := fmt.Sprintf("user-%d", next.Add(1)%writers)
		for pb.Next() {
			task := todo.Task{Title: "benchmark task", Description: new("with a description")}
			if err := tasks.CreateTask(context.Background(), userID, &task); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

// BenchmarkCreateTaskSerial is one writer at a time: each create pays its
// own commit, which is what group commit cannot help.
func BenchmarkCreateTaskSerial(b *testing.B) {
	db := MustOpenDB(b, todotest.Config{})
	users, tasks := NewUserService(db), NewTaskService(db)
	todotest.MustEnsureUser(b, users, "alice")
	b.ReportAllocs()
	for b.Loop() {
		task := todo.Task{Title: "benchmark task"}
		if err := tasks.CreateTask(context.Background(), "alice", &task); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkToggleTask measures toggles from 100 concurrent writers, with
// the quota-free single-statement UPDATE ... RETURNING.
func BenchmarkToggleTask(b *testing.B) {
	db := MustOpenDB(b, todotest.Config{})
	users, tasks := NewUserService(db), NewTaskService(db)
	ids := make([]string, writers)
	for i := range writers {
		userID := fmt.Sprintf("user-%d", i)
		todotest.MustEnsureUser(b, users, userID)
		ids[i] = todotest.MustCreateTask(b, tasks, userID, todo.Task{Title: "toggle me"}).ID
	}
	var next atomic.Int64
	b.SetParallelism(parallelism(writers))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1) % writers)
		userID := fmt.Sprintf("user-%d", i)
		for pb.Next() {
			if _, err := tasks.ToggleTask(context.Background(), userID, ids[i]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkFindTasks measures the list query for a user with 50 tasks,
// the mixed workload's most frequent request, from 16 readers.
func BenchmarkFindTasks(b *testing.B) {
	db := MustOpenDB(b, todotest.Config{})
	users, tasks := NewUserService(db), NewTaskService(db)
	const perUser = 50
	for i := range 16 {
		todotest.MustEnsureUser(b, users, fmt.Sprintf("user-%d", i))
	}
	// Round robin, as tasks arrive in a real table: one user's tasks are
	// not next to each other in insertion order.
	for range perUser {
		for i := range 16 {
			todotest.MustCreateTask(b, tasks, fmt.Sprintf("user-%d", i), todo.Task{Title: "list me", Description: new("a description")})
		}
	}
	var next atomic.Int64
	b.SetParallelism(parallelism(16))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		userID := fmt.Sprintf("user-%d", next.Add(1)%16)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for pb.Next() {
			n := 0
			if err := tasks.FindTasks(ctx, userID, func(*todo.Task) error { n++; return nil }); err != nil {
				b.Error(err)
				return
			}
			if n != perUser {
				b.Errorf("FindTasks: got %d tasks, want %d", n, perUser)
				return
			}
		}
	})
}
