package azenauth

import "context"

// Health is what a provisioned azen_auth handler depends on over the
// network, as azen_ready reports it.
type Health struct {
	Store    error // nil when the key store is migrated and answers
	HasRedis bool  // a redis URL is configured
	Redis    error // nil when Redis answered PING (or HasRedis is false)
}

// Health asks the handler's key store (migrating it first if that has not
// happened yet) and its Redis, both within ctx. It changes nothing else.
func (h *Handler) Health(ctx context.Context) Health {
	var hl Health
	if hl.Store = h.rt.stores.prepare(ctx); hl.Store == nil {
		hl.Store = h.rt.stores.db.Ping(ctx)
	}
	if h.rt.redis != nil {
		hl.HasRedis = true
		hl.Redis = h.rt.redis.Ping(ctx).Err()
	}
	return hl
}
