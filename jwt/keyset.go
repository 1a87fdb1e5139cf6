package jwt

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// MaxKeySetSize bounds a fetched key set, in bytes.
const MaxKeySetSize = 1 << 20

// keySet is the cached remote JWKS. It does its own fetching rather than
// using keyfunc's jwkset HTTP storage because that storage cannot cap the
// response size, does not say whether a fetch ever succeeded (Ready) or
// when the issuer came back (recovery log), retries a failed start-up only
// at the full refresh interval, and times its unknown-kid refresh out with
// the same duration it waits for the rate limiter. keyfunc's Keyfunc also
// checks only the JWK's alg, not the key's type, and would hand a JWKS
// "oct" key to an HS256 token. jwkset still parses and validates each JWK.
type keySet struct {
	url    string
	client *http.Client
	logger *slog.Logger
	tm     timing

	keys atomic.Pointer[keySnapshot] // nil until a fetch has succeeded

	fetchMu    sync.Mutex    // one fetch at a time
	unknownKID *rate.Limiter // refreshes caused by unknown kids

	mu      sync.Mutex
	lastErr error // last fetch's error, nil after a success
	failing bool  // an outage has been logged and not yet its recovery

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// keySnapshot is one fetched key set; it is never changed once stored.
type keySnapshot struct {
	byKID map[string]verificationKey
	all   []verificationKey
}

// verificationKey is a usable public key of the set.
type verificationKey struct {
	kid    string
	alg    string // the JWK's alg, "" when it states none
	public crypto.PublicKey
}

// startKeySet fetches the set once, bounded by the fetch timeout, and
// starts the background refresh, which ends with ctx or close.
func startKeySet(ctx context.Context, rawURL string, client *http.Client, logger *slog.Logger, tm timing) *keySet {
	if client == nil {
		client = &http.Client{Timeout: tm.fetchTimeout}
	}
	ctx, cancel := context.WithCancel(ctx)
	ks := &keySet{
		url:        rawURL,
		client:     client,
		logger:     logger,
		tm:         tm,
		unknownKID: rate.NewLimiter(rate.Every(tm.unknownKIDInterval), 1),
		cancel:     cancel,
		done:       make(chan struct{}),
	}
	err := ks.fetch(ctx)
	go ks.refreshLoop(ctx, err)
	return ks
}

func (ks *keySet) close() {
	ks.once.Do(func() {
		ks.cancel()
		<-ks.done
	})
}

// refreshLoop refreshes the set every refresh interval while the issuer
// answers, and with a growing backoff while it does not, so that a service
// started during an outage becomes ready seconds after the issuer returns.
func (ks *keySet) refreshLoop(ctx context.Context, lastErr error) {
	defer close(ks.done)
	backoff := ks.tm.retryMin
	for {
		wait := ks.tm.refreshInterval
		if lastErr != nil {
			wait = min(backoff, ks.tm.refreshInterval)
			backoff = min(backoff*2, ks.tm.retryMax)
		} else {
			backoff = ks.tm.retryMin
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		lastErr = ks.fetch(ctx)
	}
}

// key returns the key named kid. An unknown kid causes a refresh, at most
// one per unknownKIDInterval, so rotation works at once while a flood of
// made-up kids cannot hammer the issuer.
func (ks *keySet) key(ctx context.Context, kid string) (verificationKey, bool) {
	if snap := ks.keys.Load(); snap != nil {
		if k, ok := snap.byKID[kid]; ok {
			return k, true
		}
	}
	if !ks.unknownKID.Allow() {
		return verificationKey{}, false
	}
	ks.logger.DebugContext(ctx, "unknown kid, refreshing the key set", "url", ks.url)
	// The fetch is the service's, not the request's: a client that hangs up
	// must not make it fail and count as an outage.
	if err := ks.fetch(context.WithoutCancel(ctx)); err != nil {
		return verificationKey{}, false
	}
	k, ok := ks.keys.Load().byKID[kid]
	return k, ok
}

// compatible returns the keys a token without kid may be checked against:
// those its alg fits.
func (ks *keySet) compatible(alg string) jwt.VerificationKeySet {
	var set jwt.VerificationKeySet
	if snap := ks.keys.Load(); snap != nil {
		for _, k := range snap.all {
			if k.fits(alg) == nil {
				set.Keys = append(set.Keys, k.public)
			}
		}
	}
	return set
}

func (ks *keySet) ready() error {
	if ks.keys.Load() != nil {
		return nil
	}
	ks.mu.Lock()
	err := ks.lastErr
	ks.mu.Unlock()
	if err == nil {
		err = errors.New("no key set fetched yet")
	}
	return fmt.Errorf("jwt: token issuer unreachable: %w", err)
}

// fetch replaces the cached set with the issuer's current one. On failure
// the cached keys stay. The first failure of an outage is logged, and so is
// the recovery, but not every failed attempt in between.
func (ks *keySet) fetch(ctx context.Context) error {
	ks.fetchMu.Lock()
	defer ks.fetchMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, ks.tm.fetchTimeout)
	defer cancel()
	snap, err := ks.download(ctx)
	if err == nil {
		ks.keys.Store(snap)
	}

	ks.mu.Lock()
	wasFailing := ks.failing
	ks.failing = err != nil
	ks.lastErr = err
	ks.mu.Unlock()

	cached := 0
	if s := ks.keys.Load(); s != nil {
		cached = len(s.all)
	}
	switch {
	case err != nil && !wasFailing:
		ks.logger.Error("JWKS refresh failed; keeping cached keys until the issuer answers",
			"url", ks.url, "cached_keys", cached, "error", err)
	case err == nil && wasFailing:
		ks.logger.Info("JWKS refresh recovered", "url", ks.url, "keys", cached)
	}
	return err
}

func (ks *keySet) download(ctx context.Context) (*keySnapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch key set: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch key set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch key set: status %d", resp.StatusCode)
	}
	if resp.ContentLength > MaxKeySetSize {
		return nil, fmt.Errorf("fetch key set: %d bytes, more than %d", resp.ContentLength, MaxKeySetSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxKeySetSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch key set: %w", err)
	}
	if len(body) > MaxKeySetSize {
		return nil, fmt.Errorf("fetch key set: more than %d bytes", MaxKeySetSize)
	}
	return parseKeySet(body)
}

// parseKeySet keeps the set's usable signature keys. Symmetric keys are
// dropped (HMAC is only ever checked against the configured secret), as
// are keys for another use, keys jwkset does not support and a second key
// with the same kid. A set that is not JSON, lacks "keys" or
// has keys but none usable is an error, so the cached keys stay.
func parseKeySet(body []byte) (*keySnapshot, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("parse key set: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New(`parse key set: no "keys" member`)
	}
	snap := &keySnapshot{byKID: make(map[string]verificationKey, len(set.Keys))}
	var skipped []error
	for _, raw := range set.Keys {
		k, err := parseKey(raw)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		if k.kid != "" {
			if _, dup := snap.byKID[k.kid]; dup {
				skipped = append(skipped, fmt.Errorf("duplicate kid %q", k.kid))
				continue
			}
			snap.byKID[k.kid] = k
		}
		snap.all = append(snap.all, k)
	}
	if len(snap.all) == 0 && len(set.Keys) > 0 {
		return nil, fmt.Errorf("parse key set: no usable key: %w", errors.Join(skipped...))
	}
	return snap, nil
}

func parseKey(raw json.RawMessage) (verificationKey, error) {
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return verificationKey{}, fmt.Errorf("parse key: %w", err)
	}
	if m.KTY == jwkset.KtyOct {
		return verificationKey{}, fmt.Errorf("key %q: symmetric keys are not accepted from a key set", m.KID)
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return verificationKey{}, fmt.Errorf("key %q: use %q", m.KID, m.USE)
	}
	// Private members are ignored: only the public key is needed.
	m.D, m.P, m.Q, m.DP, m.DQ, m.QI, m.OTH, m.K = "", "", "", "", "", "", nil, ""
	// Never fetch an x5u: keys come from this set only.
	m.X5U = ""
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return verificationKey{}, fmt.Errorf("key %q: %w", m.KID, err)
	}
	public := jwk.Key()
	if p, ok := public.(interface{ Public() crypto.PublicKey }); ok {
		public = p.Public()
	}
	return verificationKey{kid: m.KID, alg: string(m.ALG), public: public}, nil
}
