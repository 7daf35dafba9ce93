package azenauth

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/azen-sh/gateway/internal/token"
)

// fetcher is where a cache gets credentials it does not hold. It returns
// errNotFound (the cache's own) when the store has no such credential.
type fetcher[V any] func(ctx context.Context, h token.Hash) (V, error)

// errNotFound is what a fetcher returns for a credential the store does
// not have: the cache keeps that answer as a negative entry.
var errNotFound = errors.New("no such credential")

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
var errStoreUnavailable = errors.New("credential store unavailable (backing off after a failure)")

// cacheEntry is a positive (found) or negative (no such credential) answer.
type cacheEntry[V any] struct {
	value   V // valid when found
	found   bool
	fetched time.Time

	// lastTouch is the Unix nanosecond time this gateway last queued a
	// last-used update for the credential.
	lastTouch atomic.Int64

	// principal is built from value on first use and shared by every
	// request the entry answers.
	principal atomic.Pointer[Principal]
}

// credentialCache holds recent lookups of one kind of credential (API keys,
// sessions) by the hash of its secret. It is bounded (positive and negative
// entries separately, so a flood of unknown secrets cannot push out the ones
// in use), collapses concurrent misses for one secret into one store query,
// and answers from expired entries while the store fails (stale-if-error).
// Invalidate and Flush drop entries at once; a generation counter keeps a
// query that was in flight during an invalidation from putting its
// now-outdated answer back. One credential may be cached under several
// hashes (a rerolled key's old and new secrets); Invalidate drops them all.
type credentialCache[V any] struct {
	ttl           time.Duration
	maxPositive   int
	maxNegative   int
	lookupTimeout time.Duration // for secrets not cached at all
	staleTimeout  time.Duration // for refreshing an expired entry, which can answer instead
	backoff       time.Duration // after the first failure; doubles up to maxBackoff
	maxBackoff    time.Duration
	fetch         fetcher[V]
	idOf          func(V) string

	mu       sync.RWMutex
	positive map[token.Hash]*cacheEntry[V]
	negative map[token.Hash]*cacheEntry[V]
	byID     map[string][]token.Hash
	gen      uint64

	failedUntil atomic.Int64 // Unix nanoseconds; the store is not asked before
	failures    atomic.Int64 // consecutive store failures
	flight      singleflight.Group
}

func newCredentialCache[V any](fetch fetcher[V], idOf func(V) string, ttl time.Duration, size int) *credentialCache[V] {
	neg := max(size/4, 16)
	return &credentialCache[V]{
		ttl: ttl, maxPositive: size, maxNegative: neg,
		lookupTimeout: 3 * time.Second, staleTimeout: time.Second,
		backoff: 250 * time.Millisecond, maxBackoff: 4 * time.Second,
		fetch: fetch, idOf: idOf,
		positive: make(map[token.Hash]*cacheEntry[V]), negative: make(map[token.Hash]*cacheEntry[V]),
		byID: make(map[string][]token.Hash),
	}
}

// Lookup answers for the secret with hash h. An error means the store could
// not be asked and nothing was cached: the caller answers 500, never 401/403.
func (c *credentialCache[V]) Lookup(ctx context.Context, h token.Hash, now time.Time) (*cacheEntry[V], cacheResult, error) {
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
		timeout = c.staleTimeout // a slow store should not hold up a secret we can answer for
	}
	v, err, _ := c.flight.Do(flightKey(h, gen), func() (any, error) {
		// Detached from the first caller: its cancellation must not fail
		// the others waiting on this query.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		val, err := c.fetch(fctx, h)
		switch {
		case err == nil:
			c.failures.Store(0)
			return c.store(h, gen, &cacheEntry[V]{value: val, found: true, fetched: now}), nil
		case errors.Is(err, errNotFound):
			c.failures.Store(0)
			return c.store(h, gen, &cacheEntry[V]{fetched: now}), nil
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
	return v.(*cacheEntry[V]), cacheMiss, nil
}

func flightKey(h token.Hash, gen uint64) string {
	b := make([]byte, 0, len(h)+20)
	b = append(b, h[:]...)
	b = strconv.AppendUint(b, gen, 10)
	return string(b)
}

// store caches e unless an invalidation happened since gen was read, and
// returns e either way (its callers asked before the invalidation).
func (c *credentialCache[V]) store(h token.Hash, gen uint64, e *cacheEntry[V]) *cacheEntry[V] {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return e
	}
	if old := c.positive[h]; old != nil {
		e.lastTouch.Store(old.lastTouch.Load())
		c.dropLocked(h, old)
	}
	delete(c.negative, h)
	if e.found {
		if len(c.positive) >= c.maxPositive {
			c.evictLocked(c.positive, true)
		}
		c.positive[h] = e
		id := c.idOf(e.value)
		c.byID[id] = append(c.byID[id], h)
	} else {
		if len(c.negative) >= c.maxNegative {
			c.evictLocked(c.negative, false)
		}
		c.negative[h] = e
	}
	return e
}

// dropLocked removes positive entry e (cached under h) and its id index.
func (c *credentialCache[V]) dropLocked(h token.Hash, e *cacheEntry[V]) {
	delete(c.positive, h)
	id := c.idOf(e.value)
	hashes := c.byID[id]
	for i, x := range hashes {
		if x == h {
			hashes = append(hashes[:i], hashes[i+1:]...)
			break
		}
	}
	if len(hashes) == 0 {
		delete(c.byID, id)
	} else {
		c.byID[id] = hashes
	}
}

// evictLocked drops the oldest of a few entries picked at random (Go map
// iteration starts at a random place): approximate LRU without bookkeeping
// on the hit path.
func (c *credentialCache[V]) evictLocked(m map[token.Hash]*cacheEntry[V], positive bool) {
	const samples = 8
	var victim token.Hash
	var oldest *cacheEntry[V]
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
	if positive {
		c.dropLocked(victim, oldest)
	} else {
		delete(m, victim)
	}
}

// Invalidate drops every entry of credential id, if cached.
func (c *credentialCache[V]) Invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, h := range c.byID[id] {
		delete(c.positive, h)
	}
	delete(c.byID, id)
}

// Flush drops every entry (after missed invalidations).
func (c *credentialCache[V]) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.positive)
	clear(c.negative)
	clear(c.byID)
}

// Len is the number of positive and negative entries.
func (c *credentialCache[V]) Len() (positive, negative int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.positive), len(c.negative)
}
