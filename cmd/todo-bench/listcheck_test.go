package main

import (
	"strings"
	"testing"
)

func TestCheckList(t *testing.T) {
	u := newUser("alice", "token")
	u.add("0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6072", "newer", true)
	u.add("0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6071", `older "quoted"`, false)
	newer := `{"id":"0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6072","user_id":"alice","title":"newer","description":null,"is_completed":true,"created_at":"2026-01-02T00:00:00.5Z","updated_at":"2026-01-02T00:00:00Z"}`
	older := `{"id":"0195b3c4-5d6e-7f80-9a1b-2c3d4e5f6071","user_id":"alice","title":"older \"quoted\"","description":"d","is_completed":false,"created_at":"2026-01-02T00:00:00Z","updated_at":"2026-01-02T00:00:00Z"}`
	good := `{"tasks":[` + newer + `,` + older + `],"count":2}` + "\n"
	if err := checkList([]byte(good), u); err != nil {
		t.Fatalf("a correct list: %v", err)
	}
	for name, body := range map[string]string{
		"another user's task": strings.Replace(good, `"user_id":"alice"`, `"user_id":"bob"`, 1),
		"out of order":        `{"tasks":[` + older + `,` + newer + `],"count":2}`,
		"wrong count":         strings.Replace(good, `"count":2`, `"count":3`, 1),
		"missing task":        `{"tasks":[` + newer + `],"count":1}`,
		"missing field":       strings.Replace(good, `"description":null,`, ``, 1),
		"stale completion":    strings.Replace(good, `"is_completed":true`, `"is_completed":false`, 1),
		"stale title":         strings.Replace(good, `"title":"newer"`, `"title":"other"`, 1),
		"unknown id":          strings.Replace(good, `6072"`, `6073"`, 1),
		"bad time":            strings.Replace(good, `00:00:00.5Z`, `yesterday`, 1),
		"truncated":           good[:len(good)-10],
		"trailing data":       good + "{}",
		"no count":            strings.Replace(good, `,"count":2`, ``, 1),
		"not an object":       `[]`,
		"bad literal":         strings.Replace(good, `null`, `nul`, 1),
	} {
		if err := checkList([]byte(body), u); err == nil {
			t.Errorf("%s: got nil error", name)
		}
	}
}
