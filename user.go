package todo

import (
	"context"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on the built-in accounts' fields.
const (
	MinPasswordLength = 8  // characters
	MaxPasswordBytes  = 72 // bcrypt ignores anything longer
	MaxEmailLength    = 254
	MaxNameLength     = 200
)

// User is an account: registered here, or first seen through a token from
// an external issuer (then ID is that issuer's subject and PasswordHash is nil).
type User struct {
	ID           string    `json:"id"`
	Email        *string   `json:"email"`
	Name         *string   `json:"name"`
	PasswordHash []byte    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"-"`
}

// Registration is what POST /api/auth/register carries.
type Registration struct {
	Email    string
	Password string
	Name     *string
}

// Validate normalizes the email (trimmed, lower case) and name (trimmed)
// and checks every field.
// Errors: VALIDATION_ERROR, listing every bad field.
func (r *Registration) Validate() error {
	var fields []FieldError
	r.Email = NormalizeEmail(r.Email)
	if !ValidEmail(r.Email) {
		fields = append(fields, FieldError{"email", "must be a valid email address"})
	}
	if n := utf8.RuneCountInString(r.Password); n < MinPasswordLength {
		fields = append(fields, FieldError{"password", "must be at least 8 characters"})
	} else if len(r.Password) > MaxPasswordBytes {
		fields = append(fields, FieldError{"password", "must be at most 72 bytes"})
	} else if checkText(r.Password) != "" {
		fields = append(fields, FieldError{"password", "must be valid UTF-8 without NUL characters"})
	}
	if r.Name != nil {
		name := strings.TrimSpace(*r.Name)
		r.Name = &name
		if utf8.RuneCountInString(name) > MaxNameLength {
			fields = append(fields, FieldError{"name", "must be at most 200 characters"})
		} else if msg := checkText(name); msg != "" {
			fields = append(fields, FieldError{"name", msg})
		}
	}
	if len(fields) > 0 {
		return &Error{Code: EVALIDATION, Message: "The request has invalid fields.", Fields: fields}
	}
	return nil
}

// NormalizeEmail returns the form in which emails are stored and compared.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// ValidEmail reports whether email is a plain addr-spec (no display name)
// with a dotted domain, within MaxEmailLength.
func ValidEmail(email string) bool {
	if email == "" || len(email) > MaxEmailLength || checkText(email) != "" {
		return false
	}
	// net/mail lets some through (C1 controls such as U+0083); an address
	// is shown and compared, so it must be plain printable text.
	for _, r := range email {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return false
		}
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return false
	}
	at := strings.LastIndexByte(email, '@')
	domain := email[at+1:]
	return at > 0 && strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// UserService stores accounts.
type UserService interface {
	// CreateUser stores a new account with the given password hash and sets
	// u.ID, u.CreatedAt and u.UpdatedAt.
	// Errors: EMAIL_TAKEN, SERVICE_UNAVAILABLE.
	CreateUser(ctx context.Context, u *User) error

	// FindUserByID returns the account with that id, or NOT_FOUND.
	FindUserByID(ctx context.Context, id string) (*User, error)

	// FindUserByEmail returns the account with that (normalized) email,
	// password hash included, or NOT_FOUND.
	FindUserByEmail(ctx context.Context, email string) (*User, error)

	// UpdatePasswordHash replaces the account's password hash, as login
	// does when the configured bcrypt cost has changed since it was made.
	// Errors: NOT_FOUND, SERVICE_UNAVAILABLE.
	UpdatePasswordHash(ctx context.Context, id string, hash []byte) error

	// EnsureUser creates the user a token names if it has no row yet, and
	// updates its email and name when the token carries different ones.
	// An email already used by another account is left out rather than
	// failing the request.
	// Errors: SERVICE_UNAVAILABLE.
	EnsureUser(ctx context.Context, id Identity) error
}
