package azenauth

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/azen-sh/gateway/internal/account"
)

// touchInterval is how often one gateway records the use of one credential:
// a key's last_used_at, a session's sliding end.
const touchInterval = time.Minute

// touch is one queued update.
type touch struct {
	session bool
	id      string
}

// queueTouch queues a last-used update for a credential at most once per
// touchInterval per gateway. It never blocks: if the queue is full the
// update is skipped (last_used_at is a hint, and a session's end moves at
// its next use a minute later).
func (rt *authRuntime) queueTouch(last interface {
	Load() int64
	CompareAndSwap(old, new int64) bool
}, t touch, now time.Time) {
	prev := last.Load()
	n := now.UnixNano()
	if n-prev < int64(touchInterval) || !last.CompareAndSwap(prev, n) {
		return
	}
	select {
	case rt.touches <- t:
	default:
	}
}

func (rt *authRuntime) recordUse() {
	defer rt.wg.Done()
	var warned logEvery
	for {
		select {
		case <-rt.ctx.Done():
			return
		case t := <-rt.touches:
			ctx, cancel := context.WithTimeout(rt.ctx, 5*time.Second)
			err := rt.stores.prepare(ctx)
			if err == nil {
				if t.session {
					err = rt.stores.accounts.TouchSession(ctx, t.id, time.Now(), account.DefaultSessionTTL)
				} else {
					err = rt.stores.keys.TouchLastUsed(ctx, t.id, time.Now())
				}
			}
			cancel()
			if err != nil && rt.ctx.Err() == nil && warned.Allow(time.Now()) {
				rt.logger.Warn("recording a credential's use failed (logged at most every 10 s)", zap.Error(err))
			}
		}
	}
}
