// Package jwt checks and issues the bearer tokens of todo-api.
//
// A Service accepts HS256 tokens signed with a shared secret (JWT_SECRET,
// the tokens todo-api issues itself) and tokens signed by a key of a remote
// JSON Web Key Set (JWKS_URL, e.g. Better Auth's jwt() plugin), picked by the
// token's kid. Each algorithm is pinned to its kind of key: HMAC only ever
// against the secret, EdDSA/ECDSA/RSA only ever against a JWKS key of the
// matching type, curve and stated alg. golang-jwt verifies signatures and
// time claims; jwkset turns JWKs into Go keys; fetching, caching and
// refreshing the key set is done here (see keyset.go for why not keyfunc).
package jwt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLength is the shortest HS256 secret New accepts, in bytes.
const MinSecretLength = 32

// MaxTokenLength bounds the size of a token VerifyToken looks at, in bytes.
const MaxTokenLength = 8 << 10

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// DefaultExpiration is the lifetime of issued tokens when Config.Expiration is zero.
const DefaultExpiration = 24 * time.Hour

// Config configures a Service. At least one of Secret and JWKSURL is needed.
type Config struct {
	// Secret is the HS256 shared secret (JWT_SECRET / BETTER_AUTH_SECRET);
	// nil or empty turns HS256 off.
	Secret []byte
	// JWKSURL is the remote key set (JWKS_URL); "" turns it off.
	JWKSURL string
	// Issuers are the accepted iss values; empty means iss is not checked.
	Issuers []string
	// Audiences are the accepted aud values; empty means aud is not checked.
	// A token passes when any of its audiences is one of these.
	Audiences []string
	// Expiration is the lifetime of the tokens IssueToken mints; zero means
	// DefaultExpiration.
	Expiration time.Duration
	// HTTPClient fetches the key set; nil means a client with a short timeout.
	HTTPClient *http.Client
	// Logger receives key set refresh failures and recoveries; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// timing holds the JWKS intervals; tests shorten them.
type timing struct {
	fetchTimeout       time.Duration // one key set request, start-up included
	refreshInterval    time.Duration // background refresh while the issuer answers
	retryMin, retryMax time.Duration // backoff while it does not
	unknownKIDInterval time.Duration // at most one refresh per interval for unknown kids
}

var defaultTiming = timing{
	fetchTimeout:       5 * time.Second,
	refreshInterval:    10 * time.Minute,
	retryMin:           time.Second,
	retryMax:           time.Minute,
	unknownKIDInterval: 15 * time.Second,
}

// Service verifies and issues tokens. It is safe for concurrent use.
type Service struct {
	secret     []byte
	remote     *keySet // nil when JWKSURL is not set
	issuers    []string
	audiences  []string
	expiration time.Duration
	now        func() time.Time
	logger     *slog.Logger
	methods    []string // the accepted algs
	parser     *jwt.Parser
	verified   *verifiedCache
}

// New returns a Service for cfg. When JWKSURL is set it fetches the key set
// once (bounded by a short timeout) and keeps refreshing it in the
// background until ctx is done or Close is called. An unreachable issuer is
// not an error here: Ready reports it and the service recovers on its own.
// It returns an error only for an unusable configuration.
func New(ctx context.Context, cfg Config) (*Service, error) {
	return newService(ctx, cfg, defaultTiming)
}

func newService(ctx context.Context, cfg Config, tm timing) (*Service, error) {
	if len(cfg.Secret) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("jwt: neither a secret nor a JWKS URL is configured")
	}
	if len(cfg.Secret) > 0 && len(cfg.Secret) < MinSecretLength {
		return nil, fmt.Errorf("jwt: the secret has %d bytes, at least %d are needed", len(cfg.Secret), MinSecretLength)
	}
	if cfg.Expiration < 0 {
		return nil, fmt.Errorf("jwt: negative token expiration %s", cfg.Expiration)
	}
	s := &Service{
		issuers:    cleanList(cfg.Issuers),
		audiences:  cleanList(cfg.Audiences),
		expiration: cfg.Expiration,
		now:        cfg.Now,
		logger:     cfg.Logger,
		verified:   newVerifiedCache(10_000),
	}
	if s.expiration == 0 {
		s.expiration = DefaultExpiration
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	var methods []string
	if len(cfg.Secret) > 0 {
		s.secret = append([]byte(nil), cfg.Secret...)
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("jwt: JWKS URL %q is not an http(s) URL", cfg.JWKSURL)
		}
		methods = append(methods, asymmetricAlgs...)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(s.now),
	}
	if len(s.audiences) > 0 {
		opts = append(opts, jwt.WithAudience(s.audiences...))
	}
	s.methods = methods
	s.parser = jwt.NewParser(opts...)
	if cfg.JWKSURL != "" {
		s.remote = startKeySet(ctx, cfg.JWKSURL, cfg.HTTPClient, s.logger, tm)
	}
	return s, nil
}

// cleanList trims the entries of a configured list and drops empty ones,
// so that "a, b," from an environment variable means [a b].
func cleanList(list []string) []string {
	var out []string
	for _, v := range list {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Ready returns nil when tokens can be checked: always for HS256 alone, and
// with a JWKS once the key set has been fetched at least once (cached keys
// keep serving if the issuer goes down later). Otherwise it returns an
// error saying the issuer is unreachable.
func (s *Service) Ready(ctx context.Context) error {
	if s.remote == nil {
		return nil
	}
	return s.remote.ready()
}

// Close stops the background key set refresh. It is safe to call more than once.
func (s *Service) Close() {
	if s.remote != nil {
		s.remote.close()
	}
}
