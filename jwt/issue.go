package jwt

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	todo "github.com/todo-api/todo-api"
)

// IssueToken returns an HS256 token for id, signed with the secret, and its
// lifetime. It carries sub, email and name (when not empty), iat and exp,
// and iss and aud set to the first configured issuer and audience, so that
// the service accepts its own tokens.
// Errors: an internal error when no secret is configured or id.UserID is
// not a valid subject.
func (s *Service) IssueToken(id todo.Identity) (string, time.Duration, error) {
	if s.secret == nil {
		return "", 0, errors.New("issue token: no secret configured")
	}
	if !ValidSubject(id.UserID) {
		return "", 0, errors.New("issue token: invalid user id")
	}
	now := s.now()
	claims := jwt.MapClaims{
		"sub": id.UserID,
		"iat": jwt.NewNumericDate(now),
		"exp": jwt.NewNumericDate(now.Add(s.expiration)),
	}
	if id.Email != "" {
		claims["email"] = id.Email
	}
	if id.Name != "" {
		claims["name"] = id.Name
	}
	if len(s.issuers) > 0 {
		claims["iss"] = s.issuers[0]
	}
	if len(s.audiences) > 0 {
		claims["aud"] = s.audiences[0]
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
	if err != nil {
		return "", 0, fmt.Errorf("issue token: %w", err)
	}
	return token, s.expiration, nil
}
