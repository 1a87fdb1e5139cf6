package todo

import (
	"errors"
	"fmt"
)

// Error codes. They are the contract's codes: the http package maps each to
// its status and writes it as error.code.
const (
	EVALIDATION         = "VALIDATION_ERROR"
	EINVALIDJSON        = "INVALID_JSON"
	EUNAUTHORIZED       = "UNAUTHORIZED"
	EINVALIDCREDENTIALS = "INVALID_CREDENTIALS"
	EFORBIDDEN          = "FORBIDDEN"
	ETASKNOTFOUND       = "TASK_NOT_FOUND"
	ENOTFOUND           = "NOT_FOUND"
	EMETHODNOTALLOWED   = "METHOD_NOT_ALLOWED"
	EEMAILTAKEN         = "EMAIL_TAKEN"
	ETASKQUOTA          = "TASK_QUOTA_EXCEEDED"
	EPAYLOADTOOLARGE    = "PAYLOAD_TOO_LARGE"
	EURITOOLONG         = "URI_TOO_LONG"
	EUNSUPPORTEDMEDIA   = "UNSUPPORTED_MEDIA_TYPE"
	ERATELIMITED        = "RATE_LIMITED"
	EINTERNAL           = "INTERNAL"
	EUNAVAILABLE        = "SERVICE_UNAVAILABLE"
)

// Error is an error a client can act on: its Code is one of the constants
// above and its Message is safe to show. Anything that is not an *Error is
// internal and reaches clients only as INTERNAL.
type Error struct {
	Code    string
	Message string
	// Fields lists per-field problems for VALIDATION_ERROR.
	Fields []FieldError
}

// FieldError is one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("todo error: code=%s message=%s", e.Code, e.Message)
}

// Errorf is a helper that returns an *Error with the given code and message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error in err's chain, "" for nil, and
// INTERNAL for any other error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the *Error in err's chain, or a
// generic message for internal errors, which must not reach clients.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// ErrUnavailable is returned by stores when the database cannot be reached;
// wrap it with the cause: fmt.Errorf("%w: %v", todo.ErrUnavailable, err).
var ErrUnavailable = &Error{Code: EUNAVAILABLE, Message: "The database is unavailable; try again shortly."}
