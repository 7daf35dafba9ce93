package limiter

import (
	"sync"
	"sync/atomic"
	"time"
)

// Breaker keeps a failing Redis from being asked on every request. Closed,
// every call goes through; after Threshold consecutive failures it opens and
// calls are refused for Cooldown; then one call at a time is let through as
// a probe (half-open): a success closes it, a failure opens it again. The
// closed fast path is one atomic load.
//
// A failed call counts only if no call succeeded after it started: when
// Redis answered someone in the meantime, it is alive, and the call was
// slow for another reason (most often this gateway's own CPU starvation,
// which delays reading replies that are already there). Such a call's
// requests still get the fallback decision; the breaker just stays closed.
type Breaker struct {
	threshold int32
	cooldown  time.Duration
	now       func() time.Time
	epoch     time.Time

	state       atomic.Int32 // breakerClosed or breakerOpen
	failures    atomic.Int32
	lastSuccess atomic.Int64 // since epoch, ns; -1 before the first

	mu        sync.Mutex
	openUntil time.Time
	probing   bool
}

const (
	breakerClosed int32 = iota
	breakerOpen
)

// NewBreaker returns a closed breaker. now may be nil (time.Now).
func NewBreaker(threshold int, cooldown time.Duration, now func() time.Time) *Breaker {
	if now == nil {
		now = time.Now
	}
	b := &Breaker{threshold: int32(max(1, threshold)), cooldown: cooldown, now: now, epoch: now()}
	b.lastSuccess.Store(-1)
	return b
}

// Closed reports whether calls go through without restriction.
func (b *Breaker) Closed() bool { return b.state.Load() == breakerClosed }

// Allow reports whether a call may go to Redis now.
func (b *Breaker) Allow() bool {
	if b.state.Load() == breakerClosed {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state.Load() == breakerClosed {
		return true
	}
	if b.probing || b.now().Before(b.openUntil) {
		return false
	}
	b.probing = true
	return true
}

// Success records a call that worked. It reports whether it closed an open
// breaker (Redis is back).
func (b *Breaker) Success() (recovered bool) {
	b.lastSuccess.Store(int64(b.now().Sub(b.epoch)))
	if b.state.Load() == breakerClosed {
		if b.failures.Load() != 0 {
			b.failures.Store(0)
		}
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state.Load() == breakerClosed {
		return false
	}
	b.probing = false
	b.failures.Store(0)
	b.state.Store(breakerClosed)
	return true
}

// Failure records a call, started at start, that failed. It reports whether
// it opened a closed breaker (Redis just became unusable).
func (b *Breaker) Failure(start time.Time) (opened bool) {
	if b.lastSuccess.Load() > int64(start.Sub(b.epoch)) {
		// Redis answered another call since this one started. (A probe
		// never gets here: no call has succeeded since the breaker opened.)
		return false
	}
	n := b.failures.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.state.Load() == breakerOpen:
		// A failed probe (or a straggler from before opening): wait again.
		b.probing = false
		b.openUntil = b.now().Add(b.cooldown)
		return false
	case n >= b.threshold:
		b.state.Store(breakerOpen)
		b.probing = false
		b.openUntil = b.now().Add(b.cooldown)
		return true
	}
	return false
}

// Abandon records a call that ended without telling anything about Redis
// (its client went away). If it was the half-open probe, another request
// may probe now.
func (b *Breaker) Abandon() {
	if b.state.Load() == breakerClosed {
		return
	}
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// Open reports whether the breaker currently keeps calls from Redis.
func (b *Breaker) Open() bool { return b.state.Load() == breakerOpen }
