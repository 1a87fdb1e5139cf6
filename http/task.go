package http

import (
	"net/http"
	"net/url"
	"strconv"

	todo "github.com/todo-api/todo-api"
)

// taskBody is what POST and PUT accept. Pointers tell absent or null from
// empty; unknown fields are ignored.
type taskBody struct {
	Title       *string `json:"title"`
	Description *string `json:"description"`
	IsCompleted *bool   `json:"is_completed"`
}

// decodeTask reads a taskBody; a missing or null title is a field error
// reported with the others by Validate.
func decodeTask(r *http.Request) (taskBody, error) {
	var body taskBody
	if err := decode(r, &body); err != nil {
		return body, err
	}
	if body.Title == nil {
		return body, &todo.Error{Code: todo.EVALIDATION, Message: "The request has invalid fields.",
			Fields: []todo.FieldError{{Field: "title", Message: "is required"}}}
	}
	return body, nil
}

// owner returns the user whose tasks the request may touch. On the
// compatibility routes the {user_id} in the path must be the caller.
// Errors: FORBIDDEN.
func owner(r *http.Request, compat bool) (string, error) {
	id := identity(r)
	if compat && r.PathValue("user_id") != id.UserID {
		return "", todo.Errorf(todo.EFORBIDDEN, "The path's user id is not the token's subject.")
	}
	return id.UserID, nil
}

// taskLocation is where a created task can be read again, on the same
// family of routes the client used.
func taskLocation(compat bool, userID, id string) string {
	if compat {
		return "/api/" + url.PathEscape(userID) + "/tasks/" + id
	}
	return "/api/tasks/" + id
}

func (s *Server) handleTaskList(compat bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID, err := owner(r, compat)
		if err != nil {
			Error(w, r, err)
			return
		}
		list := taskListWriter{w: w}
		if err := s.cfg.Tasks.FindTasks(r.Context(), userID, list.add); err != nil {
			if list.started {
				// Part of a 200 is already on the wire; only cutting the
				// connection tells the client the list is incomplete.
				requestInfoFrom(r.Context()).logger().Error("list tasks failed mid-stream", "error", err.Error())
				panic(http.ErrAbortHandler)
			}
			list.release()
			Error(w, r, err)
			return
		}
		list.finish()
	})
}

// taskListWriter encodes {"tasks": [...], "count": n} as the store yields
// tasks. Small lists are buffered whole so that an error can still become
// an error response; long ones are streamed in chunks rather than held.
type taskListWriter struct {
	w       http.ResponseWriter
	buf     *[]byte
	count   int
	started bool
}

const listFlushSize = 64 << 10

func (l *taskListWriter) add(t *todo.Task) error {
	if l.buf == nil {
		l.buf = getBytes()
		*l.buf = append(*l.buf, `{"tasks":[`...)
	}
	if l.count > 0 {
		*l.buf = append(*l.buf, ',')
	}
	*l.buf = appendTask(*l.buf, t)
	l.count++
	if len(*l.buf) >= listFlushSize {
		if !l.started {
			l.w.Header()["Content-Type"] = jsonContentType
			l.w.WriteHeader(http.StatusOK)
			l.started = true
		}
		if _, err := l.w.Write(*l.buf); err != nil {
			return err
		}
		*l.buf = (*l.buf)[:0]
	}
	return nil
}

func (l *taskListWriter) finish() {
	if l.buf == nil {
		l.buf = getBytes()
		*l.buf = append(*l.buf, `{"tasks":[`...)
	}
	*l.buf = append(*l.buf, `],"count":`...)
	*l.buf = strconv.AppendInt(*l.buf, int64(l.count), 10)
	*l.buf = append(*l.buf, "}\n"...)
	if !l.started {
		l.w.Header()["Content-Type"] = jsonContentType
		l.w.Header().Set("Content-Length", strconv.Itoa(len(*l.buf)))
		l.w.WriteHeader(http.StatusOK)
	}
	l.w.Write(*l.buf)
	l.release()
}

func (l *taskListWriter) release() {
	if l.buf != nil {
		putBytes(l.buf)
		l.buf = nil
	}
}

// writeTask writes one task as the response body.
func writeTask(w http.ResponseWriter, status int, t *todo.Task) {
	buf := getBytes()
	defer putBytes(buf)
	*buf = append(appendTask(*buf, t), '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(*buf)))
	w.WriteHeader(status)
	w.Write(*buf)
}

// taskRoute is the shape of the routes that act on tasks: settle whose
// tasks the request may touch, do the work, answer with the task (or only
// a status when there is none), or with the error.
func taskRoute(compat bool, act func(w http.ResponseWriter, r *http.Request, userID string) (int, *todo.Task, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID, err := owner(r, compat)
		if err != nil {
			Error(w, r, err)
			return
		}
		status, task, err := act(w, r, userID)
		switch {
		case err != nil:
			Error(w, r, err)
		case task == nil:
			w.WriteHeader(status)
		default:
			writeTask(w, status, task)
		}
	})
}

func (s *Server) handleTaskCreate(compat bool) http.Handler {
	return taskRoute(compat, func(w http.ResponseWriter, r *http.Request, userID string) (int, *todo.Task, error) {
		body, err := decodeTask(r)
		if err != nil {
			return 0, nil, err
		}
		task := todo.Task{Title: *body.Title, Description: body.Description}
		if body.IsCompleted != nil {
			task.IsCompleted = *body.IsCompleted
		}
		if err := task.Validate(); err != nil {
			return 0, nil, err
		}
		if err := s.cfg.Tasks.CreateTask(r.Context(), userID, &task); err != nil {
			return 0, nil, err
		}
		w.Header().Set("Location", taskLocation(compat, userID, task.ID))
		return http.StatusCreated, &task, nil
	})
}

func (s *Server) handleTaskGet(compat bool) http.Handler {
	return taskRoute(compat, func(w http.ResponseWriter, r *http.Request, userID string) (int, *todo.Task, error) {
		task, err := s.cfg.Tasks.FindTaskByID(r.Context(), userID, r.PathValue("id"))
		return http.StatusOK, task, err
	})
}

func (s *Server) handleTaskReplace(compat bool) http.Handler {
	return taskRoute(compat, func(w http.ResponseWriter, r *http.Request, userID string) (int, *todo.Task, error) {
		body, err := decodeTask(r)
		if err != nil {
			return 0, nil, err
		}
		upd := todo.TaskUpdate{Title: *body.Title, Description: body.Description, IsCompleted: body.IsCompleted}
		if err := upd.Validate(); err != nil {
			return 0, nil, err
		}
		task, err := s.cfg.Tasks.ReplaceTask(r.Context(), userID, r.PathValue("id"), upd)
		return http.StatusOK, task, err
	})
}

func (s *Server) handleTaskToggle(compat bool) http.Handler {
	return taskRoute(compat, func(w http.ResponseWriter, r *http.Request, userID string) (int, *todo.Task, error) {
		task, err := s.cfg.Tasks.ToggleTask(r.Context(), userID, r.PathValue("id"))
		return http.StatusOK, task, err
	})
}

func (s *Server) handleTaskDelete(compat bool) http.Handler {
	return taskRoute(compat, func(w http.ResponseWriter, r *http.Request, userID string) (int, *todo.Task, error) {
		return http.StatusNoContent, nil, s.cfg.Tasks.DeleteTask(r.Context(), userID, r.PathValue("id"))
	})
}
