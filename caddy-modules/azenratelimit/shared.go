package azenratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/caddy-modules/azenratelimit/limiter"
	"github.com/azen-sh/gateway/internal/redisconn"
)

// Tuning that the contract leaves to us (documented in docs/ratelimit.md).
const (
	// breakerThreshold consecutive Redis failures open the circuit breaker.
	breakerThreshold = 3
	// breakerCooldown is how long an open breaker keeps requests off Redis
	// before one probe is let through.
	breakerCooldown = time.Second
	// heartbeatInterval is how often a gateway announces itself in Redis.
	heartbeatInterval = 2 * time.Second
	// aliveWindow is how long a gateway counts as alive after its last
	// heartbeat.
	aliveWindow = 3 * heartbeatInterval
	// heartbeatTimeout bounds one heartbeat call.
	heartbeatTimeout = 500 * time.Millisecond
	// gatewaysKey is the sorted set of gateways (member: gateway id, score:
	// Redis time in ms of its last heartbeat).
	gatewaysKey = "azen:rl:gateways"
)

// states holds one limiter state per Redis URL for the whole process, so a
// reload keeps the Redis client, the in-process buckets, the breaker and the
// gateway count.
var states = caddy.NewUsagePool()

// state is what survives reloads.
type state struct {
	redis   *limiter.Redis        // nil without Redis
	client  redis.UniversalClient // nil without Redis
	release func()
	local   *limiter.Local
	breaker *limiter.Breaker

	gatewayID string
	alive     atomic.Int64 // gateways last seen alive, at least 1
	lastBeat  atomic.Int64 // unix nanoseconds of the last heartbeat attempt

	warnNoRedis sync.Once
}

func (s *state) Destruct() error {
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
		s := &state{
			local:     limiter.NewLocal(nil),
			breaker:   limiter.NewBreaker(breakerThreshold, breakerCooldown, nil),
			gatewayID: newGatewayID(),
		}
		s.alive.Store(1)
		if redisURL != "" {
			client, release, err := redisconn.Shared(redisURL)
			if err != nil {
				return nil, err
			}
			s.client, s.release = client, release
			s.redis = limiter.NewRedis(client)
		}
		return s, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return v.(*state), func() { _, _ = states.Delete(poolKey) }, nil
}

func newGatewayID() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// heartbeatScript records this gateway at Redis's time, forgets gateways
// silent for longer than the alive window, and counts the rest: one round
// trip, one key (so it works on a Cluster too).
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], window * 2)
return redis.call('ZCARD', KEYS[1])
`)

// heartbeat announces the gateway in Redis until ctx (the provisioning
// config's context) is done. Several handlers (routes, or old and new config
// during a reload) share one state; whoever finds the last beat old enough
// beats, so the gateway beats about once per interval in total.
func (s *state) heartbeat(ctx context.Context) {
	// Wait a moment first: `caddy validate` provisions and cancels at once,
	// and should make no network call.
	timer := time.NewTimer(250 * time.Millisecond)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		s.beat(ctx)
		timer.Reset(heartbeatInterval)
	}
}

func (s *state) beat(ctx context.Context) {
	now := time.Now().UnixNano()
	last := s.lastBeat.Load()
	if now-last < int64(heartbeatInterval/2) || !s.lastBeat.CompareAndSwap(last, now) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	defer cancel()
	n, err := heartbeatScript.Run(cctx, s.client, []string{gatewaysKey},
		s.gatewayID, aliveWindow.Milliseconds()).Int64()
	if err == nil && n >= 1 {
		s.alive.Store(n)
	}
	// On error keep the count last seen: that is what local mode divides by.
}

// gateways is the number of gateways last seen alive (at least 1).
func (s *state) gateways() int {
	return int(max(1, s.alive.Load()))
}
