package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	todo "github.com/todo-api/todo-api"
)

// asymmetricAlgs are the algorithms accepted from the key set.
var asymmetricAlgs = []string{"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// Reasons a key lookup fails; VerifyToken turns them into safe messages.
var (
	errUnknownKey   = errors.New("no key with this kid")
	errKeyMismatch  = errors.New("token alg does not fit its key")
	errAlgDisabled  = errors.New("no key of this kind is configured")
	errCritical     = errors.New("token has a crit header")
	errKIDNotString = errors.New("kid is not a string")
)

// Messages of the UNAUTHORIZED errors VerifyToken returns.
const (
	msgMissing        = "token is missing"
	msgTooLarge       = "token is too large"
	msgMalformed      = "token is malformed"
	msgUnknownKey     = "token signing key is unknown"
	msgAlgorithm      = "token algorithm is not accepted"
	msgSignature      = "token signature is invalid"
	msgExpired        = "token expired"
	msgNoExpiry       = "token has no expiry"
	msgNotYetValid    = "token is not valid yet"
	msgIssuedInFuture = "token is issued in the future"
	msgIssuer         = "token issuer is not accepted"
	msgAudience       = "token audience is not accepted"
	msgSubject        = "token subject is missing or invalid"
	msgInvalid        = "token is invalid"
	msgUnverifiable   = "token cannot be verified"
)

// VerifyToken returns the identity a valid token carries: the sub claim
// (user_id, then id, only when sub is absent; integer values are converted
// to their decimal text), and the email and name claims when they are
// strings.
// Errors: UNAUTHORIZED, with a short message safe to show, for any token
// that is not valid now.
func (s *Service) VerifyToken(ctx context.Context, token string) (todo.Identity, error) {
	if token == "" {
		return todo.Identity{}, unauthorized(msgMissing)
	}
	if len(token) > MaxTokenLength {
		return todo.Identity{}, unauthorized(msgTooLarge)
	}
	now := s.now()
	var keys *keySnapshot
	if s.remote != nil {
		// Taken before the check: a refresh during it makes the entry stale.
		keys = s.remote.keys.Load()
	}
	if id, ok := s.verified.get(token, now, keys); ok {
		return id, nil
	}
	var c tokenClaims
	t, err := s.parser.ParseWithClaims(token, &c, s.keyfunc(ctx))
	if err != nil {
		msg := rejection(err, &c)
		if t != nil && t.Method != nil && !slices.Contains(s.methods, t.Method.Alg()) {
			// golang-jwt reports an alg outside the list as a bad signature.
			msg = msgAlgorithm
		}
		s.logger.DebugContext(ctx, "token rejected", "reason", msg, "error", err)
		return todo.Identity{}, unauthorized(msg)
	}
	if len(s.issuers) > 0 && !slices.Contains(s.issuers, c.Issuer) {
		return todo.Identity{}, unauthorized(msgIssuer)
	}
	id, ok := c.identity()
	if !ok {
		return todo.Identity{}, unauthorized(msgSubject)
	}
	if _, hmac := t.Method.(*jwt.SigningMethodHMAC); hmac {
		keys = nil
	}
	// exp is required, so it is set here.
	s.verified.put(token, verifiedToken{id: id, expires: c.ExpiresAt.Add(Leeway), keys: keys})
	return id, nil
}

func unauthorized(msg string) *todo.Error {
	return &todo.Error{Code: todo.EUNAUTHORIZED, Message: msg}
}

// rejection picks the message for a parse error; signature and key
// problems come first so that an expired forgery is reported as a forgery.
func rejection(err error, c *tokenClaims) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, errKIDNotString):
		return msgMalformed
	case errors.Is(err, errUnknownKey):
		return msgUnknownKey
	case errors.Is(err, errKeyMismatch), errors.Is(err, errAlgDisabled), errors.Is(err, errCritical):
		return msgAlgorithm
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// golang-jwt: alg missing or not one it knows ("None", "HS1024", ...).
		return msgAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return msgSignature
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && c.ExpiresAt == nil:
		return msgNoExpiry
	case errors.Is(err, jwt.ErrTokenExpired):
		return msgExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return msgNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return msgIssuedInFuture
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// exp is present, so the missing claim is aud.
		return msgAudience
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return msgInvalid
	}
	return msgUnverifiable
}

// keyfunc returns the key for a token: the secret for HMAC, otherwise the
// key set's key named by kid, after checking that the token's alg fits it.
// golang-jwt has already rejected algs outside the configured list (none
// included) before calling it.
func (s *Service) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		// No extension we understand can be critical (RFC 7515 §4.1.11).
		if _, ok := t.Header["crit"]; ok {
			return nil, errCritical
		}
		alg := t.Method.Alg()
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
			if s.secret == nil {
				return nil, errAlgDisabled
			}
			return s.secret, nil
		}
		if s.remote == nil {
			return nil, errAlgDisabled
		}
		// jku, x5u, jwk and x5c headers are never looked at: keys come
		// from the configured set only.
		kidValue, hasKID := t.Header["kid"]
		if !hasKID {
			keys := s.remote.compatible(alg)
			if len(keys.Keys) == 0 {
				return nil, errUnknownKey
			}
			return keys, nil
		}
		kid, ok := kidValue.(string)
		if !ok {
			return nil, errKIDNotString
		}
		k, ok := s.remote.key(ctx, kid)
		if !ok {
			return nil, fmt.Errorf("%w %q", errUnknownKey, kid)
		}
		if err := k.fits(alg); err != nil {
			return nil, err
		}
		return k.public, nil
	}
}

// fits reports whether a token signed with alg may be checked with k: the
// JWK's own alg, when it states one, must be alg, and the key must be of
// the type (and curve) alg needs.
func (k verificationKey) fits(alg string) error {
	if k.alg != "" && k.alg != alg {
		return fmt.Errorf("%w: key states alg %q, token %q", errKeyMismatch, k.alg, alg)
	}
	ok := false
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		_, ok = k.public.(*rsa.PublicKey)
	case "ES256":
		ok = hasCurve(k.public, elliptic.P256())
	case "ES384":
		ok = hasCurve(k.public, elliptic.P384())
	case "ES512":
		ok = hasCurve(k.public, elliptic.P521())
	case "EdDSA":
		_, ok = k.public.(ed25519.PublicKey)
	}
	if !ok {
		return fmt.Errorf("%w: %s token, %T key", errKeyMismatch, alg, k.public)
	}
	return nil
}

func hasCurve(key any, curve elliptic.Curve) bool {
	k, ok := key.(*ecdsa.PublicKey)
	return ok && k.Curve == curve
}

// tokenClaims are the claims VerifyToken reads. The subject candidates stay
// raw so that absent, string and number can be told apart.
type tokenClaims struct {
	ExpiresAt *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	Issuer    string           `json:"iss"`
	Audience  jwt.ClaimStrings `json:"aud"`
	Subject   json.RawMessage  `json:"sub"`
	UserID    json.RawMessage  `json:"user_id"`
	ID        json.RawMessage  `json:"id"`
	Email     json.RawMessage  `json:"email"`
	Name      json.RawMessage  `json:"name"`
}

func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *tokenClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error)       { return c.Audience, nil }
func (c *tokenClaims) GetSubject() (string, error) {
	sub, _ := subjectText(c.Subject)
	return sub, nil
}

// identity returns the identity the claims name, or false when the subject
// is absent or not a valid user id.
func (c *tokenClaims) identity() (todo.Identity, bool) {
	raw := c.Subject
	if absent(raw) {
		raw = c.UserID
	}
	if absent(raw) {
		raw = c.ID
	}
	sub, ok := subjectText(raw)
	if !ok || !ValidSubject(sub) {
		return todo.Identity{}, false
	}
	return todo.Identity{UserID: sub, Email: stringClaim(c.Email), Name: stringClaim(c.Name)}, true
}

// absent reports whether a claim is missing or null.
func absent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// subjectText returns a subject claim as text: a JSON string, or a JSON
// integer as its decimal digits (some issuers use numeric user ids).
// Fractions, exponents, booleans, objects and arrays are not subjects.
func subjectText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	}
	digits := raw
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return "", false
	}
	for _, b := range digits {
		if b < '0' || b > '9' {
			return "", false
		}
	}
	return string(raw), true
}

// ValidSubject reports whether sub can be a user id: non-empty, at most
// todo.MaxUserIDLength bytes, valid UTF-8 and free of control characters.
func ValidSubject(sub string) bool {
	if sub == "" || len(sub) > todo.MaxUserIDLength || !utf8.ValidString(sub) {
		return false
	}
	for _, r := range sub {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// stringClaim returns a claim's value when it is a JSON string, else "".
func stringClaim(raw json.RawMessage) string {
	if len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return ""
	}
	return s
}
