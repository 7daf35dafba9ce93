package azenratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/azen-sh/gateway/caddy-modules/azenratelimit/limiter"
	"github.com/azen-sh/gateway/internal/redisconn"
)

// states holds one limiter state per Redis URL for the whole process, so a
// reload keeps the Redis client, the leases, the in-process buckets, the
// breaker and the gateway count.
var states = caddy.NewUsagePool()

// state is what survives reloads.
type state struct {
	limiter  *limiter.Limiter
	redis    *limiter.Redis    // nil without Redis
	gateways *limiter.Gateways // nil without Redis
	release  func()

	warnNoRedis sync.Once
	loadScript  sync.Once
}

func (s *state) Destruct() error {
	s.limiter.Close()
	if s.redis != nil {
		s.redis.Close()
	}
	if s.release != nil {
		s.release()
	}
	return nil
}

// loadState returns the process-wide state for the (expanded) Redis URL,
// creating it without any network call.
func loadState(redisURL string) (*state, func(), error) {
	poolKey := "ratelimit:" + redisURL
	v, _, err := states.LoadOrNew(poolKey, func() (caddy.Destructor, error) {
		s := &state{}
		id := limiter.NewGatewayID()
		if redisURL == "" {
			s.limiter = limiter.New(limiter.Config{Holder: id})
			return s, nil
		}
		client, release, err := redisconn.Shared(redisURL)
		if err != nil {
			return nil, err
		}
		s.release = release
		s.redis = limiter.NewRedis(client)
		s.gateways = limiter.NewGateways(client, id, countFile(redisURL))
		s.limiter = limiter.New(limiter.Config{Redis: s.redis, Holder: id, Gateways: s.gateways.Count})
		return s, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return v.(*state), func() { _, _ = states.Delete(poolKey) }, nil
}

// countFile is where the gateway count last seen on this Redis is kept, in
// Caddy's data folder. The name hashes the URL without its credentials.
func countFile(redisURL string) string {
	name := redisURL
	if u, err := url.Parse(redisURL); err == nil {
		u.User = nil
		name = u.String()
	}
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(caddy.AppDataDir(), "azen", "ratelimit", "gateways-"+hex.EncodeToString(sum[:8]))
}

// heartbeat announces this gateway until ctx (the provisioning config's
// context) is done, and loads the lease script after the first beat.
func (s *state) heartbeat(ctx context.Context) {
	s.gateways.Run(ctx, func(ctx context.Context) {
		s.loadScript.Do(func() {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_ = s.redis.LoadScript(cctx)
		})
	})
}

// events logs and counts what the shared limiter reports, with the logger
// and settings of the configuration loaded last.
type events struct {
	logger       *zap.Logger
	onRedisError string
	gateways     func() int
}

func (e *events) CallDone(elapsed time.Duration, err error) {
	redisSeconds.Observe(elapsed.Seconds())
	if err != nil {
		redisErrorsTotal.Inc()
		if ce := e.logger.Check(zap.DebugLevel, "rate-limit Redis call failed"); ce != nil {
			ce.Write(zap.Error(err))
		}
	}
}

func (e *events) Degraded(cause error) {
	e.logger.Warn("Redis failing: rate limiting degraded until it answers again",
		zap.String("on_redis_error", e.onRedisError),
		zap.Int("gateways_last_seen", e.gateways()),
		zap.Error(cause))
}

func (e *events) Recovered() {
	e.logger.Info("Redis is back: rate limits are shared by all gateways again")
}
