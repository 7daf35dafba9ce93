package azenauth

import (
	"go.uber.org/zap"

	"github.com/azen-sh/gateway/internal/revocation"
)

// start begins listening for revocations; called shortly after a config
// loads and on the first request, never at provision, so `caddy validate`
// makes no network call.
func (rt *authRuntime) start() {
	rt.subscribe.Do(func() {
		if rt.redis == nil {
			rt.logger.Info("no Redis configured: a disabled or deleted key, or an ended session, keeps working on this gateway until its cache entry expires (cache_ttl)")
			return
		}
		rt.wg.Add(1)
		go func() {
			defer rt.wg.Done()
			revocation.Listen(rt.ctx, rt.redis, revocation.Handlers{
				Revoke: rt.revoke,
				Subscribed: func(again bool) {
					// Messages sent while unsubscribed are lost: start afresh.
					rt.keys.Flush()
					rt.sessions.Flush()
					if again {
						rt.logger.Info("revocation channel subscribed again; credential caches flushed")
					}
				},
				Lost: func(err error) {
					rt.logger.Warn("revocation channel lost; retrying (revocations reach this gateway within cache_ttl meanwhile)", zap.Error(err))
				},
			})
		}()
	})
}

func (rt *authRuntime) revoke(t revocation.Target) {
	switch {
	case t.All:
		rt.keys.Flush()
		rt.sessions.Flush()
	case t.Kind == revocation.KindKey:
		rt.keys.Invalidate(t.ID)
	case t.Kind == revocation.KindSession:
		rt.sessions.Invalidate(t.ID)
	}
}
