package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

const (
	newerID = "0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6072"
	olderID = "0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6071"
	newer   = `{"id":"` + newerID + `","user_id":"alice","title":"newer","description":null,"is_completed":true,"created_at":"2026-01-02T00:00:00.5Z","updated_at":"2026-01-02T00:00:00Z"}`
	older   = `{"id":"` + olderID + `","user_id":"alice","title":"older \"quoted\"","description":"d","is_completed":false,"created_at":"2026-01-02T00:00:00Z","updated_at":"2026-01-02T00:00:00Z"}`
	good    = `{"tasks":[` + newer + `,` + older + `],"count":2}` + "\n"
)

func alice() *user {
	u := newUser("alice", "token")
	u.add(newerID, "newer", true)
	u.add(olderID, `older "quoted"`, false)
	return u
}

func TestCheckList(t *testing.T) {
	u := alice()
	for name, body := range map[string]string{
		"as the server writes it": good,
		"space between tokens":    " { \"tasks\" : [ " + newer + " ,\n" + older + " ] , \"count\" : 2 } ",
		"count first":             `{"count":2,"tasks":[` + newer + `,` + older + `]}`,
		"unknown fields":          strings.Replace(good, `"count":2`, `"count":2,"next":{"a":[1,"x",null,true]}`, 1),
		"fields in another order": strings.Replace(good, `"user_id":"alice","title":"newer"`, `"title":"newer","user_id":"alice"`, 1),
		"escaped title":           strings.Replace(good, `"title":"newer"`, `"title":"\u006eewer"`, 1),
		"escaped user id":         strings.Replace(good, `"user_id":"alice"`, `"user_id":"\u0061lice"`, 1),
		"escaped id":              strings.Replace(good, `"`+newerID+`"`, `"\u0030`+newerID[1:]+`"`, 1),
		"a time with an offset":   strings.Replace(good, `00:00:00.5Z`, `01:00:00.5+01:00`, 1),
	} {
		if err := checkList([]byte(body), u); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	tie := strings.Replace(newer, `00:00:00.5Z`, `00:00:00Z`, 1)
	for name, body := range map[string]string{
		"another user's task":        strings.Replace(good, `"user_id":"alice"`, `"user_id":"bob"`, 1),
		"user id with a suffix":      strings.Replace(good, `"user_id":"alice"`, `"user_id":"alice2"`, 1),
		"out of order":               `{"tasks":[` + older + `,` + newer + `],"count":2}`,
		"out of order in a tie":      `{"tasks":[` + older + `,` + tie + `],"count":2}`,
		"out of order across forms":  strings.Replace(good, `00:00:00.5Z`, `00:00:00.5+01:00`, 1),
		"wrong count":                strings.Replace(good, `"count":2`, `"count":3`, 1),
		"count not an integer":       strings.Replace(good, `"count":2`, `"count":2.0`, 1),
		"count a string":             strings.Replace(good, `"count":2`, `"count":"2"`, 1),
		"missing task":               `{"tasks":[` + newer + `],"count":1}`,
		"extra task":                 `{"tasks":[` + newer + `,` + older + `,` + strings.Replace(older, `6071"`, `6070"`, 1) + `],"count":3}`,
		"task twice, one missing":    `{"tasks":[` + newer + `,` + newer + `],"count":2}`,
		"missing field":              strings.Replace(good, `"description":null,`, ``, 1),
		"missing updated_at":         strings.Replace(good, `,"updated_at":"2026-01-02T00:00:00Z"`, ``, 1),
		"stale completion":           strings.Replace(good, `"is_completed":true`, `"is_completed":false`, 1),
		"stale title":                strings.Replace(good, `"title":"newer"`, `"title":"other"`, 1),
		"title a prefix":             strings.Replace(good, `"title":"newer"`, `"title":"newe"`, 1),
		"title unescaped wrong":      strings.Replace(good, `older \"quoted\"`, `older \"quoted`, 1),
		"unknown id":                 strings.Replace(good, `6072"`, `6073"`, 1),
		"id in capitals":             strings.Replace(good, `2c3d4e5f6072`, `2C3D4E5F6072`, 1),
		"id null":                    strings.Replace(good, `"`+newerID+`"`, `null`, 1),
		"user id null":               strings.Replace(good, `"user_id":"alice"`, `"user_id":null`, 1),
		"title null":                 strings.Replace(good, `"title":"newer"`, `"title":null`, 1),
		"description a number":       strings.Replace(good, `"description":null`, `"description":1`, 1),
		"is_completed a string":      strings.Replace(good, `"is_completed":true`, `"is_completed":"true"`, 1),
		"is_completed null":          strings.Replace(good, `"is_completed":true`, `"is_completed":null`, 1),
		"bad time":                   strings.Replace(good, `00:00:00.5Z`, `yesterday`, 1),
		"bad updated_at":             strings.Replace(good, `"updated_at":"2026-01-02T00:00:00Z"`, `"updated_at":"2026-02-30T00:00:00Z"`, 1),
		"created_at a number":        strings.Replace(good, `"2026-01-02T00:00:00.5Z"`, `1767312000`, 1),
		"time without a zone":        strings.Replace(good, `00:00:00.5Z`, `00:00:00.5`, 1),
		"control character":          strings.Replace(good, `"d"`, "\"d\x01\"", 1),
		"bad escape":                 strings.Replace(good, `\"quoted\"`, `\qquoted\"`, 1),
		"truncated":                  good[:len(good)-10],
		"truncated in a string":      good[:strings.Index(good, "newer")],
		"trailing data":              good + "{}",
		"no count":                   strings.Replace(good, `,"count":2`, ``, 1),
		"no tasks":                   `{"count":2}`,
		"tasks not an array":         `{"tasks":{},"count":0}`,
		"task not an object":         `{"tasks":[1],"count":1}`,
		"not an object":              `[]`,
		"empty":                      ``,
		"bad literal":                strings.Replace(good, `null`, `nul`, 1),
		"missing comma":              strings.Replace(good, `,"count"`, `"count"`, 1),
		"missing colon":              strings.Replace(good, `"count":2`, `"count"2`, 1),
		"unterminated object in key": `{"tasks`,
	} {
		if err := checkList([]byte(body), u); err == nil {
			t.Errorf("%s: got nil error", name)
		}
	}
}

// TestCheckListEmpty: a user with no tasks gets exactly an empty list.
func TestCheckListEmpty(t *testing.T) {
	u := newUser("alice", "token")
	if err := checkList([]byte(`{"tasks":[],"count":0}`), u); err != nil {
		t.Errorf("empty list: %v", err)
	}
	if err := checkList([]byte(`{"tasks":[`+newer+`],"count":1}`), u); err == nil {
		t.Error("a task for a user with none: got nil error")
	}
}

func TestReadTask(t *testing.T) {
	var f taskFields
	if err := readTask([]byte(older), &f); err != nil {
		t.Fatal(err)
	}
	if string(f.id) != olderID || string(f.owner) != "alice" || string(f.title) != `older "quoted"` ||
		string(f.description) != "d" || f.descriptionNull || f.completed {
		t.Errorf("got %+v", f)
	}
	f = taskFields{}
	if err := readTask([]byte(newer), &f); err != nil || !f.descriptionNull || !f.completed {
		t.Errorf("null description: got %+v, %v", f, err)
	}
	for name, body := range map[string]string{
		"missing field":  strings.Replace(newer, `"description":null,`, ``, 1),
		"bad time":       strings.Replace(newer, `00:00:00.5Z`, `00:00:60Z`, 1),
		"trailing data":  newer + "x",
		"two objects":    newer + newer,
		"an array":       "[" + newer + "]",
		"truncated":      newer[:len(newer)-1],
		"title a number": strings.Replace(newer, `"newer"`, `5`, 1),
		"error body":     `{"error":{"code":"INTERNAL","message":"x"}}`,
	} {
		f = taskFields{}
		if err := readTask([]byte(body), &f); err == nil {
			t.Errorf("%s: got nil error", name)
		}
	}
}

func TestUserAddRemove(t *testing.T) {
	u := newUser("alice", "token")
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = uuid.NewString()
		u.add(ids[i], fmt.Sprint("task ", i), i%2 == 0)
	}
	for _, i := range []int{0, 19, 7, 8, 3} {
		u.remove(ids[i])
		ids[i] = ""
	}
	if len(u.tasks) != 15 || len(u.known) != 15 || len(u.index) != 15 {
		t.Fatalf("after 5 removes of 20: %d tasks, %d known, %d in the index", len(u.tasks), len(u.known), len(u.index))
	}
	for i, id := range ids {
		k := u.lookup([]byte(id))
		switch {
		case id == "" && k != nil:
			t.Errorf("removed task %d still found", i)
		case id != "" && (k == nil || k.title != fmt.Sprint("task ", i) || k.completed != (i%2 == 0)):
			t.Errorf("task %d: got %+v", i, k)
		}
	}
	for i, id := range u.tasks {
		if k := u.lookup([]byte(id)); k != &u.known[i] {
			t.Errorf("tasks[%d] and known[%d] are not the same task", i, i)
		}
	}
}

// TestParseTime holds the hand-written parser to time.Parse: the same
// strings accepted, the same instant, the same order.
func TestParseTime(t *testing.T) {
	for _, s := range []string{
		"2026-01-02T03:04:05Z", "2026-01-02T03:04:05.5Z", "2026-01-02T03:04:05.123456789Z",
		"2024-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z",
	} {
		if _, ok := parseUTC([]byte(s)); !ok {
			t.Errorf("%s: not read by the fast path", s)
		}
		checkParseTime(t, s)
	}
	for _, s := range []string{
		"", "Z", "2026-01-02T03:04:05", "2026-01-02 03:04:05Z", "2026-01-02t03:04:05Z", "2026-01-02T03:04:05z",
		"2025-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-00-01T00:00:00Z",
		"2026-13-01T00:00:00Z", "2026-01-00T00:00:00Z", "2026-01-32T00:00:00Z", "2026-01-02T24:00:00Z",
		"2026-01-02T23:60:00Z", "2026-01-02T23:59:60Z", "2026-01-02T03:04:05.Z", "2026-01-02T03:04:05.1234567891Z",
		"2026-01-02T03:04:05,5Z", "2026-01-02T03:04:05.5.5Z", "2026-01-02T03:04:05.-5Z", "+026-01-02T03:04:05Z",
		"2026-1-02T03:04:05Z", "2026-01-02T03:04:05+01:00", "2026-01-02T03:04:05.25-07:30", "2026-01-02T03:04:05+24:00",
		"2026-01-02T03:04:05+0100", "0000-01-01T00:30:00+01:00", "2026-01-02T03:04:05ZZ", "2026-01-02T03:04:05.5 Z",
		"2026-01-02T03:04:05.12345678Z",
	} {
		checkParseTime(t, s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	digits := func(n, hi int) string { return fmt.Sprintf("%0*d", n, r.IntN(hi)) }
	for range 20_000 {
		s := digits(4, 10000) + "-" + digits(2, 14) + "-" + digits(2, 33) + "T" + digits(2, 26) + ":" + digits(2, 62) + ":" + digits(2, 62)
		if r.IntN(2) == 0 {
			s += "." + fmt.Sprintf("%010d", r.Int64N(1e10))[:1+r.IntN(10)]
		}
		switch r.IntN(4) {
		case 0:
			s += fmt.Sprintf("%c%s:%s", "+-"[r.IntN(2)], digits(2, 25), digits(2, 61))
		default:
			s += "Z"
		}
		if r.IntN(4) == 0 {
			b := []byte(s)
			b[r.IntN(len(b))] = "0123456789-:.TZ+ x"[r.IntN(18)]
			s = string(b)
		}
		checkParseTime(t, s)
	}
	// Order: stamps compare as the instants do.
	for range 20_000 {
		a := time.Unix(r.Int64N(1<<34)-1<<33, r.Int64N(1e9)).UTC()
		b := a.Add(time.Duration(r.Int64N(2e9)) - 1e9)
		if r.IntN(8) == 0 {
			b = a
		}
		sa, err1 := parseTime([]byte(a.Format(time.RFC3339Nano)))
		sb, err2 := parseTime([]byte(b.In(time.FixedZone("", 3600*r.IntN(12))).Format(time.RFC3339Nano)))
		if err1 != nil || err2 != nil {
			continue // years the format cannot hold
		}
		if got, want := sa.compare(sb), a.Compare(b); got != want {
			t.Fatalf("compare(%v, %v) = %d, want %d", a, b, got, want)
		}
	}
}

func checkParseTime(t *testing.T, s string) {
	t.Helper()
	got, err := parseTime([]byte(s))
	want, wantErr := time.Parse(time.RFC3339Nano, s)
	switch {
	case (err == nil) != (wantErr == nil):
		t.Errorf("parseTime(%q): error %v, time.Parse's %v", s, err, wantErr)
	case err == nil:
		w := want.UTC()
		year, month, day := w.Date()
		hour, minute, sec := w.Clock()
		if got != (stamp{calendarSec(year, int(month), day, hour, minute, sec), w.Nanosecond()}) {
			t.Errorf("parseTime(%q) = %+v, want %v", s, got, w)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	f.Add("2026-01-02T03:04:05.123456789Z")
	f.Add("2024-02-29T23:59:59Z")
	f.Add("2026-01-02T03:04:05+01:00")
	f.Fuzz(func(t *testing.T, s string) { checkParseTime(t, s) })
}

// TestIsUUID holds isUUID to uuid.Parse for 36-character strings.
func TestIsUUID(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20_000 {
		b := []byte(uuid.NewString())
		switch r.IntN(3) {
		case 0:
			b[r.IntN(36)] = byte(r.IntN(256))
		case 1:
			b[r.IntN(36)] = "0123456789abcdefABCDEFgG-{}x"[r.IntN(28)]
		}
		_, err := uuid.Parse(string(b))
		if got := isUUID(b); got != (err == nil) {
			t.Fatalf("isUUID(%q) = %v, uuid.Parse error %v", b, got, err)
		}
	}
	for _, s := range []string{"", "0195b3c4-5d6e-7f80-9a1b-2c3d4e5f607", "{0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6072}", "0195b3c45d6e7f809a1b2c3d4e5f6072"} {
		if isUUID([]byte(s)) {
			t.Errorf("isUUID(%q) = true", s)
		}
	}
}

// TestFastTask: tasks as todo-api writes them take the fast path, and
// whatever the fast path accepts, the general reader reads the same way
// and accepts too, so the fast path changes the cost of a check, never its
// outcome.
func TestFastTask(t *testing.T) {
	u := newUser("alice", "token")
	titles := []string{"bench task 1", "a title longer than the inline part of known", `with "quotes"`, "tab\there", "<&>", "é ü"}
	var tasks []string
	for i, title := range titles {
		id := uuid.NewString()
		u.add(id, title, i%2 == 0)
		tasks = append(tasks, fmt.Sprintf(`{"id":%q,"user_id":"alice","title":%s,"description":%s,"is_completed":%v,"created_at":"2026-01-0%dT03:04:05.%dZ","updated_at":"2026-01-02T03:04:05Z"}`,
			id, jsonString(title), []string{"null", `"d"`, `"a \"d\""`}[i%3], i%2 == 0, i+1, i+1))
	}
	for i, task := range tasks {
		s := jsonScanner{b: []byte(task)}
		_, _, _, ok := s.fastTask(u, 0)
		if want := jsonString(titles[i]) == `"`+titles[i]+`"` && i%3 != 2; ok != want {
			t.Errorf("%s: fast path %v, want %v", task, ok, want)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	accepted := 0
	for range 200_000 {
		b := []byte(tasks[r.IntN(len(tasks))])
		for range 1 + r.IntN(2) {
			i := r.IntN(len(b))
			switch r.IntN(3) {
			case 0:
				b[i] = `"\:,{} tf0123456789aZ.-`[r.IntN(23)]
			case 1:
				b = append(b[:i], b[i+1:]...)
			case 2:
				b = append(b[:i], append([]byte{`"\ ,0a`[r.IntN(6)]}, b[i:]...)...)
			}
		}
		fast := jsonScanner{b: b}
		pos, created, id, ok := fast.fastTask(u, r.IntN(len(tasks)))
		if !ok {
			if strings.TrimSpace(string(b[fast.i:])) != strings.TrimSpace(string(b)) {
				t.Fatalf("%s: fast path failed after moving to %d", b, fast.i)
			}
			continue
		}
		accepted++
		var f taskFields
		general := jsonScanner{b: b}
		general.task(&f)
		if general.err != nil {
			t.Fatalf("%s: fast path accepts, general reader: %v", b, general.err)
		}
		gpos, err := checkListed(u, &f, 1)
		if err != nil || gpos != pos || f.created != created || string(f.id) != string(id) || general.i != fast.i {
			t.Fatalf("%s: fast path read task %d %v %s up to %d; general: task %d %v %s up to %d, %v",
				b, pos, created, id, fast.i, gpos, f.created, f.id, general.i, err)
		}
	}
	if accepted == 0 {
		t.Fatal("the fast path accepted no mutation: the test tests nothing")
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestCheckListReorders: after a list, u's tasks are in its order, and
// the next lists check the same way whatever order u learnt them in.
func TestCheckListReorders(t *testing.T) {
	u := newUser("alice", "token")
	u.add(olderID, `older "quoted"`, false)
	u.add(newerID, "newer", true)
	for range 2 {
		if err := checkList([]byte(good), u); err != nil {
			t.Fatal(err)
		}
		if u.tasks[0] != newerID || u.tasks[1] != olderID || u.lookup([]byte(newerID)) != &u.known[0] || u.lookup([]byte(olderID)) != &u.known[1] {
			t.Fatalf("after a list: tasks %v", u.tasks)
		}
	}
	newest := strings.NewReplacer(newerID, "0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6073", "newer", "newest", "00:00:00.5Z", "00:00:01Z").Replace(newer)
	u.add("0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6073", "newest", true)
	body := `{"tasks":[` + newest + `,` + newer + `,` + older + `],"count":3}`
	if err := checkList([]byte(body), u); err != nil {
		t.Fatal(err)
	}
	if err := checkList([]byte(good), u); err == nil {
		t.Error("a list without the new task: got nil error")
	}
	u.remove(newerID)
	if err := checkList([]byte(`{"tasks":[`+newest+`,`+older+`],"count":2}`), u); err != nil {
		t.Fatal(err)
	}
}

// TestCheckListUserIDNeedsEscapes: a user id that JSON must escape takes
// the general path, and is still checked.
func TestCheckListUserIDNeedsEscapes(t *testing.T) {
	u := newUser(`al"ice`, "token")
	u.add(newerID, "newer", true)
	u.add(olderID, `older "quoted"`, false)
	body := strings.ReplaceAll(good, `"user_id":"alice"`, `"user_id":"al\"ice"`)
	if err := checkList([]byte(body), u); err != nil {
		t.Fatal(err)
	}
	if err := checkList([]byte(good), u); err == nil {
		t.Error("alice's tasks to al\"ice: got nil error")
	}
}

// TestTimeMemo: a remembered time answers only for the very same bytes.
func TestTimeMemo(t *testing.T) {
	var m timeMemo
	read := func(s string) (stamp, bool) {
		b := []byte(`"` + s + `"`)
		st, end, ok := m.read(b, 1)
		if ok && end != len(b) {
			t.Errorf("%s: read up to %d of %d", s, end, len(b))
		}
		return st, ok
	}
	first, ok := read("2026-01-02T03:04:05.1Z")
	if !ok {
		t.Fatal("a valid time rejected")
	}
	if again, ok := read("2026-01-02T03:04:05.1Z"); !ok || again != first {
		t.Errorf("the same time again: %v %v, want %v", again, ok, first)
	}
	for _, s := range []string{"2026-01-02T03:04:05.1Z5", "2026-01-02T03:04:05.1", "2026-02-30T03:04:05.1Z", "2026-01-02T03:04:05.1ZZ"} {
		if _, ok := read(s); ok {
			t.Errorf("%s accepted after 2026-01-02T03:04:05.1Z", s)
		}
	}
	if later, ok := read("2026-01-02T03:04:05.2Z"); !ok || later.compare(first) <= 0 {
		t.Errorf("a later time: %v %v, want after %v", later, ok, first)
	}
}
