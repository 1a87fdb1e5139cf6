package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The checks here run on every response, on the cores the server uses, so
// they are single passes over the bytes that allocate nothing for the usual
// task, instead of encoding/json's reflection and time.Parse: every
// microsecond they spend is taken from the server being measured.

// Bits of taskFields.seen, one per field of the contract's Task.
const (
	fieldID = 1 << iota
	fieldUserID
	fieldTitle
	fieldDescription
	fieldIsCompleted
	fieldCreatedAt
	fieldUpdatedAt
	allFields = 1<<iota - 1
)

// taskFields is one task object as read from a response, not yet checked
// against what the user knows. The slices point into the body unless the
// JSON string had escapes.
type taskFields struct {
	seen             int
	id, owner, title []byte
	description      []byte
	descriptionNull  bool
	completed        bool
	created          stamp
	err              error // a timestamp that is not RFC 3339
}

// task reads one task object into f: any field order, unknown fields
// skipped, each known field of its contract type.
func (s *jsonScanner) task(f *taskFields) {
	s.object(func(key []byte) {
		switch string(key) {
		case "id":
			f.id, f.seen = s.str(), f.seen|fieldID
		case "user_id":
			f.owner, f.seen = s.str(), f.seen|fieldUserID
		case "title":
			f.title, f.seen = s.str(), f.seen|fieldTitle
		case "description":
			f.description, f.descriptionNull = nil, s.null()
			if !f.descriptionNull {
				f.description = s.str()
			}
			f.seen |= fieldDescription
		case "is_completed":
			f.completed, f.seen = s.boolean(), f.seen|fieldIsCompleted
		case "created_at":
			st, err := parseTime(s.str())
			if err != nil && f.err == nil {
				f.err = fmt.Errorf("created_at: %v", err)
			}
			f.created, f.seen = st, f.seen|fieldCreatedAt
		case "updated_at":
			if _, err := parseTime(s.str()); err != nil && f.err == nil {
				f.err = fmt.Errorf("updated_at: %v", err)
			}
			f.seen |= fieldUpdatedAt
		default:
			s.skip()
		}
	})
}

// readTask reads a single-task body: one task object of the contract's
// shape and nothing after it.
func readTask(body []byte, f *taskFields) error {
	s := jsonScanner{b: body}
	s.task(f)
	s.end()
	switch {
	case s.err != nil:
		return fmt.Errorf("task: %v", s.err)
	case f.seen != allFields:
		return errors.New("task lacks a field")
	}
	return f.err
}

// checkList checks a list response body: valid JSON of the contract's
// shape, {"tasks": [Task…], "count": n}, holding exactly the tasks u has, as
// u knows them, each once, newest first, and nobody else's.
func checkList(body []byte, u *user) error {
	s := &jsonScanner{b: body}
	var (
		count       = -1
		n           int
		seenTasks   bool
		prevCreated stamp
		prevID      []byte
		checkErr    error
		guess       int // where the next task probably is in u.known
		moved       bool
	)
	u.order = u.order[:0]
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
				if checkErr != nil {
					s.skip()
					return
				}
				n++
				pos, created, id, ok := s.fastTask(u, guess)
				if !ok {
					var f taskFields
					s.task(&f)
					if s.err != nil {
						return
					}
					if pos, checkErr = checkListed(u, &f, n); checkErr != nil {
						return
					}
					created, id = f.created, f.id
				}
				// Strict order (created_at desc, then id desc) also rules
				// out a task listed twice: with the count right, one listed
				// twice would hide one missing.
				if c := created.compare(prevCreated); n > 1 && (c > 0 || c == 0 && bytes.Compare(id, prevID) >= 0) {
					checkErr = fmt.Errorf("task %s is out of order", id)
					return
				}
				prevCreated, prevID = created, id
				moved = moved || pos != guess
				guess = pos + 1
				u.order = append(u.order, int32(pos))
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
	if moved {
		u.reorder()
	}
	return nil
}

// fastTask reads a task at s.i written exactly as todo-api writes one:
// its fields in its order, no space, no escapes, and the id, owner, title
// and completion those u knows; the description a plain string or null and
// the times in the form parseUTC reads. That is nearly every task, and
// reading one is then a few comparisons of bytes in place. Anything else
// returns ok false with s.i at most past space: the general reader takes over and
// says what is wrong, if anything is.
func (s *jsonScanner) fastTask(u *user, guess int) (pos int, created stamp, id []byte, ok bool) {
	if s.err != nil || !u.plainID {
		return 0, stamp{}, nil, false
	}
	b := s.b[s.i:]
	if len(b) > 0 && b[0] != '{' {
		s.ws()
		b = s.b[s.i:]
	}
	j, ok := lit(b, 0, `{"id":"`)
	if !ok || len(b) < j+len(taskKey{}) {
		return 0, stamp{}, nil, false
	}
	// Known ids are UUIDs: a match is plain.
	id = b[j : j+len(taskKey{})]
	if pos = u.find(id, guess); pos < 0 {
		return 0, stamp{}, nil, false
	}
	k := &u.known[pos]
	j += len(id)
	if j, ok = lit(b, j, `","user_id":"`); !ok {
		return 0, stamp{}, nil, false
	}
	if j, ok = lit(b, j, u.id); !ok {
		return 0, stamp{}, nil, false
	}
	if j, ok = lit(b, j, `","title":"`); !ok || !k.plain {
		return 0, stamp{}, nil, false
	}
	if k.inline {
		j, ok = litBytes(b, j, k.head[:len(k.title)])
	} else {
		j, ok = lit(b, j, k.title)
	}
	if !ok {
		return 0, stamp{}, nil, false
	}
	if j, ok = lit(b, j, `","description":`); !ok {
		return 0, stamp{}, nil, false
	}
	if j, ok = lit(b, j, "null"); !ok {
		if j, ok = plainString(b, j); !ok {
			return 0, stamp{}, nil, false
		}
	}
	if k.completed {
		j, ok = lit(b, j, `,"is_completed":true,"created_at":"`)
	} else {
		j, ok = lit(b, j, `,"is_completed":false,"created_at":"`)
	}
	if !ok {
		return 0, stamp{}, nil, false
	}
	if created, j, ok = k.created.read(b, j); !ok {
		return 0, stamp{}, nil, false
	}
	if j, ok = lit(b, j, `,"updated_at":"`); !ok {
		return 0, stamp{}, nil, false
	}
	if _, j, ok = k.updated.read(b, j); !ok {
		return 0, stamp{}, nil, false
	}
	if j, ok = lit(b, j, "}"); !ok {
		return 0, stamp{}, nil, false
	}
	s.i += j
	return pos, created, id, true
}

// lit returns the index after want if b holds want at j.
func lit(b []byte, j int, want string) (int, bool) {
	if len(b)-j < len(want) || string(b[j:j+len(want)]) != want {
		return j, false
	}
	return j + len(want), true
}

func litBytes(b []byte, j int, want []byte) (int, bool) {
	if len(b)-j < len(want) || !bytes.Equal(b[j:j+len(want)], want) {
		return j, false
	}
	return j + len(want), true
}

// plainString reads a JSON string without escapes at j and returns the
// index after its closing quote.
func plainString(b []byte, j int) (int, bool) {
	if j >= len(b) || b[j] != '"' {
		return j, false
	}
	end := bytes.IndexByte(b[j+1:], '"')
	if end < 0 {
		return j, false
	}
	for _, c := range b[j+1 : j+1+end] {
		if c < 0x20 || c == '\\' {
			return j, false
		}
	}
	return j + 1 + end + 1, true
}

// utcString reads, after an opening quote, a time as parseUTC reads it and
// its closing quote.
func utcString(b []byte, j int) (stamp, int, bool) {
	// The longest form parseUTC reads is 30 bytes.
	end := bytes.IndexByte(b[j:min(len(b), j+31)], '"')
	if end < 0 {
		return stamp{}, j, false
	}
	st, ok := parseUTC(b[j : j+end])
	return st, j + end + 1, ok
}

// timeMemo is a time string that parseUTC accepted, and what it read.
type timeMemo struct {
	n   uint8
	raw [len("2006-01-02T15:04:05.999999999Z")]byte
	st  stamp
}

// read is utcString remembering its last success: the same bytes again
// give the same answer without being parsed again.
func (m *timeMemo) read(b []byte, j int) (stamp, int, bool) {
	if n := int(m.n); n > 0 && len(b)-j > n && b[j+n] == '"' && string(b[j:j+n]) == string(m.raw[:n]) {
		return m.st, j + n + 1, true
	}
	st, end, ok := utcString(b, j)
	if ok {
		m.n = uint8(copy(m.raw[:], b[j:end-1]))
		m.st = st
	}
	return st, end, ok
}

// checkListed checks the nth task of a list against what u knows and
// returns its position in u.known.
func checkListed(u *user, f *taskFields, n int) (int, error) {
	if f.seen != allFields {
		return 0, fmt.Errorf("task %d lacks a field", n)
	}
	if string(f.owner) != u.id {
		return 0, fmt.Errorf("task %s of user %q in a response to user %q", f.id, f.owner, u.id)
	}
	pos := u.find(f.id, -1)
	if pos < 0 {
		return 0, fmt.Errorf("task %s is not one of the user's", f.id)
	}
	if k := &u.known[pos]; f.completed != k.completed || string(f.title) != k.title {
		return 0, fmt.Errorf("task %s is stale", f.id)
	}
	return pos, f.err
}

// stamp is an instant to the nanosecond, comparable without time.Time:
// sec counts seconds of the UTC calendar in a way that keeps their order
// (not Unix time).
type stamp struct {
	sec  int64
	nsec int
}

func calendarSec(year, month, day, hour, minute, sec int) int64 {
	return ((((int64(year)*12+int64(month-1))*31+int64(day-1))*24+int64(hour))*60+int64(minute))*60 + int64(sec)
}

func (a stamp) compare(b stamp) int {
	if a.sec != b.sec {
		return cmp.Compare(a.sec, b.sec)
	}
	return cmp.Compare(a.nsec, b.nsec)
}

// parseTime parses an RFC 3339 timestamp exactly as time.Parse with
// time.RFC3339Nano does. The form the server writes (UTC, "Z", at most
// nine fraction digits) is read by hand; anything else goes to time.Parse,
// so the two accept the same strings and agree on the instant.
func parseTime(b []byte) (stamp, error) {
	if st, ok := parseUTC(b); ok {
		return st, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return stamp{}, err
	}
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	return stamp{calendarSec(year, int(month), day, hour, minute, sec), t.Nanosecond()}, nil
}

// parseUTC reads YYYY-MM-DDTHH:MM:SS[.F{1,9}]Z with time.Parse's ranges;
// ok is false for anything else, valid or not.
func parseUTC(b []byte) (st stamp, ok bool) {
	if len(b) < len("2006-01-02T15:04:05Z") || b[len(b)-1] != 'Z' ||
		b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return stamp{}, false
	}
	century, year, month, day := twoDigits(b, 0), twoDigits(b, 2), twoDigits(b, 5), twoDigits(b, 8)
	hour, minute, sec := twoDigits(b, 11), twoDigits(b, 14), twoDigits(b, 17)
	// Any non-digit made its pair negative.
	if century|year|month|day|hour|minute|sec < 0 {
		return stamp{}, false
	}
	year += 100 * century
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return stamp{}, false
	}
	nsec := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		digits := frac[1:]
		if frac[0] != '.' || len(digits) == 0 || len(digits) > 9 {
			return stamp{}, false
		}
		for _, c := range digits {
			if c < '0' || c > '9' {
				return stamp{}, false
			}
			nsec = nsec*10 + int(c-'0')
		}
		for range 9 - len(digits) {
			nsec *= 10
		}
	}
	return stamp{calendarSec(year, month, day, hour, minute, sec), nsec}, true
}

// twoDigits returns the number b[i:i+2] spells, or -1 if not two digits.
func twoDigits(b []byte, i int) int {
	hi, lo := b[i]-'0', b[i+1]-'0'
	if hi > 9 || lo > 9 {
		return -1
	}
	return int(hi)*10 + int(lo)
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// isUUID reports whether b is a UUID in its 36-character form, as
// uuid.Parse accepts it: hex digits of either case, dashes at 8, 13, 18, 23.
func isUUID(b []byte) bool {
	if len(b) != 36 {
		return false
	}
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
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
	// The usual string has no escapes: find its end with IndexByte (vector
	// instructions) and only then look for what would need the slow path.
	start := s.i + 1
	if j := bytes.IndexByte(s.b[start:], '"'); j >= 0 {
		v := s.b[start : start+j]
		plain := true
		for _, c := range v {
			if c < 0x20 || c == '\\' {
				plain = false
				break
			}
		}
		if plain {
			s.i = start + j + 1
			return v
		}
	}
	return s.escapedStr()
}

// escapedStr reads a string that may hold escapes, from its opening quote.
func (s *jsonScanner) escapedStr() []byte {
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
