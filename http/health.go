package http

import (
	"context"
	"net/http"
	"time"

	todo "github.com/todo-api/todo-api"
)

// handleHealth is liveness: it answers as long as the process serves HTTP
// and never touches the database.
func (s *Server) handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReady is readiness: 200 only when the database answers, migrations
// are applied and the token sources are usable.
func (s *Server) handleReady() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			requestInfoFrom(r.Context()).logger().Warn("not ready", "error", err.Error())
			Error(w, r, todo.Errorf(todo.EUNAVAILABLE, "Not ready: %s", readyReason(err)))
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// readyReason is the part of a readiness failure safe to show: the
// message of a *todo.Error, else a generic phrase.
func readyReason(err error) string {
	if code := todo.ErrorCode(err); code != todo.EINTERNAL {
		return todo.ErrorMessage(err)
	}
	return "a dependency is not available."
}
