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
