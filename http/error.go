package http

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	todo "github.com/todo-api/todo-api"
)

// statusOf maps each contract code to its HTTP status.
var statusOf = map[string]int{
	todo.EVALIDATION:         http.StatusBadRequest,
	todo.EINVALIDJSON:        http.StatusBadRequest,
	todo.EUNAUTHORIZED:       http.StatusUnauthorized,
	todo.EINVALIDCREDENTIALS: http.StatusUnauthorized,
	todo.EFORBIDDEN:          http.StatusForbidden,
	todo.ETASKNOTFOUND:       http.StatusNotFound,
	todo.ENOTFOUND:           http.StatusNotFound,
	todo.EMETHODNOTALLOWED:   http.StatusMethodNotAllowed,
	todo.EEMAILTAKEN:         http.StatusConflict,
	todo.ETASKQUOTA:          http.StatusConflict,
	todo.EPAYLOADTOOLARGE:    http.StatusRequestEntityTooLarge,
	todo.EURITOOLONG:         http.StatusRequestURITooLong,
	todo.EUNSUPPORTEDMEDIA:   http.StatusUnsupportedMediaType,
	todo.ERATELIMITED:        http.StatusTooManyRequests,
	todo.EINTERNAL:           http.StatusInternalServerError,
	todo.EUNAVAILABLE:        http.StatusServiceUnavailable,
}

// errorResponse is the contract's error body.
type errorResponse struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// Error writes err as the contract's JSON error. It is the only place that
// writes error responses: it picks the status from the code, logs causes
// that clients must not see, and sends only what the client may know.
// Headers such as Allow or Retry-After are set by the caller beforehand.
func Error(w http.ResponseWriter, r *http.Request, err error) {
	code, message := todo.ErrorCode(err), todo.ErrorMessage(err)
	details := map[string]any{}

	ctx := r.Context()
	info := requestInfoFrom(ctx)
	switch {
	case code == todo.EINTERNAL && errors.Is(err, context.DeadlineExceeded):
		// The request ran out of time, nearly always waiting on the database.
		code, message = todo.EUNAVAILABLE, todo.ErrUnavailable.Message
		info.logger().LogAttrs(ctx, slog.LevelWarn, "request deadline exceeded", slog.String("error", err.Error()))
	case code == todo.EINTERNAL && errors.Is(err, context.Canceled):
		// The client went away; nobody reads this response.
		code, message = todo.EUNAVAILABLE, todo.ErrUnavailable.Message
	case code == todo.EINTERNAL:
		info.logger().LogAttrs(ctx, slog.LevelError, "internal error", slog.String("error", err.Error()))
	case code == todo.EUNAVAILABLE:
		info.logger().LogAttrs(ctx, slog.LevelWarn, "service unavailable", slog.String("error", err.Error()))
	}

	var e *todo.Error
	if errors.As(err, &e) && len(e.Fields) > 0 {
		details["fields"] = e.Fields
	}
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	encode(w, status, errorResponse{Error: errorBody{Code: code, Message: message, Details: details}})
}
