package jwt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestKeySetRotation(t *testing.T) {
	t.Parallel()
	old := MustKey(t, "EdDSA", "2024-01")
	srv := MustKeySetServer(t, old.JWK(t))
	s := MustService(t, Config{JWKSURL: srv.JWKSURL()}, fastTiming)
	oldToken := old.Sign(t, validClaims("u"))
	MustVerify(t, s, oldToken, "u")

	// The issuer publishes a new key next to the old one and signs with it.
	next := MustKey(t, "ES256", "2024-02")
	srv.SetKeys(t, old.JWK(t), next.JWK(t))
	MustVerify(t, s, next.Sign(t, validClaims("u")), "u")
	MustVerify(t, s, oldToken, "u")
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("key set fetches: got %d, want 2 (start-up, unknown kid)", got)
	}
}

func TestKeySetUnknownKIDFlood(t *testing.T) {
	t.Parallel()
	real := MustKey(t, "EdDSA", "real")
	srv := MustKeySetServer(t, real.JWK(t))
	s := MustService(t, Config{JWKSURL: srv.JWKSURL()}, timing{
		fetchTimeout: 2 * time.Second, refreshInterval: time.Hour,
		retryMin: time.Second, retryMax: time.Second, unknownKIDInterval: 15 * time.Second,
	})
	attacker := MustKey(t, "EdDSA", "")
	start := time.Now()
	for range 100 {
		kid := fmt.Sprintf("bogus-%d", rand.Int64())
		MustReject(t, s, MustSign(t, "EdDSA", attacker.private, map[string]any{"kid": kid}, validClaims("u")), msgUnknownKey)
	}
	if got := srv.hits.Load(); got > 2 {
		t.Errorf("key set fetches after 100 bogus kids: got %d, want at most 2 (start-up, one refresh)", got)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("100 bogus kids took %s: rejections should not wait for the rate limit", elapsed)
	}
	MustVerify(t, s, real.Sign(t, validClaims("u")), "u")
}

func TestKeySetIssuerDownKeepsCachedKeys(t *testing.T) {
	t.Parallel()
	key := MustKey(t, "ES256", "k1")
	srv := MustKeySetServer(t, key.JWK(t))
	var logs logBuffer
	s := MustService(t, Config{JWKSURL: srv.JWKSURL(), Logger: logs.Logger()}, timing{
		fetchTimeout: time.Second, refreshInterval: 30 * time.Millisecond,
		retryMin: 10 * time.Millisecond, retryMax: 30 * time.Millisecond, unknownKIDInterval: time.Minute,
	})
	token := key.Sign(t, validClaims("u"))
	MustVerify(t, s, token, "u")

	srv.down.Store(true)
	before := srv.hits.Load()
	waitFor(t, 5*time.Second, "five failed refreshes", func() bool { return srv.hits.Load() >= before+5 })
	MustVerify(t, s, token, "u")
	// An unknown kid during the outage is refused, not an error storm.
	MustReject(t, s, MustKey(t, "ES256", "k2").Sign(t, validClaims("u")), msgUnknownKey)
	if err := s.Ready(context.Background()); err != nil {
		t.Errorf("Ready with cached keys: %v", err)
	}
	if got := logs.Count("JWKS refresh failed"); got != 1 {
		t.Errorf("failure log lines during one outage: got %d, want 1\n%s", got, logs.String())
	}

	srv.down.Store(false)
	waitFor(t, 5*time.Second, "recovery logged", func() bool { return logs.Count("JWKS refresh recovered") == 1 })
	MustVerify(t, s, token, "u")
	// A second outage is logged again.
	srv.down.Store(true)
	waitFor(t, 5*time.Second, "second outage logged", func() bool { return logs.Count("JWKS refresh failed") == 2 })
}

// TestKeySetStartWithIssuerDown uses the real timing: the first retry
// comes a second after start-up.
func TestKeySetStartWithIssuerDown(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	key := MustKey(t, "EdDSA", "k1")
	var logs logBuffer
	start := time.Now()
	s, err := New(context.Background(), Config{JWKSURL: "http://" + addr + "/jwks", Logger: logs.Logger()})
	if err != nil {
		t.Fatalf("New with the issuer down: %v", err)
	}
	t.Cleanup(s.Close)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("New with the issuer down took %s", elapsed)
	}
	err = s.Ready(context.Background())
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Ready with the issuer down: got %v, want an unreachable error", err)
	}
	token := key.Sign(t, validClaims("u"))
	MustReject(t, s, token, msgUnknownKey)

	// The issuer comes up on the configured address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	srv := &keySetServer{}
	srv.SetKeys(t, key.JWK(t))
	srv.Server = httptest.NewUnstartedServer(http.HandlerFunc(srv.serve))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	waitFor(t, 5*time.Second, "Ready once the issuer answers", func() bool { return s.Ready(context.Background()) == nil })
	MustVerify(t, s, token, "u")
	if got := logs.Count("JWKS refresh failed"); got != 1 {
		t.Errorf("failure log lines: got %d, want 1\n%s", got, logs.String())
	}
}

// freeAddr returns a local address nothing listens on.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestKeySetKeyRemoved(t *testing.T) {
	t.Parallel()
	stay := MustKey(t, "EdDSA", "stay")
	gone := MustKey(t, "ES256", "gone")
	srv := MustKeySetServer(t, stay.JWK(t), gone.JWK(t))
	s := MustService(t, Config{JWKSURL: srv.JWKSURL()}, timing{
		fetchTimeout: time.Second, refreshInterval: 50 * time.Millisecond,
		retryMin: 10 * time.Millisecond, retryMax: 50 * time.Millisecond, unknownKIDInterval: time.Minute,
	})
	goneToken := gone.Sign(t, validClaims("u"))
	MustVerify(t, s, goneToken, "u")

	srv.SetKeys(t, stay.JWK(t))
	waitFor(t, 5*time.Second, "the removed key to be refused", func() bool {
		_, err := s.VerifyToken(context.Background(), goneToken)
		return err != nil
	})
	MustReject(t, s, goneToken, msgUnknownKey)
	MustVerify(t, s, stay.Sign(t, validClaims("u")), "u")
}

func TestKeySetBadResponses(t *testing.T) {
	t.Parallel()
	key := MustKey(t, "EdDSA", "k")
	var huge bytes.Buffer
	huge.WriteString(`{"keys":[`)
	for huge.Len() <= MaxKeySetSize {
		huge.Write(key.JWK(t))
		huge.WriteString(",")
	}
	huge.Write(key.JWK(t))
	huge.WriteString(`]}`)

	for _, tt := range []struct {
		name string
		body []byte
	}{
		{"larger than the cap", huge.Bytes()},
		{"truncated JSON", []byte(`{"keys":[` + string(key.JWK(t)))},
		{"not JSON", []byte(`<html>login</html>`)},
		{"no keys member", []byte(`{}`)},
		{"keys not an array", []byte(`{"keys":{"kid":"k"}}`)},
		{"no usable key", []byte(`{"keys":[{"kty":"RSA","kid":"k","n":"AQAB"},{"kty":"EC","crv":"P-256","kid":"k2","x":"AA","y":"AA"}]}`)},
		{"only a symmetric key", []byte(`{"keys":[{"kty":"oct","kid":"k","k":"c2VjcmV0"}]}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := MustKeySetServer(t)
			srv.SetBody(tt.body)
			var logs logBuffer
			s := MustService(t, Config{JWKSURL: srv.JWKSURL(), Logger: logs.Logger()}, fastTiming)
			if err := s.Ready(context.Background()); err == nil {
				t.Errorf("Ready: got nil, want an error")
			}
			MustReject(t, s, key.Sign(t, validClaims("u")), msgUnknownKey)
			if got := logs.Count("JWKS refresh failed"); got != 1 {
				t.Errorf("failure log lines: got %d, want 1\n%s", got, logs.String())
			}
			// Once the issuer serves a good set, the next refresh picks it up.
			srv.SetKeys(t, key.JWK(t))
			waitFor(t, 5*time.Second, "Ready after a good set", func() bool { return s.Ready(context.Background()) == nil })
			MustVerify(t, s, key.Sign(t, validClaims("u")), "u")
		})
	}
}

func TestKeySetSkipsBadKeys(t *testing.T) {
	t.Parallel()
	good := MustKey(t, "EdDSA", "good")
	enc := MustKey(t, "ES256", "enc")
	var encJWK map[string]any
	if err := json.Unmarshal(enc.JWK(t), &encJWK); err != nil {
		t.Fatal(err)
	}
	encJWK["use"] = "enc"
	encRaw, err := json.Marshal(encJWK)
	if err != nil {
		t.Fatal(err)
	}
	srv := MustKeySetServer(t,
		json.RawMessage(`{"kty":"RSA","kid":"broken","n":"AQAB"}`),
		json.RawMessage(`{"kty":"OKP","crv":"Ed448","kid":"ed448","x":"AAAA"}`),
		encRaw,
		good.JWK(t),
	)
	s := MustService(t, Config{JWKSURL: srv.JWKSURL()}, fastTiming)
	MustVerify(t, s, good.Sign(t, validClaims("u")), "u")
	MustReject(t, s, enc.Sign(t, validClaims("u")), msgUnknownKey)
}

func TestKeySetIssuerHangs(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	key := MustKey(t, "EdDSA", "k")

	tm := fastTiming
	tm.fetchTimeout = 300 * time.Millisecond
	tm.unknownKIDInterval = 0 // every unknown kid refreshes: each must still be bounded
	start := time.Now()
	s := MustService(t, Config{JWKSURL: hang.URL + "/jwks", Secret: testSecret}, tm)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("New with a hanging issuer took %s", elapsed)
	}
	if err := s.Ready(context.Background()); err == nil {
		t.Error("Ready with a hanging issuer: got nil, want an error")
	}
	start = time.Now()
	MustReject(t, s, key.Sign(t, validClaims("u")), msgUnknownKey)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("VerifyToken with a hanging issuer took %s", elapsed)
	}
	// HS256 does not depend on the issuer.
	MustVerify(t, s, MustSign(t, "HS256", testSecret, nil, validClaims("u")), "u")
}

// TestKeySetIssuerHangsDefaults checks the bounds New ships with.
func TestKeySetIssuerHangsDefaults(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	start := time.Now()
	s, err := New(context.Background(), Config{JWKSURL: hang.URL + "/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if elapsed, limit := time.Since(start), defaultTiming.fetchTimeout+time.Second; elapsed > limit {
		t.Errorf("New with a hanging issuer took %s, want at most %s", elapsed, limit)
	}
}

func TestKeySetCloseStopsRefreshing(t *testing.T) {
	t.Parallel()
	srv := MustKeySetServer(t, MustKey(t, "EdDSA", "k").JWK(t))
	ctx, cancel := context.WithCancel(context.Background())
	s, err := newService(ctx, Config{JWKSURL: srv.JWKSURL()}, timing{
		fetchTimeout: time.Second, refreshInterval: 10 * time.Millisecond,
		retryMin: 10 * time.Millisecond, retryMax: 10 * time.Millisecond, unknownKIDInterval: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "background refreshes", func() bool { return srv.hits.Load() >= 3 })
	s.Close()
	s.Close() // idempotent
	// A fetch already on the wire at Close may reach the server a moment
	// later; what must not happen is a new one (every 10 ms if the loop ran).
	time.Sleep(50 * time.Millisecond)
	after := srv.hits.Load()
	time.Sleep(100 * time.Millisecond)
	if got := srv.hits.Load(); got != after {
		t.Errorf("fetches after Close: got %d more", got-after)
	}
	cancel()

	// Cancelling the context ends the refresh too.
	ctx, cancel = context.WithCancel(context.Background())
	s, err = newService(ctx, Config{JWKSURL: srv.JWKSURL()}, timing{
		fetchTimeout: time.Second, refreshInterval: 10 * time.Millisecond,
		retryMin: 10 * time.Millisecond, retryMax: 10 * time.Millisecond, unknownKIDInterval: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-s.remote.done
	after = srv.hits.Load()
	time.Sleep(100 * time.Millisecond)
	if got := srv.hits.Load(); got != after {
		t.Errorf("fetches after cancel: got %d more", got-after)
	}
	s.Close()
}
