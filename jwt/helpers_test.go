package jwt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	todo "github.com/todo-api/todo-api"
)

// testSecret is an HS256 secret of the minimum length.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// fastTiming keeps JWKS tests short.
var fastTiming = timing{
	fetchTimeout:       2 * time.Second,
	refreshInterval:    time.Hour,
	retryMin:           50 * time.Millisecond,
	retryMax:           200 * time.Millisecond,
	unknownKIDInterval: time.Minute,
}

// signingKey is a generated private key with the kid and alg it is
// published under.
type signingKey struct {
	kid     string
	alg     string // the token alg it signs with
	jwkAlg  string // the alg its JWK states, "" for none
	private crypto.Signer
}

var rsaKeyOnce = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

// MustKey returns a key for alg, published with alg stated in its JWK.
// RSA algs share one generated 2048-bit key, since generating is slow.
func MustKey(tb testing.TB, alg, kid string) signingKey {
	tb.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	default:
		priv, err = rsaKeyOnce()
	}
	if err != nil {
		tb.Fatalf("generate %s key: %v", alg, err)
	}
	return signingKey{kid: kid, alg: alg, jwkAlg: alg, private: priv}
}

// MustFreshRSAKey returns a newly generated RSA key (not the shared one).
func MustFreshRSAKey(tb testing.TB, alg, kid string) signingKey {
	tb.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatalf("generate RSA key: %v", err)
	}
	return signingKey{kid: kid, alg: alg, jwkAlg: alg, private: priv}
}

// JWK returns the public JWK of k.
func (k signingKey) JWK(tb testing.TB) json.RawMessage {
	tb.Helper()
	jwk, err := jwkset.NewJWKFromKey(k.private.Public(), jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.jwkAlg), USE: jwkset.UseSig},
	})
	if err != nil {
		tb.Fatalf("JWK of %s: %v", k.kid, err)
	}
	raw, err := json.Marshal(jwk.Marshal())
	if err != nil {
		tb.Fatalf("marshal JWK: %v", err)
	}
	return raw
}

// Sign returns a token for claims signed by k under its kid.
func (k signingKey) Sign(tb testing.TB, claims jwt.MapClaims) string {
	tb.Helper()
	return MustSign(tb, k.alg, k.private, map[string]any{"kid": k.kid}, claims)
}

// MustSign signs claims with alg and key, adding header to the token's header.
func MustSign(tb testing.TB, alg string, key any, header map[string]any, claims jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	for name, v := range header {
		t.Header[name] = v
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s token: %v", alg, err)
	}
	return s
}

// MustRawToken returns header.claims.signature with the given JSON values,
// for tokens no library would sign.
func MustRawToken(tb testing.TB, header, claims any, signature []byte) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(signature)
}

// validClaims are claims for sub valid for an hour from now.
func validClaims(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

// keySetServer is a real HTTP JWKS endpoint whose content and health the
// test controls, and which counts its requests.
type keySetServer struct {
	*httptest.Server
	hits atomic.Int64
	down atomic.Bool // answer 503

	mu   sync.Mutex
	body []byte
}

// MustKeySetServer serves keys as a JWKS at /jwks.
func MustKeySetServer(tb testing.TB, keys ...json.RawMessage) *keySetServer {
	tb.Helper()
	s := &keySetServer{}
	s.SetKeys(tb, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

func (s *keySetServer) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	if s.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	s.mu.Lock()
	body := s.body
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// SetKeys replaces the served set.
func (s *keySetServer) SetKeys(tb testing.TB, keys ...json.RawMessage) {
	tb.Helper()
	body, err := json.Marshal(map[string]any{"keys": append([]json.RawMessage{}, keys...)})
	if err != nil {
		tb.Fatalf("marshal key set: %v", err)
	}
	s.SetBody(body)
}

// SetBody replaces the served bytes.
func (s *keySetServer) SetBody(body []byte) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

// JWKSURL returns the URL of the set.
func (s *keySetServer) JWKSURL() string { return s.URL + "/jwks" }

// MustService returns a Service for cfg with the given timing, closed at
// the end of the test.
func MustService(tb testing.TB, cfg Config, tm timing) *Service {
	tb.Helper()
	s, err := newService(context.Background(), cfg, tm)
	if err != nil {
		tb.Fatalf("new service: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// MustVerify verifies token and fails the test unless it names sub.
func MustVerify(tb testing.TB, s *Service, token, sub string) todo.Identity {
	tb.Helper()
	id, err := s.VerifyToken(context.Background(), token)
	if err != nil {
		tb.Fatalf("verify: got error %v, want identity %q", err, sub)
	}
	if id.UserID != sub {
		tb.Fatalf("verify: got user %q, want %q", id.UserID, sub)
	}
	return id
}

// MustReject verifies token and fails the test unless it is rejected as
// UNAUTHORIZED with message wantMsg.
func MustReject(tb testing.TB, s *Service, token, wantMsg string) {
	tb.Helper()
	id, err := s.VerifyToken(context.Background(), token)
	if err == nil {
		tb.Fatalf("verify: got identity %+v, want rejection %q", id, wantMsg)
	}
	var e *todo.Error
	if !errors.As(err, &e) || e.Code != todo.EUNAUTHORIZED {
		tb.Fatalf("verify: got error %v, want code %s", err, todo.EUNAUTHORIZED)
	}
	if e.Message != wantMsg {
		tb.Fatalf("verify: got message %q, want %q", e.Message, wantMsg)
	}
}

// logBuffer collects log output from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Count returns how many log lines contain s.
func (b *logBuffer) Count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a logger writing to b.
func (b *logBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
