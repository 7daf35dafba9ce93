package azenratelimit

import (
	"sync"
	"sync/atomic"

	"github.com/azen-sh/gateway/caddy-modules/azenratelimit/limiter"
	"github.com/azen-sh/gateway/internal/ratespec"
)

// maxOverrides bounds the override cache: past it the cache starts again
// empty (a gateway sees few distinct override texts; each costs one parse).
const maxOverrides = 4096

// overrideCache holds the policies of the per-key overrides seen
// ({azen.rate_limit}, "120/m burst 20"), parsed once per text instead of on
// every request of the key. A malformed text is cached with its error.
type overrideCache struct {
	m sync.Map // text → overrideEntry
	n atomic.Int64
}

type overrideEntry struct {
	p   limiter.Policy
	err error
}

func (c *overrideCache) policy(text string) (limiter.Policy, error) {
	if v, ok := c.m.Load(text); ok {
		e := v.(overrideEntry)
		return e.p, e.err
	}
	var e overrideEntry
	rp, err := ratespec.ParsePolicy(text)
	if err == nil {
		e.p = limiter.NewPolicy(overridePolicyName, rp)
		err = e.p.Check()
	}
	e.err = err
	if c.n.Add(1) > maxOverrides {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(text, e)
	return e.p, e.err
}
