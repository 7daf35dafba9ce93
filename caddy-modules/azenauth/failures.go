package azenauth

import (
	"net/netip"
	"sync"
	"time"

	"github.com/azen-sh/gateway/internal/ratespec"
)

// failureLimiter counts failed key attempts (403s) per client address with
// GCRA: up to Count failures at once, then one more every Period/Count.
// IPv6 clients are counted per /64, since one host usually holds a whole /64.
// State is in this process only; with N gateways a client gets up to N times
// the limit, which still makes guessing keys hopeless (see docs/auth.md).
type failureLimiter struct {
	interval  time.Duration // Period/Count
	tolerance time.Duration // Period - interval
	max       int

	mu        sync.RWMutex
	tat       map[netip.Addr]time.Time // theoretical arrival time per client
	lastSweep time.Time
}

func newFailureLimiter(r ratespec.Rate, maxClients int) *failureLimiter {
	interval := r.Period / time.Duration(r.Count)
	return &failureLimiter{
		interval: interval, tolerance: r.Period - interval, max: maxClients,
		tat: make(map[netip.Addr]time.Time),
	}
}

// clientAddr is the unit the failure limit applies to.
type clientAddr = netip.Addr

// clientKey folds an address into the unit that is limited.
func clientKey(ip string) clientAddr {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{} // unknown address: all share one bucket
	}
	a = a.WithZone("").Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// Blocked reports whether client must wait, and how long, before its next
// attempt is looked at.
func (l *failureLimiter) Blocked(client clientAddr, now time.Time) (bool, time.Duration) {
	l.mu.RLock()
	tat, ok := l.tat[client]
	l.mu.RUnlock()
	if !ok {
		return false, 0
	}
	if wait := tat.Sub(now) - l.tolerance; wait > 0 {
		return true, wait
	}
	return false, 0
}

// BlockedCount is the number of clients that Blocked would refuse at now.
// It walks the table (at most its 100 000 entries), so it is for metrics
// scrapes, not for the request path.
func (l *failureLimiter) BlockedCount(now time.Time) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := 0
	for _, tat := range l.tat {
		if tat.Sub(now) > l.tolerance {
			n++
		}
	}
	return n
}

// Fail records a failed attempt by client.
func (l *failureLimiter) Fail(client clientAddr, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tat, ok := l.tat[client]
	if !ok && len(l.tat) >= l.max {
		l.makeRoomLocked(now)
	}
	if tat.Before(now) {
		tat = now
	}
	l.tat[client] = tat.Add(l.interval)
}

// makeRoomLocked forgets clients whose count has drained (at most once a
// second, since it walks the map), then, if still full, an arbitrary one.
func (l *failureLimiter) makeRoomLocked(now time.Time) {
	if now.Sub(l.lastSweep) >= time.Second {
		l.lastSweep = now
		for a, tat := range l.tat {
			if !tat.After(now) {
				delete(l.tat, a)
			}
		}
	}
	for a := range l.tat {
		if len(l.tat) < l.max {
			break
		}
		delete(l.tat, a)
	}
}
