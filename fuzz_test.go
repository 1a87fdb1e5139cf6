package todo

import (
	"errors"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// The domain's validation is the last gate before the database: whatever
// it accepts both engines must store verbatim, so it is fuzzed against the
// rules the contract states.

// textSeeds are strings that break naive validators.
var textSeeds = []string{
	"", " ", "plain", "  padded\n\t", "a\x00b", "\xff\xfe", "\xc0\xaf", "\xc0\x80", "\xed\xa0\x80", "\ufffd",
	"\u00a0\u3000\u2028\u2029", "\ufeffbom", "e\u0301", "😀", strings.Repeat("😀", 500), strings.Repeat("😀", 501),
	strings.Repeat("a", 500), " " + strings.Repeat("a", 500) + " ", strings.Repeat("é", 5001),
	"'); DROP TABLE tasks;--", "<script>alert(1)</script>", "\r\nX-Injected: 1", "\x85trim NEL\x85",
}

// wantFields lists the fields whose validation fails, by the contract's
// rules, for a title and an optional description.
func taskFieldErrors(title string, description *string) []string {
	var fields []string
	trimmed := strings.TrimSpace(title)
	if n := utf8.RuneCountInString(trimmed); n == 0 || n > MaxTitleLength || !utf8.ValidString(trimmed) || strings.Contains(trimmed, "\x00") {
		fields = append(fields, "title")
	}
	if description != nil {
		d := *description
		if utf8.RuneCountInString(d) > MaxDescriptionLength || !utf8.ValidString(d) || strings.Contains(d, "\x00") {
			fields = append(fields, "description")
		}
	}
	return fields
}

// errorFields returns the fields a VALIDATION_ERROR names, or fails.
func errorFields(tb testing.TB, err error) []string {
	tb.Helper()
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != EVALIDATION || e.Message == "" || len(e.Fields) == 0 {
		tb.Fatalf("error %#v, want VALIDATION_ERROR with fields", err)
	}
	var fields []string
	for _, f := range e.Fields {
		if f.Message == "" {
			tb.Fatalf("field %q without a message", f.Field)
		}
		fields = append(fields, f.Field)
	}
	return fields
}

// FuzzTaskValidate: Task and TaskUpdate validation agree with the
// contract's rules, trim exactly the title, keep the description
// verbatim, and are idempotent.
func FuzzTaskValidate(f *testing.F) {
	for _, s := range textSeeds {
		f.Add(s, s, true)
		f.Add(s, "", false)
	}
	f.Fuzz(func(t *testing.T, title, description string, hasDescription bool) {
		var desc *string
		if hasDescription {
			desc = &description
		}
		want := taskFieldErrors(title, desc)

		task := Task{Title: title, Description: desc}
		got := errorFields(t, task.Validate())
		if !slices.Equal(got, want) {
			t.Fatalf("Task{%q, %v}.Validate() fields %v, want %v", title, desc, got, want)
		}
		if task.Title != strings.TrimSpace(title) {
			t.Fatalf("title %q after Validate, want it trimmed: %q", task.Title, strings.TrimSpace(title))
		}
		if task.Description != desc || (desc != nil && *desc != description) {
			t.Fatalf("Validate changed the description")
		}
		if again := errorFields(t, task.Validate()); !slices.Equal(again, got) {
			t.Fatalf("second Validate fields %v, first %v", again, got)
		}

		upd := TaskUpdate{Title: title, Description: desc}
		if got := errorFields(t, upd.Validate()); !slices.Equal(got, want) || upd.Title != task.Title {
			t.Fatalf("TaskUpdate{%q}.Validate() fields %v title %q, want %v %q", title, got, upd.Title, want, task.Title)
		}
	})
}

// FuzzRegistrationValidate: what Validate accepts is a normalized, valid
// email, a password of 8 characters to 72 bytes of clean UTF-8, and a
// trimmed name of at most 200 characters; validating again changes nothing.
func FuzzRegistrationValidate(f *testing.F) {
	for _, s := range textSeeds {
		f.Add(s, s, s, true)
	}
	for _, email := range emailSeeds {
		f.Add(email, "password123", " Name ", false)
	}
	f.Add("user@example.com", strings.Repeat("p", 72), "", false)
	f.Add("user@example.com", strings.Repeat("p", 73), "", false)
	f.Add("user@example.com", strings.Repeat("é", 36), "", false)
	f.Add("user@example.com", strings.Repeat("é", 37), "", false)
	f.Add("user@example.com", "1234567", "", false)
	f.Fuzz(func(t *testing.T, email, password, name string, hasName bool) {
		r := Registration{Email: email, Password: password}
		if hasName {
			r.Name = &name
		}
		fields := errorFields(t, r.Validate())
		if r.Email != NormalizeEmail(email) {
			t.Fatalf("email %q after Validate, want %q", r.Email, NormalizeEmail(email))
		}
		if hasName && *r.Name != strings.TrimSpace(name) {
			t.Fatalf("name %q after Validate, want %q", *r.Name, strings.TrimSpace(name))
		}
		wantEmail := !ValidEmail(NormalizeEmail(email))
		n := utf8.RuneCountInString(password)
		wantPassword := n < MinPasswordLength || len(password) > MaxPasswordBytes || !utf8.ValidString(password) || strings.Contains(password, "\x00")
		trimmed := strings.TrimSpace(name)
		wantName := hasName && (utf8.RuneCountInString(trimmed) > MaxNameLength || !utf8.ValidString(trimmed) || strings.Contains(trimmed, "\x00"))
		for field, bad := range map[string]bool{"email": wantEmail, "password": wantPassword, "name": wantName} {
			if slices.Contains(fields, field) != bad {
				t.Fatalf("Registration{%q, %q, %q}: fields %v; %s bad = %v", email, password, name, fields, field, bad)
			}
		}
		if again := errorFields(t, r.Validate()); !slices.Equal(again, fields) {
			t.Fatalf("second Validate fields %v, first %v", again, fields)
		}
	})
}

// emailSeeds are addresses that RFC 5322 parsers disagree on.
var emailSeeds = []string{
	"user@example.com", "USER@Example.COM", " user@example.com ", "user@localhost", "user@example.com.", "user@.example.com",
	"@example.com", "user@", "user", "user@@example.com", "a@b@example.com", `"quoted"@example.com`, `"a b"@example.com`,
	"Name <user@example.com>", "<user@example.com>", "user@[127.0.0.1]", "user@example.com\r\nBcc: x@example.com",
	"user+tag@example.com", "üser@exämple.com", "user@xn--exmple-cua.com", "(comment)user@example.com",
	"user(comment)@example.com", "user@example.com (comment)", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com",
	strings.Repeat("a", 250) + "@example.com", "a\x00@example.com", "a\xff@example.com", "user@exa mple.com", "K@example.com",
	"=?utf-8?q?user?=@example.com", "user@example..com", ".user@example.com", "user.@example.com",
}

// FuzzValidEmail: an accepted email is a bare addr-spec within the length
// limit, clean UTF-8 without spaces or controls, with one dotted domain,
// and parses back to itself.
func FuzzValidEmail(f *testing.F) {
	for _, e := range emailSeeds {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, email string) {
		if !ValidEmail(email) {
			return
		}
		if len(email) > MaxEmailLength || !utf8.ValidString(email) {
			t.Fatalf("ValidEmail(%q): too long or not UTF-8", email)
		}
		for _, r := range email {
			if r < 0x21 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Fatalf("ValidEmail(%q): holds the control or space %U", email, r)
			}
		}
		addr, err := mail.ParseAddress(email)
		if err != nil || addr.Address != email || addr.Name != "" {
			t.Fatalf("ValidEmail(%q) but it does not parse back to itself (%v)", email, err)
		}
		at := strings.LastIndexByte(email, '@')
		domain := email[at+1:]
		if at <= 0 || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
			t.Fatalf("ValidEmail(%q): local part or domain is not what the contract allows", email)
		}
	})
}
