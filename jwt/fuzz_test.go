package jwt

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	todo "github.com/todo-api/todo-api"
)

// fuzzNow is the fixed clock of the fuzz target, so that the tokens in
// its corpus stay valid (or expired) forever.
var fuzzNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fuzzSecret signs the HS256 tokens of the fuzz target.
var fuzzSecret = []byte("jwt-fuzz-secret-that-is-32-bytes-long!")

// fuzzEdKey signs the EdDSA tokens; fixed, so seeds are reproducible.
var fuzzEdKey = ed25519.NewKeyFromSeed([]byte("jwt-fuzz-ed25519-seed-32-bytes!!"))

// fuzzKeySet serves a JWKS with the Ed25519 key under kid "ed".
func fuzzKeySet(tb testing.TB) string {
	tb.Helper()
	set, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(fuzzEdKey.Public().(ed25519.PublicKey)),
	}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(set)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL + "/jwks"
}

// fuzzSign signs claims with the target's keys; alg "HS256" or "EdDSA".
func fuzzSign(tb testing.TB, alg string, header map[string]any, claims jwt.MapClaims) string {
	tb.Helper()
	var t *jwt.Token
	var key any
	switch alg {
	case "HS256":
		t, key = jwt.NewWithClaims(jwt.SigningMethodHS256, claims), fuzzSecret
	case "EdDSA":
		t, key = jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims), fuzzEdKey
	}
	for k, v := range header {
		t.Header[k] = v
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// rawToken assembles a token from raw header and payload JSON and a raw
// signature, for shapes no library would produce.
func rawToken(header, payload, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc([]byte(sig))
}

// FuzzVerifyToken: VerifyToken never panics on any string, rejects with
// UNAUTHORIZED and one of its fixed messages (never echoing the token),
// and accepts only what an independent strict parse with the real keys
// accepts, naming the same valid subject.
func FuzzVerifyToken(f *testing.F) {
	exp, iat := fuzzNow.Add(time.Hour).Unix(), fuzzNow.Add(-time.Minute).Unix()
	valid := jwt.MapClaims{"sub": "user-1", "exp": exp, "iat": iat}
	seeds := []string{
		fuzzSign(f, "HS256", nil, valid),
		fuzzSign(f, "EdDSA", map[string]any{"kid": "ed"}, valid),
		fuzzSign(f, "EdDSA", nil, valid),
		fuzzSign(f, "EdDSA", map[string]any{"kid": "unknown"}, valid),
		fuzzSign(f, "EdDSA", map[string]any{"kid": 7}, valid),
		fuzzSign(f, "HS256", map[string]any{"crit": []string{"exp"}}, valid),
		fuzzSign(f, "HS256", map[string]any{"jku": "http://evil.example/jwks", "kid": "ed"}, valid),
		fuzzSign(f, "HS256", nil, jwt.MapClaims{"sub": "user-1"}),
		fuzzSign(f, "HS256", nil, jwt.MapClaims{"sub": "user-1", "exp": fuzzNow.Add(-time.Hour).Unix()}),
		fuzzSign(f, "HS256", nil, jwt.MapClaims{"sub": "user-1", "exp": exp, "nbf": fuzzNow.Add(time.Hour).Unix()}),
		fuzzSign(f, "HS256", nil, jwt.MapClaims{"sub": 12345, "exp": exp}),
		fuzzSign(f, "HS256", nil, jwt.MapClaims{"sub": 1.5, "exp": exp}),
		fuzzSign(f, "HS256", nil, jwt.MapClaims{"sub": "", "user_id": "fallback", "exp": exp}),
		fuzzSign(f, "HS256", nil, jwt.MapClaims{"sub": "a\x00b", "exp": exp}),
		fuzzSign(f, "HS256", nil, jwt.MapClaims{"sub": strings.Repeat("s", 300), "exp": exp}),
		fuzzSign(f, "HS256", nil, jwt.MapClaims{"sub": "user-1", "exp": 1e300}),
		fuzzSign(f, "HS256", nil, jwt.MapClaims{"sub": "user-1", "exp": exp, "aud": []any{1, 2}, "iss": 5}),
		rawToken(`{"alg":"none","typ":"JWT"}`, `{"sub":"root","exp":99999999999}`, ""),
		rawToken(`{"alg":"HS256"}`, `{"sub":"root","exp":1e999}`, "sig"),
		rawToken(`{"alg":"HS256"}`, `{"sub":"root","exp":99999999999999999999}`, "sig"),
		rawToken(`{"alg":"HS256","alg":"none"}`, `{"sub":"a","sub":"b","exp":99999999999}`, ""),
		rawToken(`{"alg":"EdDSA","kid":"ed"}`, `{"sub":"\ud800","exp":99999999999}`, strings.Repeat("s", 64)),
		rawToken("\xef\xbb\xbf{\"alg\":\"HS256\"}", `{}`, ""),
		rawToken(`{"alg":"HS256"}`, strings.Repeat(`{"a":`, 5000)+"1"+strings.Repeat("}", 5000), ""),
		"", ".", "..", "...", "a.b.c", "a.b", "a.b.c.d", "eyJ.eyJ.", "\x00", "\xff\xfe", "\u0000.\u0000.\u0000",
		"Bearer " + fuzzSign(f, "HS256", nil, valid), fuzzSign(f, "HS256", nil, valid) + " ", strings.Repeat("A", MaxTokenLength+1),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	s := MustService(f, Config{Secret: fuzzSecret, JWKSURL: fuzzKeySet(f), Now: func() time.Time { return fuzzNow }}, defaultTiming)
	if err := s.Ready(context.Background()); err != nil {
		f.Fatalf("key set not loaded: %v", err)
	}
	for _, seed := range seeds[:3] {
		// The success path must be reachable from the corpus.
		if id, err := s.VerifyToken(context.Background(), seed); err != nil || id.UserID != "user-1" {
			f.Fatalf("valid seed rejected: %v", err)
		}
	}
	strict := jwt.NewParser(jwt.WithValidMethods([]string{"HS256", "EdDSA"}), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(Leeway), jwt.WithTimeFunc(func() time.Time { return fuzzNow }))
	rejectionMessages := []string{msgMissing, msgTooLarge, msgMalformed, msgUnknownKey, msgAlgorithm, msgSignature,
		msgExpired, msgNoExpiry, msgNotYetValid, msgIssuedInFuture, msgIssuer, msgAudience, msgSubject, msgInvalid, msgUnverifiable}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := s.VerifyToken(context.Background(), token)
		if err != nil {
			var e *todo.Error
			if !errors.As(err, &e) || e.Code != todo.EUNAUTHORIZED || e.Message == "" || len(e.Message) > 100 {
				t.Fatalf("VerifyToken(%q): error %v, want UNAUTHORIZED with a short message", token, err)
			}
			// Every message is one of the fixed sentences, so none can echo
			// the token (a substring test would flag a token that spells
			// part of one).
			if !slices.Contains(rejectionMessages, e.Message) {
				t.Fatalf("VerifyToken(%q): message %q is not one of the fixed messages", token, e.Message)
			}
			return
		}
		if !ValidSubject(id.UserID) {
			t.Fatalf("VerifyToken(%q) accepted subject %q", token, id.UserID)
		}
		var claims jwt.MapClaims
		parsed, err := strict.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
			if t.Method.Alg() == "HS256" {
				return fuzzSecret, nil
			}
			return fuzzEdKey.Public(), nil
		})
		if err != nil || !parsed.Valid {
			t.Fatalf("VerifyToken(%q) accepted a token a strict parse rejects: %v", token, err)
		}
		if _, crit := parsed.Header["crit"]; crit {
			t.Fatalf("VerifyToken(%q) accepted a crit header", token)
		}
		sub := claims["sub"]
		if sub == nil {
			sub = claims["user_id"]
		}
		if sub == nil {
			sub = claims["id"]
		}
		if text, ok := sub.(string); ok && id.UserID != text {
			t.Fatalf("VerifyToken(%q) = subject %q, the token says %q", token, id.UserID, text)
		}
	})
}
