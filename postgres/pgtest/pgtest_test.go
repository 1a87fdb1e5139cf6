package pgtest

import (
	"strings"
	"testing"
)

func TestDatabaseName(t *testing.T) {
	t.Parallel()
	t.Run("a/Very Long Subtest Name With Spaces And ünicode That Goes On And On", func(t *testing.T) {
		a, b := databaseName(t), databaseName(t)
		if a == b {
			t.Errorf("two calls gave the same name %q", a)
		}
		if len(a) > 63 {
			t.Errorf("name %q: got %d bytes, want at most 63", a, len(a))
		}
		if strings.Trim(a, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			t.Errorf("name %q: want only [a-z0-9_]", a)
		}
	})
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/t1?sslmode=disable"},
		{"postgresql://u:p@h/", "postgresql://u:p@h/t1"},
		{"host=127.0.0.1 user=postgres dbname=postgres", "host=127.0.0.1 user=postgres dbname=postgres dbname=t1"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.in, "t1")
		if err != nil {
			t.Errorf("withDatabase(%q): %v", tt.in, err)
		} else if got != tt.want {
			t.Errorf("withDatabase(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
