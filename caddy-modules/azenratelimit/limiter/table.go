package limiter

import (
	"hash/maphash"
	"sync"
	"time"
)

// table is a sharded map of entries (the leases' and the quotas'), swept as
// it grows: when a shard reaches its sweep size before adding an entry, the
// entries forget lets go are removed, and the shard then allows twice what
// is left (at least 1024) before the next sweep. forget runs under the
// shard's lock; it takes the entry's own lock and marks what it lets go as
// dead, so a holder that raced the sweep knows to look again.
type table[K comparable, E any] struct {
	seed   maphash.Seed
	shards [localShards]tableShard[K, E]
	forget func(e *E, now time.Time) bool
}

type tableShard[K comparable, E any] struct {
	mu        sync.Mutex
	m         map[K]*E
	sweepSize int
}

func (t *table[K, E]) init(forget func(e *E, now time.Time) bool) {
	t.seed = maphash.MakeSeed()
	t.forget = forget
	for i := range t.shards {
		t.shards[i].m = map[K]*E{}
		t.shards[i].sweepSize = 1024
	}
}

// get returns key's entry, in the shard of shardKey, made by fresh if
// there is none.
func (t *table[K, E]) get(key K, shardKey string, now time.Time, fresh func() *E) *E {
	s := &t.shards[maphash.String(t.seed, shardKey)%localShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[key]; e != nil {
		return e
	}
	if len(s.m) >= s.sweepSize {
		for k, e := range s.m {
			if t.forget(e, now) {
				delete(s.m, k)
			}
		}
		s.sweepSize = max(1024, 2*len(s.m))
	}
	e := fresh()
	s.m[key] = e
	return e
}

// Len is the number of entries held (for tests).
func (t *table[K, E]) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
