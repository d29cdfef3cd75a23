package ledger

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"

	"github.com/keybrake/keybrake/allowlist"
)

// KeyCache puts a ristretto cache in front of Store.KeyByHash. It only
// saves the lookup: spend is never decided from it, because Reserve checks
// revocation, expiry, caps and the matched allowlist entry in the store
// itself. Entries live at most TTL, and every node drops them all when any
// key changes (see Invalidate).
type KeyCache struct {
	store KeyLookup
	cache *ristretto.Cache[string, CachedKey]
	// ttl is a time.Duration a config reload may change (SetTTL).
	ttl    atomic.Int64
	flight singleflight.Group
}

// KeyLookup is the part of a Store a KeyCache reads through.
type KeyLookup interface {
	KeyByHash(ctx context.Context, h Hash) (Key, error)
}

// sharedLookupTimeout bounds a lookup shared by concurrent callers.
const sharedLookupTimeout = 10 * time.Second

// DefaultKeyCacheTTL bounds how long a cached key is trusted for the checks
// done before Reserve (allowlist, vendor).
const DefaultKeyCacheTTL = 5 * time.Second

// NewKeyCache returns a cache of up to maxKeys keys in front of store.
func NewKeyCache(store KeyLookup, maxKeys int64, ttl time.Duration) (*KeyCache, error) {
	if maxKeys <= 0 {
		maxKeys = 100_000
	}
	c, err := ristretto.NewCache(&ristretto.Config[string, CachedKey]{
		NumCounters: maxKeys * 10,
		MaxCost:     maxKeys,
		BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("creating key cache: %w", err)
	}
	kc := &KeyCache{store: store, cache: c}
	kc.ttl.Store(int64(keyCacheTTL(ttl)))
	return kc, nil
}

func keyCacheTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return DefaultKeyCacheTTL
	}
	return ttl
}

// TTL is how long a key stays cached.
func (c *KeyCache) TTL() time.Duration { return time.Duration(c.ttl.Load()) }

// SetTTL changes how long keys stay cached (0: the default). A change drops
// every cached key, so that none outlives the new TTL.
func (c *KeyCache) SetTTL(ttl time.Duration) {
	if old := c.ttl.Swap(int64(keyCacheTTL(ttl))); old != int64(keyCacheTTL(ttl)) {
		c.cache.Clear()
	}
}

// CachedKey is a key as the gate uses it, with its allowlist compiled once,
// when the key entered the cache, rather than on every call.
type CachedKey struct {
	Key
	// Allowlist is Key.AllowedEndpoints compiled. An entry that does not
	// parse (stored by an older version) matches nothing; the others do.
	Allowlist allowlist.List
	// AllowlistErrors are the entries left out of Allowlist, and why.
	AllowlistErrors []error
}

// Lookup returns the key whose secret hashes to h. Concurrent misses for
// the same hash share one store lookup, so a fan-out of 500 workers starting
// at once costs one query, not 500.
func (c *KeyCache) Lookup(ctx context.Context, h Hash) (CachedKey, error) {
	id := string(h[:])
	if k, ok := c.cache.Get(id); ok {
		return k, nil
	}
	v, err, _ := c.flight.Do(id, func() (any, error) {
		// Shared by every caller asking for this hash at once: one
		// client hanging up must not fail the others' lookups.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedLookupTimeout)
		defer cancel()
		k, err := c.store.KeyByHash(ctx, h)
		if err != nil {
			return CachedKey{}, err
		}
		ck := CachedKey{Key: k}
		ck.Allowlist, ck.AllowlistErrors = allowlist.Compile(k.AllowedEndpoints)
		c.cache.SetWithTTL(id, ck, 1, c.TTL())
		return ck, nil
	})
	if err != nil {
		return CachedKey{}, err
	}
	return v.(CachedKey), nil
}

// Invalidate drops cached keys after keyID changed. Keys change rarely
// (revocation), and a change on another node arrives by id only while the
// cache is indexed by hash, so the whole cache is dropped: cheaper to
// refill than to keep an id index consistent.
func (c *KeyCache) Invalidate(keyID string) {
	c.cache.Clear()
}

// Wait blocks until pending cache writes are visible (ristretto applies
// them asynchronously); for tests that need a warm cache.
func (c *KeyCache) Wait() { c.cache.Wait() }

// Close releases the cache.
func (c *KeyCache) Close() { c.cache.Close() }
