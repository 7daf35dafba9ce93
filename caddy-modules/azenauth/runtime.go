package azenauth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/ratespec"
	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/token"
	"github.com/azen-sh/gateway/internal/usage"
)

// runtimes holds the stores, caches, failure counts, usage meter and Redis
// subscription per distinct settings. Caddy starts a new config before it
// stops the old one, so a reload with the same settings keeps its warm
// caches, its unflushed usage counts and its connections.
var runtimes = caddy.NewUsagePool()

type runtimeSettings struct {
	database       string
	redis          string
	cacheTTL       time.Duration
	cacheSize      int
	failedAttempts ratespec.Rate
	usageFlush     time.Duration
}

// authRuntime is what the azen_auth handlers with one set of settings share.
type authRuntime struct {
	stores   *stores
	keys     *credentialCache[apikey.Key]
	sessions *credentialCache[account.Session]
	failures *failureLimiter
	meter    *usage.Meter
	logger   *zap.Logger

	redis        redis.UniversalClient // nil without Redis
	releaseRedis func()
	subscribe    sync.Once

	touches   chan touch
	staleLog  logEvery
	usageWarn logEvery
	counters  authCounters

	// ctx lives as long as the runtime, which outlives the config that
	// created it; it is cancelled in Destruct.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func loadRuntime(s runtimeSettings, logger *zap.Logger) (*authRuntime, func(), error) {
	key := fmt.Sprintf("%q|%q|%d|%d|%s|%d", s.database, s.redis, s.cacheTTL, s.cacheSize, s.failedAttempts, s.usageFlush)
	v, _, err := runtimes.LoadOrNew(key, func() (caddy.Destructor, error) {
		return newRuntime(s, logger)
	})
	if err != nil {
		return nil, nil, err
	}
	return v.(*authRuntime), func() { _, _ = runtimes.Delete(key) }, nil
}

func newRuntime(s runtimeSettings, logger *zap.Logger) (*authRuntime, error) {
	db, err := sqldb.Open(s.database)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	st := newStores(db)
	rt := &authRuntime{
		stores:   st,
		failures: newFailureLimiter(s.failedAttempts, 100_000),
		meter:    usage.NewMeter(st),
		logger:   logger,
		touches:  make(chan touch, 1024),
	}
	rt.counters = newAuthCounters(rt)
	rt.keys = newCredentialCache(st.keyByHash, func(k apikey.Key) string { return k.ID }, s.cacheTTL, s.cacheSize)
	rt.sessions = newCredentialCache(st.sessionByHash, func(s account.Session) string { return s.ID }, s.cacheTTL, s.cacheSize)
	if s.redis != "" {
		client, release, err := redisconn.Shared(s.redis)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("redis: %w", err)
		}
		rt.redis, rt.releaseRedis = client, release
	}
	// A runtime is shared across config loads, so no provision context
	// bounds its life: it gets its own, cancelled when the last user leaves.
	rt.ctx, rt.cancel = context.WithCancel(context.Background())
	rt.wg.Add(3)
	go rt.sweepPrevious(previousSweepEvery)
	go rt.recordUse()
	go func() {
		defer rt.wg.Done()
		rt.meter.Run(rt.ctx, s.usageFlush, finalUsageFlush, rt.usageFailed)
	}()
	return rt, nil
}

// finalUsageFlush bounds the usage write of a reload or a shutdown.
const finalUsageFlush = 5 * time.Second

// flushUsage writes the usage counts held so far, bounded by
// finalUsageFlush. A reload that keeps azen_auth's settings keeps this
// runtime, whose timer would write them up to usage_flush later; a reload
// writes them at once instead, as a shutdown does (contract §9). What
// fails to be written stays counted for the next batch.
func (rt *authRuntime) flushUsage() {
	ctx, cancel := context.WithTimeout(context.Background(), finalUsageFlush)
	defer cancel()
	if err := rt.meter.Flush(ctx); err != nil {
		rt.usageFailed(err)
	}
}

func (rt *authRuntime) usageFailed(err error) {
	if rt.usageWarn.Allow(time.Now()) {
		rt.logger.Warn("writing usage counts failed; they are kept and written with the next batch (logged at most every 10 s)", zap.Error(err))
	}
}

// Destruct stops the background work (the usage meter writes what it
// holds) and releases connections.
func (rt *authRuntime) Destruct() error {
	rt.cancel()
	rt.wg.Wait()
	if rt.releaseRedis != nil {
		rt.releaseRedis()
	}
	return rt.stores.db.Close()
}

// logEvery lets a repeated log line through at most once per 10 s.
type logEvery struct{ next atomic.Int64 }

func (l *logEvery) Allow(now time.Time) bool {
	next := l.next.Load()
	return now.UnixNano() >= next && l.next.CompareAndSwap(next, now.Add(10*time.Second).UnixNano())
}

// stores are the tables azen_auth reads and writes, on one connection
// pool. They are migrated on first use, retrying on later calls until it
// succeeds, so provisioning never needs the database.
type stores struct {
	db       *sqldb.DB
	keys     *apikey.Store
	accounts *account.Store
	usage    *usage.Store

	mu    sync.Mutex
	ready atomic.Bool
}

func newStores(db *sqldb.DB) *stores {
	return &stores{db: db, keys: apikey.NewStore(db), accounts: account.NewStore(db), usage: usage.NewStore(db)}
}

func (s *stores) prepare(ctx context.Context) error {
	if s.ready.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready.Load() {
		return nil
	}
	for _, m := range []interface{ Migrate(context.Context) error }{s.keys, s.accounts, s.usage} {
		if err := m.Migrate(ctx); err != nil {
			return fmt.Errorf("prepare credential store: %w", err)
		}
	}
	s.ready.Store(true)
	return nil
}

func (s *stores) keyByHash(ctx context.Context, h token.Hash) (apikey.Key, error) {
	if err := s.prepare(ctx); err != nil {
		return apikey.Key{}, err
	}
	k, err := s.keys.ByHash(ctx, h)
	if errors.Is(err, apikey.ErrNotFound) {
		return k, errNotFound
	}
	return k, err
}

func (s *stores) sessionByHash(ctx context.Context, h token.Hash) (account.Session, error) {
	if err := s.prepare(ctx); err != nil {
		return account.Session{}, err
	}
	sess, err := s.accounts.SessionByHash(ctx, h)
	if errors.Is(err, account.ErrNotFound) {
		return sess, errNotFound
	}
	return sess, err
}

// Add writes usage counts (the meter's Writer).
func (s *stores) Add(ctx context.Context, counts []usage.Count) error {
	if err := s.prepare(ctx); err != nil {
		return err
	}
	return s.usage.Add(ctx, counts)
}
