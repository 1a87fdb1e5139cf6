package jwt

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	todo "github.com/todo-api/todo-api"
)

var allAlgs = []string{"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// keyRing is one key per alg published in one JWKS, and a service that
// trusts both it and testSecret.
type keyRing struct {
	keys    map[string]signingKey
	server  *keySetServer
	service *Service
}

func MustKeyRing(tb testing.TB) keyRing {
	tb.Helper()
	r := keyRing{keys: map[string]signingKey{}}
	var jwks []json.RawMessage
	for _, alg := range allAlgs {
		k := MustKey(tb, alg, "kid-"+alg)
		r.keys[alg] = k
		jwks = append(jwks, k.JWK(tb))
	}
	r.server = MustKeySetServer(tb, jwks...)
	r.service = MustService(tb, Config{Secret: testSecret, JWKSURL: r.server.JWKSURL()}, fastTiming)
	return r
}

func TestVerifyEveryAlgorithm(t *testing.T) {
	t.Parallel()
	r := MustKeyRing(t)
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			claims := validClaims("user-" + alg)
			claims["email"] = "a@example.com"
			claims["name"] = "Ada"
			got := MustVerify(t, r.service, r.keys[alg].Sign(t, claims), "user-"+alg)
			want := todo.Identity{UserID: "user-" + alg, Email: "a@example.com", Name: "Ada"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("HS256", func(t *testing.T) {
		t.Parallel()
		MustVerify(t, r.service, MustSign(t, "HS256", testSecret, nil, validClaims("u1")), "u1")
	})
	// The JWKS fetch at start-up is the only one: known kids cause none.
	if got := r.server.hits.Load(); got != 1 {
		t.Errorf("key set fetches: got %d, want 1", got)
	}
}

func TestVerifyWrongKey(t *testing.T) {
	t.Parallel()
	r := MustKeyRing(t)
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			other := MustKey(t, alg, "kid-"+alg) // same kid, another key
			if strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS") {
				other = MustFreshRSAKey(t, alg, "kid-"+alg)
			}
			MustReject(t, r.service, other.Sign(t, validClaims("u")), msgSignature)
		})
	}
	t.Run("HS256", func(t *testing.T) {
		t.Parallel()
		otherSecret := []byte("another-secret-of-thirty-two-bytes!!")
		MustReject(t, r.service, MustSign(t, "HS256", otherSecret, nil, validClaims("u")), msgSignature)
	})
}

func TestVerifyTamperedPayload(t *testing.T) {
	t.Parallel()
	r := MustKeyRing(t)
	for _, token := range []string{
		MustSign(t, "HS256", testSecret, nil, validClaims("alice")),
		r.keys["EdDSA"].Sign(t, validClaims("alice")),
		r.keys["RS256"].Sign(t, validClaims("alice")),
	} {
		parts := strings.Split(token, ".")
		forged, err := json.Marshal(validClaims("mallory"))
		if err != nil {
			t.Fatal(err)
		}
		parts[1] = base64.RawURLEncoding.EncodeToString(forged)
		MustReject(t, r.service, strings.Join(parts, "."), msgSignature)
	}
}

func TestVerifyAlgNone(t *testing.T) {
	t.Parallel()
	r := MustKeyRing(t)
	hsOnly := MustService(t, Config{Secret: testSecret}, fastTiming)
	for _, alg := range []string{"none", "None", "NONE", "nOnE", ""} {
		for _, sig := range [][]byte{nil, []byte("x")} {
			token := MustRawToken(t, map[string]any{"alg": alg, "typ": "JWT", "kid": "kid-EdDSA"}, validClaims("u"), sig)
			MustReject(t, r.service, token, msgAlgorithm)
			MustReject(t, hsOnly, token, msgAlgorithm)
		}
	}
	// And with the none method golang-jwt itself can produce.
	token, err := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims("u")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	MustReject(t, r.service, token, msgAlgorithm)
	MustReject(t, MustService(t, Config{JWKSURL: r.server.JWKSURL()}, fastTiming), token, msgAlgorithm)
}

// TestVerifyHMACWithPublicKey is the key confusion attack: an HS256 token
// whose secret is the bytes of a published public key, naming that key.
func TestVerifyHMACWithPublicKey(t *testing.T) {
	t.Parallel()
	r := MustKeyRing(t)
	jwksOnly := MustService(t, Config{JWKSURL: r.server.JWKSURL()}, fastTiming)
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		k := r.keys[alg]
		der, err := x509.MarshalPKIXPublicKey(k.private.Public())
		if err != nil {
			t.Fatal(err)
		}
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		secrets := map[string][]byte{"DER": der, "PEM": pemBytes, "JWK": k.JWK(t)}
		if ed, ok := k.private.Public().(ed25519.PublicKey); ok {
			secrets["raw"] = ed
		}
		for name, secret := range secrets {
			for _, hs := range []string{"HS256", "HS384", "HS512"} {
				token := MustSign(t, hs, secret, map[string]any{"kid": k.kid}, validClaims("u"))
				want := msgSignature // checked against the configured secret, and fails
				if hs != "HS256" {
					want = msgAlgorithm
				}
				t.Run(alg+"/"+name+"/"+hs, func(t *testing.T) {
					MustReject(t, r.service, token, want)
					MustReject(t, jwksOnly, token, msgAlgorithm)
				})
			}
		}
	}
}

// TestVerifySymmetricKeyInKeySet: an "oct" key published in the JWKS is
// never used, whether or not a secret is configured.
func TestVerifySymmetricKeyInKeySet(t *testing.T) {
	t.Parallel()
	ed := MustKey(t, "EdDSA", "ed")
	shared := []byte("a-secret-someone-put-in-the-jwks!")
	oct, err := json.Marshal(map[string]string{"kty": "oct", "kid": "sym", "alg": "HS256", "k": base64.RawURLEncoding.EncodeToString(shared)})
	if err != nil {
		t.Fatal(err)
	}
	srv := MustKeySetServer(t, oct, ed.JWK(t))
	token := MustSign(t, "HS256", shared, map[string]any{"kid": "sym"}, validClaims("u"))
	MustReject(t, MustService(t, Config{JWKSURL: srv.JWKSURL()}, fastTiming), token, msgAlgorithm)
	MustReject(t, MustService(t, Config{JWKSURL: srv.JWKSURL(), Secret: testSecret}, fastTiming), token, msgSignature)
}

func TestVerifyAlgKeyMismatch(t *testing.T) {
	t.Parallel()
	rsaNoAlg := MustKey(t, "RS256", "rsa-no-alg")
	rsaNoAlg.jwkAlg = ""
	rsaPS := MustKey(t, "PS256", "rsa-ps256") // same RSA key, JWK says PS256
	p256NoAlg := MustKey(t, "ES256", "p256-no-alg")
	p256NoAlg.jwkAlg = ""
	ed := MustKey(t, "EdDSA", "ed")
	srv := MustKeySetServer(t, rsaNoAlg.JWK(t), rsaPS.JWK(t), p256NoAlg.JWK(t), ed.JWK(t))
	s := MustService(t, Config{JWKSURL: srv.JWKSURL()}, fastTiming)

	// Sanity: the keys work with the algs they fit.
	MustVerify(t, s, rsaNoAlg.Sign(t, validClaims("u")), "u")
	MustVerify(t, s, MustSign(t, "RS512", rsaNoAlg.private, map[string]any{"kid": "rsa-no-alg"}, validClaims("u")), "u")
	MustVerify(t, s, rsaPS.Sign(t, validClaims("u")), "u")
	MustVerify(t, s, p256NoAlg.Sign(t, validClaims("u")), "u")

	p384 := MustKey(t, "ES384", "")
	tests := []struct {
		name  string
		token string
	}{
		// A valid RS256 signature by the right key, but the JWK says PS256.
		{"RS256 on PS256 key", MustSign(t, "RS256", rsaPS.private, map[string]any{"kid": "rsa-ps256"}, validClaims("u"))},
		{"ES256 token on RSA key", MustSign(t, "ES256", p256NoAlg.private, map[string]any{"kid": "rsa-no-alg"}, validClaims("u"))},
		{"EdDSA token on P-256 key", MustSign(t, "EdDSA", ed.private, map[string]any{"kid": "p256-no-alg"}, validClaims("u"))},
		{"ES384 token on P-256 key", MustSign(t, "ES384", p384.private, map[string]any{"kid": "p256-no-alg"}, validClaims("u"))},
		{"RS256 token on Ed25519 key", MustSign(t, "RS256", rsaNoAlg.private, map[string]any{"kid": "ed"}, validClaims("u"))},
		{"ES256 token on Ed25519 key", MustSign(t, "ES256", p256NoAlg.private, map[string]any{"kid": "ed"}, validClaims("u"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			MustReject(t, s, tt.token, msgAlgorithm)
		})
	}
}

func TestVerifyFitsCurve(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		keyAlg, tokenAlg string
		fits             bool
	}{
		{"ES256", "ES256", true}, {"ES256", "ES384", false}, {"ES384", "ES384", true},
		{"ES384", "ES512", false}, {"ES512", "ES512", true}, {"ES512", "ES256", false},
		{"EdDSA", "EdDSA", true}, {"EdDSA", "ES256", false}, {"RS256", "PS512", true}, {"RS256", "EdDSA", false},
	} {
		k := MustKey(t, tt.keyAlg, "k")
		vk := verificationKey{public: k.private.Public()}
		if got := vk.fits(tt.tokenAlg) == nil; got != tt.fits {
			t.Errorf("%s key fits %s: got %v, want %v", tt.keyAlg, tt.tokenAlg, got, tt.fits)
		}
	}
}

// TestVerifyIgnoresKeyURLHeaders: jku, x5u and jwk headers naming the
// attacker's key are never fetched nor used.
func TestVerifyIgnoresKeyURLHeaders(t *testing.T) {
	t.Parallel()
	var fetched atomic.Int64
	attacker := MustKey(t, "ES256", "attacker")
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"keys":[` + string(attacker.JWK(t)) + `]}`))
	}))
	t.Cleanup(trap.Close)
	real := MustKey(t, "ES256", "real")
	srv := MustKeySetServer(t, real.JWK(t))
	s := MustService(t, Config{JWKSURL: srv.JWKSURL(), Secret: testSecret}, fastTiming)

	var jwk map[string]any
	if err := json.Unmarshal(attacker.JWK(t), &jwk); err != nil {
		t.Fatal(err)
	}
	headers := map[string]any{"jku": trap.URL + "/jwks", "x5u": trap.URL + "/cert.pem", "jwk": jwk}
	MustReject(t, s, MustSign(t, "ES256", attacker.private, mergeHeader(headers, "kid", "attacker"), validClaims("u")), msgUnknownKey)
	MustReject(t, s, MustSign(t, "ES256", attacker.private, mergeHeader(headers, "kid", "real"), validClaims("u")), msgSignature)
	MustReject(t, s, MustSign(t, "ES256", attacker.private, headers, validClaims("u")), msgSignature)
	if got := fetched.Load(); got != 0 {
		t.Errorf("requests to jku/x5u server: got %d, want 0", got)
	}
}

func mergeHeader(h map[string]any, name string, value any) map[string]any {
	out := map[string]any{name: value}
	for k, v := range h {
		out[k] = v
	}
	return out
}

func TestVerifyHostileKID(t *testing.T) {
	t.Parallel()
	attacker := MustKey(t, "EdDSA", "")
	real := MustKey(t, "EdDSA", "real")
	srv := MustKeySetServer(t, real.JWK(t))
	s := MustService(t, Config{JWKSURL: srv.JWKSURL()}, fastTiming)
	for _, kid := range []string{"../../etc/passwd", "/etc/passwd", "1' OR '1'='1", "real' --", "", strings.Repeat("k", 4000), "real\x00"} {
		MustReject(t, s, MustSign(t, "EdDSA", attacker.private, map[string]any{"kid": kid}, validClaims("u")), msgUnknownKey)
	}
	for _, kid := range []any{42, true, []string{"real"}, map[string]string{"kid": "real"}} {
		MustReject(t, s, MustSign(t, "EdDSA", real.private, map[string]any{"kid": kid}, validClaims("u")), msgMalformed)
	}
	// crit headers name extensions nobody here understands.
	MustReject(t, s, MustSign(t, "EdDSA", real.private, map[string]any{"kid": "real", "crit": []string{"exp"}}, validClaims("u")), msgAlgorithm)
}

func TestVerifyWithoutKID(t *testing.T) {
	t.Parallel()
	ed := MustKey(t, "EdDSA", "")
	p256 := MustKey(t, "ES256", "")
	srv := MustKeySetServer(t, ed.JWK(t), p256.JWK(t))
	s := MustService(t, Config{JWKSURL: srv.JWKSURL()}, fastTiming)
	MustVerify(t, s, MustSign(t, "EdDSA", ed.private, nil, validClaims("u")), "u")
	MustVerify(t, s, MustSign(t, "ES256", p256.private, nil, validClaims("u")), "u")
	MustReject(t, s, MustSign(t, "ES384", MustKey(t, "ES384", "").private, nil, validClaims("u")), msgUnknownKey)
	other := MustKey(t, "EdDSA", "")
	MustReject(t, s, MustSign(t, "EdDSA", other.private, nil, validClaims("u")), msgSignature)
}

func TestVerifyMalformed(t *testing.T) {
	t.Parallel()
	s := MustService(t, Config{Secret: testSecret}, fastTiming)
	valid := MustSign(t, "HS256", testSecret, nil, validClaims("u"))
	for _, tt := range []struct{ token, want string }{
		{"", msgMissing},
		{"abc", msgMalformed},
		{"a.b.c", msgMalformed},
		{valid + ".x", msgMalformed},
		{strings.Repeat("a", MaxTokenLength+1), msgTooLarge},
		{MustRawToken(t, map[string]any{"alg": "HS256"}, "just a string", nil), msgMalformed},
	} {
		MustReject(t, s, tt.token, tt.want)
	}
	// A large but allowed token still works.
	claims := validClaims("u")
	claims["pad"] = strings.Repeat("p", 4000)
	MustVerify(t, s, MustSign(t, "HS256", testSecret, nil, claims), "u")
}

func TestVerifyTimeClaims(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := MustService(t, Config{Secret: testSecret, Now: func() time.Time { return now }}, fastTiming)
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	for _, tt := range []struct {
		name   string
		claims jwt.MapClaims
		want   string // "" means valid
	}{
		{"valid", jwt.MapClaims{"sub": "u", "exp": at(time.Minute), "iat": at(0), "nbf": at(0)}, ""},
		{"expired", jwt.MapClaims{"sub": "u", "exp": at(-2 * time.Minute)}, msgExpired},
		{"expired within leeway", jwt.MapClaims{"sub": "u", "exp": at(-Leeway + time.Second)}, ""},
		{"expired just beyond leeway", jwt.MapClaims{"sub": "u", "exp": at(-Leeway - time.Second)}, msgExpired},
		{"no exp", jwt.MapClaims{"sub": "u", "iat": at(0)}, msgNoExpiry},
		{"exp null", jwt.MapClaims{"sub": "u", "exp": nil}, msgNoExpiry},
		{"exp string", jwt.MapClaims{"sub": "u", "exp": "tomorrow"}, msgMalformed},
		{"nbf in future", jwt.MapClaims{"sub": "u", "exp": at(time.Hour), "nbf": at(5 * time.Minute)}, msgNotYetValid},
		{"nbf within leeway", jwt.MapClaims{"sub": "u", "exp": at(time.Hour), "nbf": at(Leeway - time.Second)}, ""},
		{"iat in future", jwt.MapClaims{"sub": "u", "exp": at(time.Hour), "iat": at(5 * time.Minute)}, msgIssuedInFuture},
		{"iat within leeway", jwt.MapClaims{"sub": "u", "exp": at(time.Hour), "iat": at(Leeway - time.Second)}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			token := MustSign(t, "HS256", testSecret, nil, tt.claims)
			if tt.want == "" {
				MustVerify(t, s, token, "u")
			} else {
				MustReject(t, s, token, tt.want)
			}
		})
	}
	if Leeway > 60*time.Second {
		t.Errorf("leeway %s exceeds the contract's 60 s", Leeway)
	}
}

func TestVerifyIssuerAndAudience(t *testing.T) {
	t.Parallel()
	ed := MustKey(t, "EdDSA", "ed")
	srv := MustKeySetServer(t, ed.JWK(t))
	s := MustService(t, Config{
		Secret: testSecret, JWKSURL: srv.JWKSURL(),
		Issuers:   []string{"https://auth.example.com", " https://old.example.com ", ""},
		Audiences: []string{"todo-api", "todo-web"},
	}, fastTiming)
	with := func(extra jwt.MapClaims) jwt.MapClaims {
		c := validClaims("u")
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	for _, tt := range []struct {
		name   string
		claims jwt.MapClaims
		want   string
	}{
		{"first issuer, aud string", with(jwt.MapClaims{"iss": "https://auth.example.com", "aud": "todo-api"}), ""},
		{"second issuer (trimmed), aud array", with(jwt.MapClaims{"iss": "https://old.example.com", "aud": []string{"other", "todo-web"}}), ""},
		{"wrong issuer", with(jwt.MapClaims{"iss": "https://evil.example.com", "aud": "todo-api"}), msgIssuer},
		{"issuer prefix", with(jwt.MapClaims{"iss": "https://auth.example.com.evil", "aud": "todo-api"}), msgIssuer},
		{"no issuer", with(jwt.MapClaims{"aud": "todo-api"}), msgIssuer},
		{"wrong audience", with(jwt.MapClaims{"iss": "https://auth.example.com", "aud": "other"}), msgAudience},
		{"wrong audiences", with(jwt.MapClaims{"iss": "https://auth.example.com", "aud": []string{"a", "b"}}), msgAudience},
		{"no audience", with(jwt.MapClaims{"iss": "https://auth.example.com"}), msgAudience},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, token := range []string{MustSign(t, "HS256", testSecret, nil, tt.claims), ed.Sign(t, tt.claims)} {
				if tt.want == "" {
					MustVerify(t, s, token, "u")
				} else {
					MustReject(t, s, token, tt.want)
				}
			}
		})
	}
}

func TestVerifySubject(t *testing.T) {
	t.Parallel()
	s := MustService(t, Config{Secret: testSecret}, fastTiming)
	exp := time.Now().Add(time.Hour).Unix()
	long := strings.Repeat("é", todo.MaxUserIDLength/2) // 254 bytes
	for _, tt := range []struct {
		name   string
		claims map[string]any
		want   todo.Identity // zero means rejected
	}{
		{"sub", map[string]any{"sub": "abc", "user_id": "x", "id": "y"}, todo.Identity{UserID: "abc"}},
		{"user_id when no sub", map[string]any{"user_id": "u1", "id": "y"}, todo.Identity{UserID: "u1"}},
		{"id when no sub nor user_id", map[string]any{"id": "i1"}, todo.Identity{UserID: "i1"}},
		{"null sub counts as absent", map[string]any{"sub": nil, "user_id": "u1"}, todo.Identity{UserID: "u1"}},
		{"integer sub converted", map[string]any{"sub": 42}, todo.Identity{UserID: "42"}},
		{"integer user_id converted", map[string]any{"user_id": json.RawMessage("12345678901234567890")}, todo.Identity{UserID: "12345678901234567890"}},
		{"email and name", map[string]any{"sub": "u", "email": "u@example.com", "name": "Ü"}, todo.Identity{UserID: "u", Email: "u@example.com", Name: "Ü"}},
		{"non-string email and name ignored", map[string]any{"sub": "u", "email": 1, "name": []string{"x"}}, todo.Identity{UserID: "u"}},
		{"max length", map[string]any{"sub": long + "a"}, todo.Identity{UserID: long + "a"}},
		{"too long", map[string]any{"sub": long + "ab"}, todo.Identity{}},
		{"empty sub", map[string]any{"sub": ""}, todo.Identity{}},
		{"empty sub does not fall back", map[string]any{"sub": "", "user_id": "u1"}, todo.Identity{}},
		{"no subject at all", map[string]any{"email": "u@example.com"}, todo.Identity{}},
		{"fraction", map[string]any{"sub": 1.5}, todo.Identity{}},
		{"exponent", map[string]any{"sub": 1e21}, todo.Identity{}},
		{"bool", map[string]any{"sub": true}, todo.Identity{}},
		{"array", map[string]any{"sub": []string{"a"}}, todo.Identity{}},
		{"object", map[string]any{"user_id": map[string]string{"a": "b"}}, todo.Identity{}},
		{"newline", map[string]any{"sub": "a\nb"}, todo.Identity{}},
		{"NUL", map[string]any{"sub": "a\x00"}, todo.Identity{}},
		{"C1 control", map[string]any{"sub": "a\u0085"}, todo.Identity{}},
		{"DEL", map[string]any{"sub": "a\x7f"}, todo.Identity{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			claims := jwt.MapClaims{"exp": exp}
			for k, v := range tt.claims {
				claims[k] = v
			}
			token := MustSign(t, "HS256", testSecret, nil, claims)
			if tt.want == (todo.Identity{}) {
				MustReject(t, s, token, msgSubject)
				return
			}
			got := MustVerify(t, s, token, tt.want.UserID)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIssueTokenRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second)
	for _, cfg := range []Config{
		{Secret: testSecret},
		{Secret: testSecret, Issuers: []string{"todo-api", "other"}, Audiences: []string{"todo-web", "x"}, Expiration: 2 * time.Hour},
	} {
		cfg.Now = func() time.Time { return now }
		s := MustService(t, cfg, fastTiming)
		want := todo.Identity{UserID: "0b7c2a44-user", Email: "ada@example.com", Name: "Ada Lovelace"}
		token, expiresIn, err := s.IssueToken(want)
		if err != nil {
			t.Fatalf("issue: %v", err)
		}
		wantExp := cfg.Expiration
		if wantExp == 0 {
			wantExp = DefaultExpiration
		}
		if expiresIn != wantExp {
			t.Errorf("expires in: got %s, want %s", expiresIn, wantExp)
		}
		got := MustVerify(t, s, token, want.UserID)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("identity (-want +got):\n%s", diff)
		}

		var claims jwt.MapClaims
		if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil {
			t.Fatal(err)
		}
		if got, want := claims["exp"], float64(now.Add(wantExp).Unix()); got != want {
			t.Errorf("exp: got %v, want %v", got, want)
		}
		if len(cfg.Issuers) > 0 && (claims["iss"] != cfg.Issuers[0] || claims["aud"] != cfg.Audiences[0]) {
			t.Errorf("iss, aud: got %v, %v, want %s, %s", claims["iss"], claims["aud"], cfg.Issuers[0], cfg.Audiences[0])
		}

		// Past its lifetime the token is refused.
		later := MustService(t, Config{Secret: testSecret, Issuers: cfg.Issuers, Audiences: cfg.Audiences,
			Now: func() time.Time { return now.Add(wantExp + Leeway + time.Second) }}, fastTiming)
		MustReject(t, later, token, msgExpired)
	}

	// Without email and name the claims are left out.
	s := MustService(t, Config{Secret: testSecret}, fastTiming)
	token, _, err := s.IssueToken(todo.Identity{UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"email", "name", "iss", "aud"} {
		if _, ok := claims[name]; ok {
			t.Errorf("claim %s: present, want absent", name)
		}
	}
}

func TestIssueTokenErrors(t *testing.T) {
	t.Parallel()
	srv := MustKeySetServer(t, MustKey(t, "EdDSA", "ed").JWK(t))
	jwksOnly := MustService(t, Config{JWKSURL: srv.JWKSURL()}, fastTiming)
	if _, _, err := jwksOnly.IssueToken(todo.Identity{UserID: "u"}); err == nil {
		t.Error("issue without secret: got no error")
	}
	s := MustService(t, Config{Secret: testSecret}, fastTiming)
	for _, sub := range []string{"", "a\nb", strings.Repeat("x", todo.MaxUserIDLength+1)} {
		if _, _, err := s.IssueToken(todo.Identity{UserID: sub}); err == nil {
			t.Errorf("issue for %q: got no error", sub)
		}
	}
}

func TestNewConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"nothing", Config{}},
		{"empty secret only", Config{Secret: []byte{}}},
		{"short secret", Config{Secret: testSecret[:MinSecretLength-1]}},
		{"short secret with JWKS", Config{Secret: []byte("short"), JWKSURL: "http://127.0.0.1:1/jwks"}},
		{"relative URL", Config{JWKSURL: "/api/auth/jwks"}},
		{"file URL", Config{JWKSURL: "file:///etc/passwd"}},
		{"bad URL", Config{JWKSURL: "http://[::1"}},
		{"negative expiration", Config{Secret: testSecret, Expiration: -time.Hour}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(context.Background(), tt.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("New: got no error")
			}
		})
	}
	s, err := New(context.Background(), Config{Secret: testSecret})
	if err != nil {
		t.Fatalf("New with a %d-byte secret: %v", MinSecretLength, err)
	}
	defer s.Close()
	if err := s.Ready(context.Background()); err != nil {
		t.Errorf("Ready with HS256 only: %v", err)
	}
}

func TestSecretIsCopied(t *testing.T) {
	t.Parallel()
	secret := append([]byte(nil), testSecret...)
	s := MustService(t, Config{Secret: secret}, fastTiming)
	token := MustSign(t, "HS256", testSecret, nil, validClaims("u"))
	secret[0] ^= 0xff
	MustVerify(t, s, token, "u")
}

// benchmarkVerify measures a token's first check (the signature: the
// cache is emptied each time) and its repeated use (a cache hit).
func benchmarkVerify(b *testing.B, s *Service, token string) {
	ctx := context.Background()
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			clear(s.verified.entries)
			if _, err := s.VerifyToken(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.VerifyToken(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyHS256(b *testing.B) {
	s := MustService(b, Config{Secret: testSecret}, fastTiming)
	benchmarkVerify(b, s, MustSign(b, "HS256", testSecret, nil, validClaims("user-1")))
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	ed := MustKey(b, "EdDSA", "ed")
	srv := MustKeySetServer(b, ed.JWK(b))
	s := MustService(b, Config{JWKSURL: srv.JWKSURL()}, fastTiming)
	benchmarkVerify(b, s, ed.Sign(b, validClaims("user-1")))
}

// The verified-token cache must not change any answer: a cached token
// still expires on time, and one whose key leaves the set stops working.
func TestVerifiedCacheKeepsAnswers(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	secret := []byte("0123456789abcdef0123456789abcdef")
	s, err := New(context.Background(), Config{Secret: secret, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u", "exp": now.Add(time.Minute).Unix()}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.VerifyToken(context.Background(), token); err != nil {
			t.Fatalf("use %d: %v", i, err)
		}
	}
	now = now.Add(time.Minute + Leeway)
	if _, err := s.VerifyToken(context.Background(), token); err == nil {
		t.Errorf("cached token accepted after exp + leeway")
	}
}
