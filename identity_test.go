package todo

import (
	"strings"
	"testing"
)

func TestIdentityNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want Identity }{
		{Identity{UserID: "u", Email: " Ada@Example.COM ", Name: "  Ada  "}, Identity{UserID: "u", Email: "ada@example.com", Name: "Ada"}},
		{Identity{UserID: "u", Email: "not an email", Name: "a\x00b"}, Identity{UserID: "u"}},
		{Identity{UserID: "u", Email: "Ada <ada@example.com>", Name: strings.Repeat("n", MaxNameLength+1)}, Identity{UserID: "u"}},
		{Identity{UserID: " keeps its spaces ", Name: strings.Repeat("界", MaxNameLength)}, Identity{UserID: " keeps its spaces ", Name: strings.Repeat("界", MaxNameLength)}},
	} {
		got := tc.in
		got.Normalize()
		if got != tc.want {
			t.Errorf("Normalize(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
