package azenauth

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/azen-sh/gateway/internal/revocation"
)

// previousSweepEvery is how often each gateway forgets the hashes of
// rerolled secrets whose grace period has ended (contract §10: the old
// secret's hash is kept only until then). A secret past its grace period is
// refused on every request anyway, cached or not (Key.PreviousExpired is
// checked against the clock); the sweep only removes the hash from the
// database, at most this long after the end. Every gateway sweeps; the
// first one to find a key clears it, the others find nothing.
const previousSweepEvery = time.Minute

// sweepPrevious runs forgetExpiredPrevious every interval until the
// runtime stops. The first sweep is one interval after start, so `caddy
// validate` (which loads and unloads the config at once) never connects.
func (rt *authRuntime) sweepPrevious(every time.Duration) {
	defer rt.wg.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	var warned logEvery
	for {
		select {
		case <-rt.ctx.Done():
			return
		case <-tick.C:
		}
		if err := rt.forgetExpiredPrevious(rt.ctx, time.Now()); err != nil && rt.ctx.Err() == nil && warned.Allow(time.Now()) {
			rt.logger.Warn("forgetting rerolled secrets past their grace period failed; retrying at the next sweep (they are refused meanwhile; logged at most every 10 s)", zap.Error(err))
		}
	}
}

// forgetExpiredPrevious drops the previous secrets whose grace period
// ended by now, drops those keys from this gateway's cache and tells the
// other gateways to do the same.
func (rt *authRuntime) forgetExpiredPrevious(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rt.stores.prepare(ctx); err != nil {
		return err
	}
	changed, err := rt.stores.keys.ForgetExpiredPrevious(ctx, now)
	if err != nil {
		return err
	}
	if len(changed) == 0 {
		return nil
	}
	targets := make([]revocation.Target, len(changed))
	for i, id := range changed {
		rt.keys.Invalidate(id)
		targets[i] = revocation.Key(id)
	}
	rt.logger.Info("forgot the previous secrets of rerolled keys whose grace period ended", zap.Strings("key_ids", changed))
	if err := revocation.NewPublisher(rt.redis).Publish(ctx, targets...); err != nil {
		return fmt.Errorf("forgot %d previous secrets, but: %w", len(changed), err)
	}
	return nil
}
