package azenauth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/azen-sh/gateway/internal/ratespec"
	"github.com/azen-sh/gateway/internal/redisconn"
)

// InvalidationChannel is the Redis pub/sub channel `keys disable|enable|delete`
// publish on. A message is a key id; "*" drops every cached key.
const InvalidationChannel = "azen:keys:invalidate"

// touchInterval is how often one gateway records last_used_at per key.
const touchInterval = time.Minute

// runtimes holds the store, cache, failure counts and Redis subscription per
// distinct settings. Caddy starts a new config before it stops the old one,
// so a reload with the same settings keeps its warm cache and connections.
var runtimes = caddy.NewUsagePool()

type runtimeSettings struct {
	database       string
	redis          string
	cacheTTL       time.Duration
	cacheSize      int
	failedAttempts ratespec.Rate
}

// runtime is what the azen_auth handlers with one set of settings share.
type runtime struct {
	store    *lazyStore
	cache    *keyCache
	failures *failureLimiter
	logger   *zap.Logger

	redis        redis.UniversalClient // nil without Redis
	releaseRedis func()
	subscribe    sync.Once

	touches  chan string
	staleLog logEvery
	counters authCounters

	// ctx lives as long as the runtime, which outlives the config that
	// created it; it is cancelled in Destruct.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func loadRuntime(s runtimeSettings, logger *zap.Logger) (*runtime, func(), error) {
	key := fmt.Sprintf("%q|%q|%d|%d|%s", s.database, s.redis, s.cacheTTL, s.cacheSize, s.failedAttempts)
	v, _, err := runtimes.LoadOrNew(key, func() (caddy.Destructor, error) {
		return newRuntime(s, logger)
	})
	if err != nil {
		return nil, nil, err
	}
	return v.(*runtime), func() { _, _ = runtimes.Delete(key) }, nil
}

func newRuntime(s runtimeSettings, logger *zap.Logger) (*runtime, error) {
	st, err := OpenStore(s.database)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	rt := &runtime{
		store:    &lazyStore{store: st},
		failures: newFailureLimiter(s.failedAttempts, 100_000),
		logger:   logger,
		touches:  make(chan string, 1024),
		counters: newAuthCounters(),
	}
	rt.cache = newKeyCache(rt.store, s.cacheTTL, s.cacheSize)
	if s.redis != "" {
		client, release, err := redisconn.Shared(s.redis)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("redis: %w", err)
		}
		rt.redis, rt.releaseRedis = client, release
	}
	// A runtime is shared across config loads, so no provision context
	// bounds its life: it gets its own, cancelled when the last user leaves.
	rt.ctx, rt.cancel = context.WithCancel(context.Background())
	rt.wg.Add(1)
	go rt.recordUse()
	return rt, nil
}

// Destruct stops the background work and releases connections.
func (rt *runtime) Destruct() error {
	rt.cancel()
	rt.wg.Wait()
	if rt.releaseRedis != nil {
		rt.releaseRedis()
	}
	return rt.store.store.Close()
}

// start begins listening for invalidations; called on the first request,
// not at provision, so `caddy validate` makes no network call.
func (rt *runtime) start() {
	rt.subscribe.Do(func() {
		if rt.redis == nil {
			rt.logger.Info("no Redis configured: a disabled or deleted key keeps working on this gateway until its cache entry expires (cache_ttl)")
			return
		}
		rt.wg.Add(1)
		go rt.listen()
	})
}

// listen follows the invalidation channel, resubscribing after any failure.
// Every (re)subscription flushes the cache: messages sent while it was not
// subscribed are lost.
func (rt *runtime) listen() {
	defer rt.wg.Done()
	const maxBackoff = 2 * time.Second
	backoff := 50 * time.Millisecond
	var degraded bool
	for rt.ctx.Err() == nil {
		ps := rt.redis.Subscribe(rt.ctx, InvalidationChannel)
		err := rt.receive(ps, func() {
			backoff = 50 * time.Millisecond
			if degraded {
				rt.logger.Info("key invalidation channel subscribed again; cache flushed")
				degraded = false
			}
		})
		_ = ps.Close()
		if rt.ctx.Err() != nil {
			return
		}
		if !degraded {
			rt.logger.Warn("key invalidation channel lost; retrying (revocations reach this gateway within cache_ttl meanwhile)", zap.Error(err))
			degraded = true
		}
		select {
		case <-rt.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (rt *runtime) receive(ps *redis.PubSub, subscribed func()) error {
	const idle = 5 * time.Second
	for {
		msg, err := ps.ReceiveTimeout(rt.ctx, idle)
		if err != nil {
			if rt.ctx.Err() != nil {
				return err
			}
			if isTimeout(err) {
				// Nothing for a while: make sure the connection is alive.
				if err := ps.Ping(rt.ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				rt.cache.Flush()
				subscribed()
			}
		case *redis.Message:
			id := strings.ToLower(strings.TrimSpace(m.Payload))
			switch {
			case id == "*":
				rt.cache.Flush()
			case ValidUUID(id):
				rt.cache.Invalidate(id)
			}
		}
	}
}

// logEvery lets a repeated log line through at most once per 10 s.
type logEvery struct{ next atomic.Int64 }

func (l *logEvery) Allow(now time.Time) bool {
	next := l.next.Load()
	return now.UnixNano() >= next && l.next.CompareAndSwap(next, now.Add(10*time.Second).UnixNano())
}

func isTimeout(err error) bool {
	te, ok := err.(interface{ Timeout() bool })
	return ok && te.Timeout()
}

// touch queues a last_used_at update for e's key at most once per
// touchInterval per gateway. It never blocks: if the queue is full the
// update is skipped (last_used_at is a hint, not an audit log).
func (rt *runtime) touch(e *cacheEntry, now time.Time) {
	last := e.lastTouch.Load()
	n := now.UnixNano()
	if n-last < int64(touchInterval) || !e.lastTouch.CompareAndSwap(last, n) {
		return
	}
	select {
	case rt.touches <- e.key.ID:
	default:
	}
}

func (rt *runtime) recordUse() {
	defer rt.wg.Done()
	warned := false
	for {
		select {
		case <-rt.ctx.Done():
			return
		case id := <-rt.touches:
			ctx, cancel := context.WithTimeout(rt.ctx, 5*time.Second)
			err := rt.store.TouchLastUsed(ctx, id, time.Now())
			cancel()
			if err != nil && rt.ctx.Err() == nil && !warned {
				warned = true
				rt.logger.Warn("recording last_used_at failed (logged once)", zap.Error(err))
			}
		}
	}
}

// lazyStore migrates the database on first use, retrying on later calls
// until it succeeds, so provisioning never needs the database.
type lazyStore struct {
	store *Store
	mu    sync.Mutex
	ready atomic.Bool
}

func (l *lazyStore) prepare(ctx context.Context) error {
	if l.ready.Load() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ready.Load() {
		return nil
	}
	if err := l.store.Migrate(ctx); err != nil {
		return fmt.Errorf("prepare key store: %w", err)
	}
	l.ready.Store(true)
	return nil
}

func (l *lazyStore) ByHash(ctx context.Context, h KeyHash) (Key, error) {
	if err := l.prepare(ctx); err != nil {
		return Key{}, err
	}
	return l.store.ByHash(ctx, h)
}

func (l *lazyStore) TouchLastUsed(ctx context.Context, id string, at time.Time) error {
	if err := l.prepare(ctx); err != nil {
		return err
	}
	return l.store.TouchLastUsed(ctx, id, at)
}
