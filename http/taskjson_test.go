package http

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	todo "github.com/todo-api/todo-api"
)

// appendTask must write exactly what encoding/json writes.
func TestAppendTaskMatchesEncodingJSON(t *testing.T) {
	desc := "line\nbreak \"quoted\" \\ <b>&amp;</b> \u2028\u2029 \x00\x01\x1f\x7f tab\t é 😀 \xff\xfe invalid"
	empty := ""
	times := []time.Time{
		time.Date(2026, 11, 25, 19, 9, 18, 123456000, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 100000, time.UTC),
	}
	for _, task := range []*todo.Task{
		{ID: "01a2142b-8312-7007-a316-b0d50a675e65", UserID: "alice", Title: "Buy milk", CreatedAt: times[0], UpdatedAt: times[1]},
		{ID: "x", UserID: "user|<script>", Title: desc, Description: &desc, IsCompleted: true, CreatedAt: times[2], UpdatedAt: times[0]},
		{Title: strings.Repeat("界", 500), Description: &empty, CreatedAt: times[1], UpdatedAt: times[2]},
	} {
		want, err := json.Marshal(task)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendTask(nil, task); !bytes.Equal(got, want) {
			t.Errorf("appendTask:\n got %s\nwant %s", got, want)
		}
	}
}

// FuzzAppendString holds the string escaper to encoding/json on any input.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\/\b\f\n\r\t", "<>&", "\u2028\u2029", "\xff", "\xed\xa0\x80", "é😀", "\x00\x1f\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// appendTime must write exactly what time.RFC3339Nano gives.
func TestAppendTime(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	for _, tm := range []time.Time{
		time.Date(2026, 11, 25, 19, 9, 18, 123456000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 100, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 6, 1, 12, 0, 0, 5000, paris),
		time.Unix(1795634725, 650002000).UTC(),
		{},
	} {
		if got, want := string(appendTime(nil, tm)), tm.Format(time.RFC3339Nano); got != want {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

func FuzzAppendTime(f *testing.F) {
	f.Add(int64(1795634725), int64(650002000))
	f.Add(int64(0), int64(0))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec).UTC()
		if got, want := string(appendTime(nil, tm)), tm.Format(time.RFC3339Nano); got != want {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	})
}
