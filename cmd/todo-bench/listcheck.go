package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// checkList checks a list response body: valid JSON of the contract's
// shape, {"tasks": [Task…], "count": n}, holding exactly the tasks u has, as
// u knows them, newest first, and nobody else's.
//
// It runs on every list response, on the cores the server uses, so it is a
// single pass over the bytes that allocates nothing for the usual task
// instead of encoding/json's reflection (about 10× cheaper).
func checkList(body []byte, u *user) error {
	s := &jsonScanner{b: body}
	var (
		count             = -1
		n                 int
		seenTasks         bool
		prevCreated       time.Time
		prevID            []byte
		checkErr          error
		userID            = []byte(u.id)
		fieldsPerTaskMask = 1<<7 - 1
	)
	s.object(func(key []byte) {
		switch string(key) {
		case "count":
			num := s.number()
			c, err := strconv.Atoi(string(num))
			if err != nil {
				s.fail("count %q is not an integer", num)
			}
			count = c
		case "tasks":
			seenTasks = true
			s.array(func() {
				var id, owner, title, created, updated []byte
				var completed bool
				seen := 0
				s.object(func(key []byte) {
					switch string(key) {
					case "id":
						id, seen = s.str(), seen|1
					case "user_id":
						owner, seen = s.str(), seen|2
					case "title":
						title, seen = s.str(), seen|4
					case "description":
						if !s.null() {
							s.str()
						}
						seen |= 8
					case "is_completed":
						completed, seen = s.boolean(), seen|16
					case "created_at":
						created, seen = s.str(), seen|32
					case "updated_at":
						updated, seen = s.str(), seen|64
					default:
						s.skip()
					}
				})
				if s.err != nil || checkErr != nil {
					return
				}
				n++
				checkErr = func() error {
					if seen != fieldsPerTaskMask {
						return fmt.Errorf("task %d lacks a field", n)
					}
					if !bytes.Equal(owner, userID) {
						return fmt.Errorf("task %s of user %q in a response to user %q", id, owner, u.id)
					}
					if _, ok := u.index[string(id)]; !ok {
						return fmt.Errorf("task %s is not one of the user's", id)
					}
					if completed != u.completed[string(id)] || string(title) != u.titles[string(id)] {
						return fmt.Errorf("task %s is stale", id)
					}
					createdAt, err := time.Parse(time.RFC3339Nano, string(created))
					if err != nil {
						return fmt.Errorf("created_at %q: %v", created, err)
					}
					if _, err := time.Parse(time.RFC3339Nano, string(updated)); err != nil {
						return fmt.Errorf("updated_at %q: %v", updated, err)
					}
					if n > 1 && (createdAt.After(prevCreated) || createdAt.Equal(prevCreated) && bytes.Compare(id, prevID) > 0) {
						return fmt.Errorf("task %s is out of order", id)
					}
					prevCreated, prevID = createdAt, id
					return nil
				}()
			})
		default:
			s.skip()
		}
	})
	s.end()
	switch {
	case s.err != nil:
		return fmt.Errorf("list: %v", s.err)
	case checkErr != nil:
		return fmt.Errorf("list: %v", checkErr)
	case !seenTasks || count < 0:
		return errors.New("list: no tasks or count")
	case count != n || n != len(u.tasks):
		return fmt.Errorf("list: count %d, %d tasks, want %d", count, n, len(u.tasks))
	}
	return nil
}

// jsonScanner reads JSON from b, validating as it goes; the first problem
// sticks in err and makes every later call a no-op.
type jsonScanner struct {
	b   []byte
	i   int
	err error
}

func (s *jsonScanner) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("at byte %d: %s", s.i, fmt.Sprintf(format, args...))
	}
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *jsonScanner) peek() byte {
	s.ws()
	if s.err != nil || s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *jsonScanner) expect(c byte) {
	if s.peek() != c {
		s.fail("want %q", c)
		return
	}
	s.i++
}

// end checks that nothing but space follows.
func (s *jsonScanner) end() {
	if s.peek() != 0 {
		s.fail("trailing data")
	}
}

// object reads an object, calling field after each key and its colon;
// field must read the value.
func (s *jsonScanner) object(field func(key []byte)) {
	s.expect('{')
	if s.peek() == '}' {
		s.i++
		return
	}
	for s.err == nil {
		key := s.str()
		s.expect(':')
		if s.err != nil {
			return
		}
		field(key)
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return
		default:
			s.fail("want , or }")
		}
	}
}

// array reads an array, calling elem to read each element.
func (s *jsonScanner) array(elem func()) {
	s.expect('[')
	if s.peek() == ']' {
		s.i++
		return
	}
	for s.err == nil {
		elem()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return
		default:
			s.fail("want , or ]")
		}
	}
}

// str reads a string and returns its value; without escapes, a slice of b.
func (s *jsonScanner) str() []byte {
	if s.peek() != '"' {
		s.fail("want a string")
		return nil
	}
	start := s.i
	s.i++
	escaped := false
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			if !escaped {
				return s.b[start+1 : s.i-1]
			}
			var v string
			if err := json.Unmarshal(s.b[start:s.i], &v); err != nil {
				s.fail("bad string: %v", err)
				return nil
			}
			return []byte(v)
		case c == '\\':
			escaped = true
			s.i += 2
		case c < 0x20:
			s.fail("control character in a string")
			return nil
		default:
			s.i++
		}
	}
	s.fail("unterminated string")
	return nil
}

func (s *jsonScanner) literal(word string) bool {
	s.ws()
	if bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		s.i += len(word)
		return true
	}
	return false
}

func (s *jsonScanner) null() bool { return s.err == nil && s.literal("null") }

func (s *jsonScanner) boolean() bool {
	switch {
	case s.literal("true"):
		return true
	case s.literal("false"):
		return false
	}
	s.fail("want true or false")
	return false
}

func (s *jsonScanner) number() []byte {
	s.ws()
	start := s.i
	for s.i < len(s.b) && (s.b[s.i] >= '0' && s.b[s.i] <= '9' || s.b[s.i] == '-' || s.b[s.i] == '+' || s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
	}
	if s.i == start {
		s.fail("want a number")
	}
	return s.b[start:s.i]
}

// skip reads any value.
func (s *jsonScanner) skip() {
	switch s.peek() {
	case '{':
		s.object(func([]byte) { s.skip() })
	case '[':
		s.array(s.skip)
	case '"':
		s.str()
	case 't', 'f':
		s.boolean()
	case 'n':
		if !s.null() {
			s.fail("want null")
		}
	default:
		s.number()
	}
}
