package limiter

import (
	"hash/maphash"
	"sync"
	"time"
)

// Local is GCRA in process (gcra.go, the arithmetic the lease script runs
// in Redis), on this gateway's monotonic clock: the limiter when no Redis
// is configured. It is safe for concurrent use; memory is bounded by the
// number of buckets that are not yet full again (full buckets are swept
// away as the maps grow).
type Local struct {
	clock  clock
	seed   maphash.Seed
	shards [localShards]localShard
}

const localShards = 64

type localShard struct {
	mu        sync.Mutex
	state     map[string]gcraState
	sweepSize int // sweep when the map reaches this size
}

// NewLocal returns an empty in-process limiter. now may be nil (time.Now).
func NewLocal(now func() time.Time) *Local {
	l := &Local{clock: newClock(now), seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].state = make(map[string]gcraState)
		l.shards[i].sweepSize = 1024
	}
	return l
}

// Allow spends cost units of bucket under p if they are there.
func (l *Local) Allow(bucket string, p Policy, cost int) Decision {
	s := &l.shards[maphash.String(l.seed, bucket)%localShards]
	now := l.clock.micros(l.clock.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	st, known := s.state[bucket]
	d := st.allow(now, p, cost)
	switch {
	case st.tat <= now:
		// Full again: a missing bucket decides the same.
		delete(s.state, bucket)
	case known:
		s.state[bucket] = st
	default:
		if len(s.state) >= s.sweepSize {
			s.sweep(now)
		}
		s.state[bucket] = st
	}
	return d
}

// allow is one plain GCRA decision (no holds) on st.
func (st *gcraState) allow(now float64, p Policy, cost int) Decision {
	c := int64(cost)
	r := st.lease(now, leaseArgs{emission: p.emissionMicros(), burst: int64(p.Burst), need: c, cost: c, gateways: 1}, nil)
	d := Decision{
		Allowed:    r.need == c,
		Remaining:  int(max(0, r.avail)),
		ResetAfter: microsDuration(r.tatRel),
	}
	if !d.Allowed {
		d.RetryAfter = max(time.Nanosecond, microsDuration(r.retryRel))
	}
	return d
}

// sweep drops buckets that are full again (their TAT has passed).
func (s *localShard) sweep(now float64) {
	for k, st := range s.state {
		if st.tat <= now {
			delete(s.state, k)
		}
	}
	s.sweepSize = max(1024, 2*len(s.state))
}

// Len is the number of buckets held (for tests).
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.state)
		s.mu.Unlock()
	}
	return n
}

// clock is a monotonic clock and its microsecond scale, starting at 0 when
// it was made (the GCRA arithmetic's float64 stays small and exact).
type clock struct {
	now   func() time.Time
	epoch time.Time
}

func newClock(now func() time.Time) clock {
	if now == nil {
		now = time.Now
	}
	return clock{now: now, epoch: now()}
}

func (c clock) micros(t time.Time) float64 { return float64(t.Sub(c.epoch)) / 1e3 }

// microsDuration turns a non-negative µs count into a duration, rounding
// up to whole nanoseconds; negative counts are 0.
func microsDuration(us float64) time.Duration {
	if us <= 0 {
		return 0
	}
	return time.Duration(us*1e3 + 0.999)
}
