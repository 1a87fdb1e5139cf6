package http

import (
	"context"
	"sync"

	todo "github.com/todo-api/todo-api"
)

// seenUsers remembers which identities already have an up-to-date users
// row, so that EnsureUser costs a database write once per user and claim
// change, not once per request.
type seenUsers struct {
	mu    sync.RWMutex
	max   int
	known map[string]todo.Identity
}

func newSeenUsers(max int) *seenUsers {
	return &seenUsers{max: max, known: make(map[string]todo.Identity)}
}

// ensure calls users.EnsureUser unless id was already ensured as it is.
func (s *seenUsers) ensure(ctx context.Context, users todo.UserService, id todo.Identity) error {
	s.mu.RLock()
	known, ok := s.known[id.UserID]
	s.mu.RUnlock()
	if ok && known == id {
		return nil
	}
	if err := users.EnsureUser(ctx, id); err != nil {
		return err
	}
	s.mu.Lock()
	if len(s.known) >= s.max {
		// Forgetting everyone only costs one upsert per active user.
		clear(s.known)
	}
	s.known[id.UserID] = id
	s.mu.Unlock()
	return nil
}
