package jwt

import (
	"sync"
	"time"

	todo "github.com/todo-api/todo-api"
)

// verifiedCache remembers tokens that passed every check, so that a client
// sending the same token on each request costs a map lookup instead of a
// signature check (7 µs for HS256, 60 µs for EdDSA). A hit is still held
// to exp on every use, and is dropped as soon as the key set changes, so a
// key removed from the issuer's set stops its tokens exactly as before.
type verifiedCache struct {
	mu      sync.RWMutex
	max     int
	entries map[string]verifiedToken
}

type verifiedToken struct {
	id      todo.Identity
	expires time.Time    // exp plus leeway: valid while now is before it
	keys    *keySnapshot // the key set it was checked against; nil for HS256
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: make(map[string]verifiedToken)}
}

// get returns the identity of a cached token still valid at now under keys.
func (c *verifiedCache) get(token string, now time.Time, keys *keySnapshot) (todo.Identity, bool) {
	c.mu.RLock()
	v, ok := c.entries[token]
	c.mu.RUnlock()
	if !ok || !now.Before(v.expires) || (v.keys != nil && v.keys != keys) {
		return todo.Identity{}, false
	}
	return v.id, true
}

func (c *verifiedCache) put(token string, v verifiedToken) {
	c.mu.Lock()
	if len(c.entries) >= c.max {
		// Forgetting every token costs one signature check per client.
		clear(c.entries)
	}
	c.entries[token] = v
	c.mu.Unlock()
}
