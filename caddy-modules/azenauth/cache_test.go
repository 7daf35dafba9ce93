package azenauth

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/token"
)

// fakeStore is an in-memory fetcher for the cache's own rules; the real
// stores are tested in internal/apikey and internal/account, and end to end
// in tests/.
type fakeStore struct {
	mu    sync.Mutex
	keys  map[token.Hash]apikey.Key
	err   error
	calls atomic.Int64
	gate  chan struct{} // when set, the fetch waits for it
}

func newFakeStore() *fakeStore { return &fakeStore{keys: map[token.Hash]apikey.Key{}} }

func (f *fakeStore) fetch(ctx context.Context, h token.Hash) (apikey.Key, error) {
	f.calls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return apikey.Key{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return apikey.Key{}, f.err
	}
	k, ok := f.keys[h]
	if !ok {
		return apikey.Key{}, errNotFound
	}
	return k, nil
}

func (f *fakeStore) put(plain string, k apikey.Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[apikey.HashOf(plain)] = k
}

func (f *fakeStore) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func newKeyCache(f *fakeStore, ttl time.Duration, size int) *credentialCache[apikey.Key] {
	return newCredentialCache(f.fetch, func(k apikey.Key) string { return k.ID }, ttl, size)
}

func testKey(t *testing.T, f *fakeStore) (string, apikey.Key) {
	t.Helper()
	plain, _ := apikey.Generate()
	k := apikey.Key{ID: ids.New(), OrganizationID: "00000000-0000-4000-8000-000000000001", UserID: "u", Enabled: true}
	f.put(plain, k)
	return plain, k
}

func TestCacheHitMissAndTTL(t *testing.T) {
	f := newFakeStore()
	c := newKeyCache(f, time.Minute, 10)
	plain, k := testKey(t, f)
	now := time.Now()
	e, res, err := c.Lookup(context.Background(), apikey.HashOf(plain), now)
	if err != nil || res != cacheMiss || !e.found || e.value.ID != k.ID {
		t.Fatalf("first lookup: %v %v %+v", res, err, e)
	}
	for i := 0; i < 5; i++ {
		if _, res, _ := c.Lookup(context.Background(), apikey.HashOf(plain), now); res != cacheHit {
			t.Fatalf("warm lookup %d: %v", i, res)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("warm cache asked the store %d times, want 1", n)
	}
	// Past the TTL the store is asked again.
	if _, res, _ := c.Lookup(context.Background(), apikey.HashOf(plain), now.Add(2*time.Minute)); res != cacheMiss {
		t.Fatalf("after TTL: %v", res)
	}
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("store asked %d times, want 2", n)
	}
}

func TestCacheKeepsNegativeAnswers(t *testing.T) {
	f := newFakeStore()
	c := newKeyCache(f, time.Minute, 10)
	unknown, _ := apikey.Generate()
	for i := 0; i < 3; i++ {
		e, _, err := c.Lookup(context.Background(), apikey.HashOf(unknown), time.Now())
		if err != nil || e.found {
			t.Fatalf("unknown key: %+v %v", e, err)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("store asked %d times for one unknown key, want 1", n)
	}
}

func TestConcurrentMissesCollapseIntoOneQuery(t *testing.T) {
	f := newFakeStore()
	f.gate = make(chan struct{})
	c := newKeyCache(f, time.Minute, 10)
	plain, _ := testKey(t, f)
	var wg, started sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			if e, _, err := c.Lookup(context.Background(), apikey.HashOf(plain), time.Now()); err != nil || !e.found {
				t.Errorf("lookup: %v", err)
			}
		}()
	}
	started.Wait()
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the others reach the cache
	// While the first query is held, every other miss joins it.
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("50 concurrent misses made %d queries, want 1", n)
	}
	close(f.gate)
	wg.Wait()
}

func TestStoreFailureWithoutEntryIsAnError(t *testing.T) {
	f := newFakeStore()
	f.fail(errors.New("connection refused"))
	c := newKeyCache(f, time.Minute, 10)
	plain, _ := apikey.Generate()
	if _, _, err := c.Lookup(context.Background(), apikey.HashOf(plain), time.Now()); err == nil {
		t.Fatal("no error while the store fails")
	}
	// During the back-off the store is not asked again.
	if _, _, err := c.Lookup(context.Background(), apikey.HashOf(plain), time.Now()); !errors.Is(err, errStoreUnavailable) {
		t.Fatalf("during back-off: %v", err)
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("store asked %d times, want 1", n)
	}
}

func TestExpiredEntryAnswersWhileStoreFails(t *testing.T) {
	f := newFakeStore()
	c := newKeyCache(f, time.Second, 10)
	plain, k := testKey(t, f)
	now := time.Now()
	if _, _, err := c.Lookup(context.Background(), apikey.HashOf(plain), now); err != nil {
		t.Fatal(err)
	}
	f.fail(errors.New("database down"))
	e, res, err := c.Lookup(context.Background(), apikey.HashOf(plain), now.Add(time.Hour))
	if err != nil || res != cacheStale || e.value.ID != k.ID {
		t.Fatalf("stale-if-error: %v %v", res, err)
	}
	// And again during the back-off, without asking.
	calls := f.calls.Load()
	if _, res, _ := c.Lookup(context.Background(), apikey.HashOf(plain), now.Add(time.Hour)); res != cacheStale || f.calls.Load() != calls {
		t.Fatalf("during back-off: %v, calls %d -> %d", res, calls, f.calls.Load())
	}
}

func TestInvalidateDropsEntryAndBlocksInFlightAnswer(t *testing.T) {
	f := newFakeStore()
	c := newKeyCache(f, time.Hour, 10)
	plain, k := testKey(t, f)
	h := apikey.HashOf(plain)
	c.Lookup(context.Background(), h, time.Now())
	c.Invalidate(k.ID)
	if p, _ := c.Len(); p != 0 {
		t.Fatalf("%d positive entries after invalidation", p)
	}

	// A query in flight while the key is invalidated must not be cached.
	f.gate = make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Lookup(context.Background(), h, time.Now())
	}()
	for f.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	c.Invalidate(k.ID)
	close(f.gate)
	<-done
	if p, _ := c.Len(); p != 0 {
		t.Fatal("an answer fetched before the invalidation was cached")
	}
}

func TestFlushDropsEverything(t *testing.T) {
	f := newFakeStore()
	c := newKeyCache(f, time.Hour, 10)
	plain, _ := testKey(t, f)
	unknown, _ := apikey.Generate()
	c.Lookup(context.Background(), apikey.HashOf(plain), time.Now())
	c.Lookup(context.Background(), apikey.HashOf(unknown), time.Now())
	c.Flush()
	if p, n := c.Len(); p+n != 0 {
		t.Fatalf("%d+%d entries after flush", p, n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	f := newFakeStore()
	c := newKeyCache(f, time.Hour, 20)
	for i := 0; i < 100; i++ {
		plain, _ := testKey(t, f)
		unknown, _ := apikey.Generate()
		c.Lookup(context.Background(), apikey.HashOf(plain), time.Now())
		c.Lookup(context.Background(), apikey.HashOf(unknown), time.Now())
	}
	p, n := c.Len()
	if p > 20 || n > c.maxNegative {
		t.Fatalf("cache holds %d positive (max 20) and %d negative (max %d)", p, n, c.maxNegative)
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.byID) != p {
		t.Fatalf("id index has %d entries for %d keys", len(c.byID), p)
	}
}

func TestBackoffGrowsWhileTheStoreFailsAndResets(t *testing.T) {
	f := newFakeStore()
	f.fail(errors.New("down"))
	c := newKeyCache(f, time.Minute, 10)
	plain, _ := apikey.Generate()
	now := time.Now()
	var waits []time.Duration
	for i := 0; i < 6; i++ {
		c.Lookup(context.Background(), apikey.HashOf(plain), now)
		until := time.Unix(0, c.failedUntil.Load())
		waits = append(waits, until.Sub(now))
		now = until // next attempt right when the back-off ends
	}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("back-offs %v, want %v", waits, want)
		}
	}
	f.fail(nil)
	if _, _, err := c.Lookup(context.Background(), apikey.HashOf(plain), now); err != nil {
		t.Fatal(err)
	}
	if c.failures.Load() != 0 {
		t.Fatal("failure count not reset by a success")
	}
}

func TestInvalidateDropsEveryHashOfARerolledKey(t *testing.T) {
	f := newFakeStore()
	c := newKeyCache(f, time.Hour, 10)
	old, k := testKey(t, f)
	fresh, _ := apikey.Generate()
	f.put(fresh, k) // the same key under its new secret, as after a reroll
	c.Lookup(context.Background(), apikey.HashOf(old), time.Now())
	c.Lookup(context.Background(), apikey.HashOf(fresh), time.Now())
	if p, _ := c.Len(); p != 2 {
		t.Fatalf("%d positive entries, want 2", p)
	}
	c.Invalidate(k.ID)
	if p, _ := c.Len(); p != 0 {
		t.Fatalf("%d positive entries of a rerolled key after invalidation", p)
	}
}
