package jwt

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	todo "github.com/todo-api/todo-api"
	"github.com/todo-api/todo-api/jwt/betterauthtest"
)

// These tests verify tokens minted by a real Better Auth server (see
// testdata/betterauth); they skip when node or its node_modules are
// missing, and fail instead when CI=true.

// tokenHeader returns a token's header, unverified.
func tokenHeader(tb testing.TB, token string) map[string]any {
	tb.Helper()
	t, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		tb.Fatalf("parse header: %v", err)
	}
	return t.Header
}

func TestBetterAuthAlgorithms(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"", "RS256", "ES256", "PS256", "ES512"} {
		name := alg
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ba := betterauthtest.Start(t, betterauthtest.Options{Alg: alg})
			sess := ba.SignUpSession(t, "ada@example.com", "correct horse battery")
			token := sess.Token(t)
			if got := tokenHeader(t, token)["alg"]; got != ba.Alg {
				t.Errorf("token alg: got %v, want %s", got, ba.Alg)
			}
			// Better Auth's default issuer and audience are its base URL.
			s := MustService(t, Config{JWKSURL: ba.JWKSURL(), Issuers: []string{ba.URL}, Audiences: []string{ba.URL}}, fastTiming)
			got := MustVerify(t, s, token, sess.UserID)
			want := todo.Identity{UserID: sess.UserID, Email: "ada@example.com", Name: "ada"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
			// Better Auth's tokens last 15 minutes by default.
			later := MustService(t, Config{JWKSURL: ba.JWKSURL(),
				Now: func() time.Time { return time.Now().Add(15*time.Minute + Leeway + time.Minute) }}, fastTiming)
			MustReject(t, later, token, msgExpired)
		})
	}
}

func TestBetterAuthIssuerAudience(t *testing.T) {
	t.Parallel()
	ba := betterauthtest.Start(t, betterauthtest.Options{
		Issuer: "https://auth.todo.test", Audience: "todo-api", Expiration: "2s",
	})
	token := ba.SignUp(t, "grace@example.com", "correct horse battery")

	ok := MustService(t, Config{JWKSURL: ba.JWKSURL(),
		Issuers: []string{"https://other.test", "https://auth.todo.test"}, Audiences: []string{"todo-web", "todo-api"}}, fastTiming)
	MustVerify(t, ok, token, tokenSubject(t, token))
	MustReject(t, MustService(t, Config{JWKSURL: ba.JWKSURL(), Issuers: []string{"https://other.test"}}, fastTiming), token, msgIssuer)
	MustReject(t, MustService(t, Config{JWKSURL: ba.JWKSURL(), Audiences: []string{"todo-web"}}, fastTiming), token, msgAudience)

	// expirationTime "2s": refused once that and the leeway have passed.
	expired := MustService(t, Config{JWKSURL: ba.JWKSURL(),
		Now: func() time.Time { return time.Now().Add(2*time.Second + Leeway + time.Second) }}, fastTiming)
	MustReject(t, expired, token, msgExpired)
}

func tokenSubject(tb testing.TB, token string) string {
	tb.Helper()
	var c jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		tb.Fatal(err)
	}
	sub, _ := c["sub"].(string)
	return sub
}

// TestBetterAuthRotation uses Better Auth's own rotation: with
// rotationInterval 3 s the first token after 3 s is signed by a new key;
// the old key stays published for the grace period (3 s), then goes.
func TestBetterAuthRotation(t *testing.T) {
	t.Parallel()
	const rotation, grace = 3 * time.Second, 3 * time.Second
	ba := betterauthtest.Start(t, betterauthtest.Options{RotationInterval: rotation, GracePeriod: grace})
	sess := ba.SignUpSession(t, "linus@example.com", "correct horse battery")
	first := sess.Token(t)
	minted := time.Now()
	s := MustService(t, Config{JWKSURL: ba.JWKSURL()}, fastTiming)
	MustVerify(t, s, first, sess.UserID)

	time.Sleep(time.Until(minted.Add(rotation + 300*time.Millisecond)))
	second := sess.Token(t)
	oldKID, newKID := tokenHeader(t, first)["kid"], tokenHeader(t, second)["kid"]
	if oldKID == newKID {
		t.Fatalf("kid after rotation: got %v again, want a new key", newKID)
	}
	// The new kid is unknown to s's cache: it refreshes and finds it.
	MustVerify(t, s, second, sess.UserID)
	// The old key is still published, so its tokens still pass.
	MustVerify(t, s, first, sess.UserID)
	if time.Since(minted) > rotation+grace {
		t.Fatalf("test too slow: the grace period ended before the old token was checked")
	}

	// After the grace period the old key is gone from the set.
	time.Sleep(time.Until(minted.Add(rotation + grace + time.Second)))
	fresh := MustService(t, Config{JWKSURL: ba.JWKSURL()}, fastTiming)
	MustReject(t, fresh, first, msgUnknownKey)
	MustVerify(t, fresh, second, sess.UserID)
}
