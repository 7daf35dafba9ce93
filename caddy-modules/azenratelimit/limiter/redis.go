package limiter

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

var (
	_ Limiter = (*Redis)(nil)
	_ Limiter = (*Local)(nil)
)

// Redis is GCRA in Redis through go-redis/redis_rate: one EVALSHA per call
// (an EVAL once more after Redis lost its script cache), timed by Redis's
// clock, so every gateway sharing the Redis shares one exact limit.
type Redis struct {
	rl    *redis_rate.Limiter
	batch *batchingClient
}

// NewRedis wraps a client (single node, Sentinel or Cluster). Concurrent
// calls are pipelined together (see batchingClient); Close stops that.
func NewRedis(client redis.UniversalClient) *Redis {
	b := newBatchingClient(client)
	return &Redis{rl: redis_rate.NewLimiter(b), batch: b}
}

// Close stops the pipelining workers. It does not close the client.
func (r *Redis) Close() { r.batch.close() }

// Allow spends cost units of bucket under p if they are there. The caller
// bounds the call with ctx's deadline.
func (r *Redis) Allow(ctx context.Context, bucket string, p Policy, cost int) (d Decision, err error) {
	defer func() {
		// redis_rate type-asserts the reply; a malformed one must be a
		// Redis error (and so a degraded decision), never a crash.
		if v := recover(); v != nil {
			d, err = Decision{}, fmt.Errorf("unexpected reply from the limiter script: %v", v)
		}
	}()
	res, err := r.rl.AllowN(ctx, bucket, redis_rate.Limit{
		Rate: p.Rate.Count, Burst: p.Burst, Period: p.Rate.Period,
	}, cost)
	if err != nil {
		return Decision{}, err
	}
	d = Decision{
		Allowed:    res.Allowed > 0,
		Remaining:  max(0, res.Remaining),
		ResetAfter: max(0, res.ResetAfter),
	}
	if !d.Allowed {
		// Redis computed the wait at its own "now"; never promise less.
		d.RetryAfter = max(time.Nanosecond, res.RetryAfter)
	}
	return d, nil
}
