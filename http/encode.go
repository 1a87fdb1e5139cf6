package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	todo "github.com/todo-api/todo-api"
)

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// bytesPool holds the byte slices task responses are built in.
var bytesPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func getBytes() *[]byte {
	b := bytesPool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

func putBytes(b *[]byte) {
	// Keep the pool from pinning the occasional huge list.
	if cap(*b) <= 1<<20 {
		bytesPool.Put(b)
	}
}

// encode writes v as a JSON response with the given status. The body is
// marshalled before any header is sent, so a marshalling failure can still
// become a proper error response.
func encode(w http.ResponseWriter, status int, v any) {
	buf := bufferPool.Get().(*bytes.Buffer)
	defer putBuffer(buf)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		// Only our own types reach here; a failure is a programming error.
		buf.Reset()
		buf.WriteString(`{"error":{"code":"INTERNAL","message":"Internal error.","details":{}}}` + "\n")
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func putBuffer(buf *bytes.Buffer) {
	// Keep the pool from pinning the occasional huge list.
	if buf.Cap() <= 1<<20 {
		bufferPool.Put(buf)
	}
}

// decode reads the request body as JSON into v, which must point to a
// struct. Bodies with no Content-Type or application/json (any charset) are
// accepted. Errors: UNSUPPORTED_MEDIA_TYPE, PAYLOAD_TOO_LARGE, INVALID_JSON,
// VALIDATION_ERROR (a field of the wrong type).
func decode(r *http.Request, v any) error {
	if !isJSON(r.Header.Get("Content-Type")) {
		return todo.Errorf(todo.EUNSUPPORTEDMEDIA, "The request body must be application/json.")
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return unmarshal(body, v)
}

// isJSON reports whether a Content-Type header value means JSON; an absent
// header does too.
func isJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "application/json"
}

// readBody reads the whole body within the limit set by limitBody.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return nil, todo.Errorf(todo.EPAYLOADTOOLARGE, "The request body is larger than %d bytes.", maxErr.Limit)
	} else if err != nil {
		return nil, todo.Errorf(todo.EINVALIDJSON, "The request body could not be read.")
	}
	return body, nil
}

// unmarshal parses body into v and turns the parser's errors into ones a
// client can act on, without echoing its input back.
func unmarshal(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return todo.Errorf(todo.EINVALIDJSON, "The request body is empty; a JSON object is expected.")
	}
	// encoding/json would silently replace invalid UTF-8 with U+FFFD; we
	// would rather refuse than store something other than what was sent.
	if !utf8.Valid(body) {
		return todo.Errorf(todo.EINVALIDJSON, "The request body is not valid UTF-8.")
	}
	// Likewise for \uD800-style escapes of half a surrogate pair.
	if hasLoneSurrogate(body) {
		return todo.Errorf(todo.EINVALIDJSON, "The request body has a \\u escape of an unpaired UTF-16 surrogate.")
	}
	err := json.Unmarshal(body, v)
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syntaxErr):
		return todo.Errorf(todo.EINVALIDJSON, "The request body is not valid JSON (at byte %d).", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return &todo.Error{Code: todo.EVALIDATION, Message: "The request body must be a JSON object.",
				Fields: []todo.FieldError{{Field: "body", Message: "must be a JSON object"}}}
		}
		return &todo.Error{Code: todo.EVALIDATION, Message: "The request has invalid fields.",
			Fields: []todo.FieldError{{Field: field, Message: "must be " + jsonKind(typeErr.Type.Kind().String())}}}
	default:
		// Unexpected EOF, nesting too deep and the like.
		return todo.Errorf(todo.EINVALIDJSON, "The request body is not valid JSON.")
	}
}

// jsonKind names a Go kind as the JSON type a client would send.
func jsonKind(kind string) string {
	switch {
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "a boolean"
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "a number"
	}
	return "a value of the documented type"
}

// hasLoneSurrogate reports whether body has a \uXXXX escape of a UTF-16
// surrogate that is not a high half followed by its low half. Escapes occur
// only inside strings, so counting backslashes is enough.
func hasLoneSurrogate(body []byte) bool {
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		i++ // the escaped character: a second backslash is not an escape
		if i+4 >= len(body) || body[i] != 'u' {
			continue
		}
		r := hex4(body[i+1 : i+5])
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(body) || body[i+1] != '\\' || body[i+2] != 'u' {
				return true
			}
			if lo := hex4(body[i+3 : i+7]); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

// hex4 decodes four hex digits, or returns -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
