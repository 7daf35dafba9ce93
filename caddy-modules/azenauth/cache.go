package azenauth

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// keyFetcher is where the cache gets keys it does not hold.
type keyFetcher interface {
	ByHash(ctx context.Context, h KeyHash) (Key, error)
}

// cacheResult says how a lookup was answered (the azen_auth_key_cache_total
// metric's label).
type cacheResult int

const (
	cacheHit   cacheResult = iota // a fresh entry
	cacheMiss                     // asked the store
	cacheStale                    // the store failed; an expired entry answered
)

func (r cacheResult) String() string {
	return [...]string{"hit", "miss", "stale"}[r]
}

// errStoreUnavailable is returned while the store is in its back-off after a
// failure, so a dead database is not asked on every request.
var errStoreUnavailable = errors.New("key store unavailable (backing off after a failure)")

// cacheEntry is a positive (found) or negative (no such key) answer.
type cacheEntry struct {
	key     Key // valid when found
	found   bool
	fetched time.Time

	// lastTouch is the Unix nanosecond time last_used_at was last queued
	// for this key by this gateway.
	lastTouch atomic.Int64
}

// keyCache holds recent key lookups by hash. It is bounded (positive and
// negative entries separately, so a flood of unknown keys cannot push out
// the keys in use), collapses concurrent misses for one key into one store
// query, and answers from expired entries while the store fails
// (stale-if-error). Invalidate and Flush drop entries at once; a generation
// counter keeps a query that was in flight during an invalidation from
// putting its now-outdated answer back.
type keyCache struct {
	ttl           time.Duration
	maxPositive   int
	maxNegative   int
	lookupTimeout time.Duration // for keys not cached at all
	staleTimeout  time.Duration // for refreshing an expired entry, which can answer instead
	backoff       time.Duration // after the first failure; doubles up to maxBackoff
	maxBackoff    time.Duration
	fetch         keyFetcher

	mu       sync.RWMutex
	positive map[KeyHash]*cacheEntry
	negative map[KeyHash]*cacheEntry
	byID     map[string]KeyHash
	gen      uint64

	failedUntil atomic.Int64 // Unix nanoseconds; the store is not asked before
	failures    atomic.Int64 // consecutive store failures
	flight      singleflight.Group
}

func newKeyCache(fetch keyFetcher, ttl time.Duration, size int) *keyCache {
	neg := max(size/4, 16)
	return &keyCache{
		ttl: ttl, maxPositive: size, maxNegative: neg,
		lookupTimeout: 3 * time.Second, staleTimeout: time.Second,
		backoff: 250 * time.Millisecond, maxBackoff: 4 * time.Second,
		fetch:    fetch,
		positive: make(map[KeyHash]*cacheEntry), negative: make(map[KeyHash]*cacheEntry),
		byID: make(map[string]KeyHash),
	}
}

// Lookup answers for the key with hash h. An error means the store could
// not be asked and nothing was cached: the caller answers 500, never 403.
func (c *keyCache) Lookup(ctx context.Context, h KeyHash, now time.Time) (*cacheEntry, cacheResult, error) {
	c.mu.RLock()
	e := c.positive[h]
	if e == nil {
		e = c.negative[h]
	}
	gen := c.gen
	c.mu.RUnlock()
	if e != nil && now.Sub(e.fetched) < c.ttl {
		return e, cacheHit, nil
	}
	if now.UnixNano() < c.failedUntil.Load() {
		if e != nil {
			return e, cacheStale, nil
		}
		return nil, cacheMiss, errStoreUnavailable
	}
	timeout := c.lookupTimeout
	if e != nil {
		timeout = c.staleTimeout // a slow store should not hold up a key we can answer for
	}
	v, err, _ := c.flight.Do(flightKey(h, gen), func() (any, error) {
		// Detached from the first caller: its cancellation must not fail
		// the others waiting on this query.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		k, err := c.fetch.ByHash(fctx, h)
		switch {
		case err == nil:
			c.failures.Store(0)
			return c.store(h, gen, &cacheEntry{key: k, found: true, fetched: now}), nil
		case errors.Is(err, ErrKeyNotFound):
			c.failures.Store(0)
			return c.store(h, gen, &cacheEntry{fetched: now}), nil
		default:
			n := c.failures.Add(1)
			wait := min(c.backoff<<min(n-1, 16), c.maxBackoff)
			c.failedUntil.Store(now.Add(wait).UnixNano())
			return nil, err
		}
	})
	if err != nil {
		if e != nil {
			return e, cacheStale, nil
		}
		return nil, cacheMiss, err
	}
	return v.(*cacheEntry), cacheMiss, nil
}

func flightKey(h KeyHash, gen uint64) string {
	b := make([]byte, 0, len(h)+20)
	b = append(b, h[:]...)
	b = strconv.AppendUint(b, gen, 10)
	return string(b)
}

// store caches e unless an invalidation happened since gen was read, and
// returns e either way (its callers asked before the invalidation).
func (c *keyCache) store(h KeyHash, gen uint64, e *cacheEntry) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return e
	}
	if old := c.positive[h]; old != nil {
		e.lastTouch.Store(old.lastTouch.Load())
		delete(c.positive, h)
		delete(c.byID, old.key.ID)
	}
	delete(c.negative, h)
	if e.found {
		if len(c.positive) >= c.maxPositive {
			c.evictLocked(c.positive, true)
		}
		c.positive[h] = e
		c.byID[e.key.ID] = h
	} else {
		if len(c.negative) >= c.maxNegative {
			c.evictLocked(c.negative, false)
		}
		c.negative[h] = e
	}
	return e
}

// evictLocked drops the oldest of a few entries picked at random (Go map
// iteration starts at a random place): approximate LRU without bookkeeping
// on the hit path.
func (c *keyCache) evictLocked(m map[KeyHash]*cacheEntry, positive bool) {
	const samples = 8
	var victim KeyHash
	var oldest *cacheEntry
	n := 0
	for h, e := range m {
		if oldest == nil || e.fetched.Before(oldest.fetched) {
			victim, oldest = h, e
		}
		if n++; n == samples {
			break
		}
	}
	if oldest == nil {
		return
	}
	delete(m, victim)
	if positive {
		delete(c.byID, oldest.key.ID)
	}
}

// Invalidate drops the entry of key id, if cached.
func (c *keyCache) Invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if h, ok := c.byID[id]; ok {
		delete(c.positive, h)
		delete(c.byID, id)
	}
}

// Flush drops every entry (after missed invalidations).
func (c *keyCache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.positive)
	clear(c.negative)
	clear(c.byID)
}

// Len is the number of positive and negative entries.
func (c *keyCache) Len() (positive, negative int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.positive), len(c.negative)
}
