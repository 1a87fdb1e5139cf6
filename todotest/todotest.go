// Package todotest is the conformance suite that every storage engine runs,
// in the spirit of testing/fstest.TestFS: one behaviour, one suite.
package todotest

import (
	"testing"
	"time"

	todo "github.com/todo-api/todo-api"
)

// Store is what the suite needs of an engine.
type Store struct {
	Tasks todo.TaskService
	Users todo.UserService
}

// Opener returns a fresh, empty, migrated store whose clock is now.
// It registers its own cleanup with t.
type Opener func(t *testing.T, now func() time.Time) Store

// TestStore runs the whole conformance suite against the stores open makes.
func TestStore(t *testing.T, open Opener) {
	t.Helper()
	// Filled in by the suite's author.
}
