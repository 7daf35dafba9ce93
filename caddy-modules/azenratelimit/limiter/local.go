package limiter

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// Local is GCRA in process: the same algorithm redis_rate runs in Redis,
// on this gateway's monotonic clock. It is the limiter when no Redis is
// configured, and the fallback when Redis cannot be asked. It is safe for
// concurrent use; memory is bounded by the number of buckets that are not
// yet full again (full buckets are swept away as the maps grow).
type Local struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [localShards]localShard
}

const localShards = 64

type localShard struct {
	mu        sync.Mutex
	tat       map[string]time.Time // theoretical arrival time per bucket
	sweepSize int                  // sweep when the map reaches this size
}

// NewLocal returns an empty in-process limiter. now may be nil (time.Now).
func NewLocal(now func() time.Time) *Local {
	if now == nil {
		now = time.Now
	}
	l := &Local{now: now, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].tat = make(map[string]time.Time)
		l.shards[i].sweepSize = 1024
	}
	return l
}

// Allow spends cost units of bucket under p if they are there.
func (l *Local) Allow(_ context.Context, bucket string, p Policy, cost int) (Decision, error) {
	s := &l.shards[maphash.String(l.seed, bucket)%localShards]
	now := l.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	tat, ok := s.tat[bucket]
	d, newTAT := gcra(now, tat, ok, p, cost)
	if d.Allowed {
		if !ok && len(s.tat) >= s.sweepSize {
			s.sweep(now)
		}
		s.tat[bucket] = newTAT
	}
	return d, nil
}

// sweep drops buckets that are full again (their TAT has passed): a missing
// bucket and a full one decide the same.
func (s *localShard) sweep(now time.Time) {
	for k, t := range s.tat {
		if !t.After(now) {
			delete(s.tat, k)
		}
	}
	s.sweepSize = max(1024, 2*len(s.tat))
}

// Len is the number of buckets held (for tests).
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}

// gcra is one GCRA step, the arithmetic of redis_rate's script: a bucket
// whose theoretical arrival time (TAT) is more than burst emission intervals
// ahead of now is empty. It returns the decision and the TAT to store if
// allowed.
func gcra(now, tat time.Time, known bool, p Policy, cost int) (Decision, time.Time) {
	emission := p.Emission()
	if !known || tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(emission * time.Duration(cost))
	allowAt := newTAT.Add(-emission * time.Duration(p.Burst))
	if now.Before(allowAt) {
		return Decision{
			Allowed:    false,
			Remaining:  0,
			RetryAfter: allowAt.Sub(now),
			ResetAfter: tat.Sub(now),
		}, tat
	}
	return Decision{
		Allowed:    true,
		Remaining:  int(now.Sub(allowAt) / emission),
		ResetAfter: newTAT.Sub(now),
	}, newTAT
}
