package http

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	todo "github.com/todo-api/todo-api"
)

func benchTasks(n int) []*todo.Task {
	desc := "Two litres, the organic one from the corner shop"
	now := time.Date(2026, 11, 25, 19, 9, 18, 123456000, time.UTC)
	tasks := make([]*todo.Task, n)
	for i := range tasks {
		tasks[i] = &todo.Task{ID: "01a2142b-8312-7007-a316-b0d50a675e65", UserID: "user_2x9KqLmN", Title: "Buy milk and eggs",
			Description: &desc, IsCompleted: i%2 == 0, CreatedAt: now, UpdatedAt: now}
	}
	return tasks
}

// BenchmarkMarshalTaskList is encoding/json on a 50-task list, the body of
// the most frequent request: the baseline for appendTask.
func BenchmarkMarshalTaskList(b *testing.B) {
	tasks := benchTasks(50)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		for _, t := range tasks {
			out, _ := json.Marshal(t)
			buf.Write(out)
		}
	}
}

// BenchmarkAppendTaskList is the same list through appendTask, which the
// server uses.
func BenchmarkAppendTaskList(b *testing.B) {
	tasks := benchTasks(50)
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for _, t := range tasks {
			buf = appendTask(buf, t)
		}
	}
}
