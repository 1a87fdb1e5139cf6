package todo

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// Identity is who a request acts for, as a verified token says.
// UserID is the token's subject; Email and Name are optional claims.
type Identity struct {
	UserID string
	Email  string
	Name   string
}

// MaxUserIDLength bounds a token subject, in bytes.
const MaxUserIDLength = 255

// Normalize puts the optional claims in the form users rows hold them:
// the email normalized, or dropped when it is not a plain address; the
// name trimmed, or dropped when it is over MaxNameLength or not storable
// text. A bad optional claim never fails a request.
func (id *Identity) Normalize() {
	if id.Email != "" {
		if id.Email = NormalizeEmail(id.Email); !ValidEmail(id.Email) {
			id.Email = ""
		}
	}
	if id.Name != "" {
		if id.Name = strings.TrimSpace(id.Name); utf8.RuneCountInString(id.Name) > MaxNameLength || checkText(id.Name) != "" {
			id.Name = ""
		}
	}
}

// TokenVerifier checks bearer tokens.
type TokenVerifier interface {
	// VerifyToken returns the identity a valid token carries.
	// Errors: UNAUTHORIZED for any token that is not valid now.
	VerifyToken(ctx context.Context, token string) (Identity, error)
}

// TokenIssuer mints the tokens that the built-in accounts hand out.
type TokenIssuer interface {
	// IssueToken returns a signed token for id and how long it is valid.
	IssueToken(id Identity) (token string, expiresIn time.Duration, err error)
}

type identityKey struct{}

// NewContextWithIdentity returns a copy of ctx that carries id.
func NewContextWithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFromContext returns the identity ctx carries, if any.
func IdentityFromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
