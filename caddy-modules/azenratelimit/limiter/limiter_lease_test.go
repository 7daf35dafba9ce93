package limiter

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memStore is a shared store in memory, on gcra.go's arithmetic, that can
// be made to fail, hang or forget everything, standing in for Redis in the
// Limiter's degradation tests. (The same Limiter runs against real Redis in
// TestRedisPipelinedCallsStayExact, the handler tests on real Redis and
// the end-to-end tests in tests/ratelimit_*.)
type memStore struct {
	mu      sync.Mutex
	buckets map[string]*gcraState
	quotas  map[string]*quotaCell
	calls   atomic.Int64
	failing atomic.Bool
	// lostReplies: calls are applied but their replies lost, as when a
	// call times out after reaching Redis.
	lostReplies atomic.Bool
	slow        sync.Map // bucket -> time.Duration
}

func newMemStore() *memStore {
	return &memStore{buckets: map[string]*gcraState{}, quotas: map[string]*quotaCell{}}
}

var errStoreDown = errors.New("store down")

func (m *memStore) lease(ctx context.Context, bucket string, a leaseArgs) (leaseResult, error) {
	m.calls.Add(1)
	if d, ok := m.slow.Load(bucket); ok {
		select {
		case <-time.After(d.(time.Duration)):
		case <-ctx.Done():
			return leaseResult{}, ctx.Err()
		}
	}
	if m.failing.Load() {
		return leaseResult{}, errStoreDown
	}
	if err := ctx.Err(); err != nil {
		return leaseResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.buckets[bucket]
	if s == nil {
		s = &gcraState{}
		m.buckets[bucket] = s
	}
	var qc *quotaCell
	if a.qlimit > 0 {
		if qc = m.quotas[a.qkey]; qc == nil {
			qc = &quotaCell{}
			m.quotas[a.qkey] = qc
		}
	}
	now := float64(time.Now().UnixMicro() - leaseEpoch*1e6)
	r := s.lease(now, a, qc)
	if m.lostReplies.Load() {
		return leaseResult{}, errStoreDown
	}
	return r, nil
}

// used is the quota counter qkey (0 when absent).
func (m *memStore) used(qkey string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if qc := m.quotas[qkey]; qc != nil {
		return qc.used
	}
	return 0
}

// wipe forgets every bucket, as a Redis restart without persistence does.
func (m *memStore) wipe() {
	m.mu.Lock()
	m.buckets = map[string]*gcraState{}
	m.quotas = map[string]*quotaCell{}
	m.mu.Unlock()
}

// held is what holder holds of bucket.
func (m *memStore) held(bucket, holder string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.buckets[bucket]; s != nil {
		if h := s.holds[holder]; h != nil {
			return h.n
		}
	}
	return 0
}

func newTestLimiter(t *testing.T, s store, holder string, gateways int) *Limiter {
	t.Helper()
	l := newLimiter(s, Config{Holder: holder, Gateways: func() int { return gateways }})
	t.Cleanup(l.Close)
	return l
}

func req(p Policy, key string, cost int) Request {
	return Request{Bucket: p.Bucket(key), Policy: p, Cost: cost, Timeout: time.Second}
}

// hammer sends total requests from conc goroutines spread over limiters
// and returns the units admitted.
func hammer(t *testing.T, ls []*Limiter, r func(i int) Request, total, conc int) (admitted, refused int64) {
	t.Helper()
	var next, a, f atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				rq := r(i)
				res, err := ls[i%len(ls)].Allow(context.Background(), rq)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Decision.Allowed {
					a.Add(int64(rq.Cost))
				} else {
					f.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return a.Load(), f.Load()
}

// A busy gateway spends its lease without asking the store for each
// request, and its headers count down exactly: with one gateway, the
// bucket's remaining as of the last answer less what it spent since is
// the true remaining.
func TestLimiterLeasesAndCountsDownExactly(t *testing.T) {
	s := newMemStore()
	l := newTestLimiter(t, s, "g1", 1)
	p := policy(t, "default", "1/h burst 3000")
	r := req(p, "busy", 1)
	for i := 1; i <= 3000; i++ {
		res, err := l.Allow(context.Background(), r)
		if err != nil || !res.Decision.Allowed || res.Source != SourceShared {
			t.Fatalf("request %d: %+v %v", i, res, err)
		}
		if res.Decision.Remaining != 3000-i {
			t.Fatalf("request %d: remaining %d, want %d", i, res.Decision.Remaining, 3000-i)
		}
	}
	if res, _ := l.Allow(context.Background(), r); res.Decision.Allowed {
		t.Fatal("request 3001 allowed")
	}
	if calls := s.calls.Load(); calls > 1500 {
		t.Errorf("%d store calls for 3001 requests: no leasing", calls)
	}
	t.Logf("%d store calls for 3001 requests", s.calls.Load())
}

// Three gateways on one store, concurrent requests of cost 1 and 3: never
// more units than the burst, and (refill being negligible) all of it.
func TestLimiterExactAcrossGatewaysWithCost(t *testing.T) {
	s := newMemStore()
	ls := []*Limiter{newTestLimiter(t, s, "g1", 3), newTestLimiter(t, s, "g2", 3), newTestLimiter(t, s, "g3", 3)}
	p := policy(t, "default", "1/h burst 600")
	admitted, _ := hammer(t, ls, func(i int) Request { return req(p, "k", 1+2*(i%2)) }, 2000, 48)
	if admitted > 600 || admitted < 598 {
		t.Fatalf("%d units admitted of a burst of 600", admitted)
	}
}

// Unspent tokens go back to the bucket: a gateway that got a lease and then
// went quiet returns it, and another gateway can then spend all of what is
// left. Without returns the quiet gateway's tokens would be lost.
func TestLimiterReturnsIdlePockets(t *testing.T) {
	s := newMemStore()
	a := newTestLimiter(t, s, "a", 2)
	b := newTestLimiter(t, s, "b", 2)
	p := policy(t, "default", "1/h burst 1000")
	r := req(p, "k", 1)
	spentA := 0
	for s.held(r.Bucket, "a") == 0 && spentA < 500 {
		if res, _ := a.Allow(context.Background(), r); res.Decision.Allowed {
			spentA++
		}
		if spentA%20 == 0 {
			// Demand is measured over at least 1 ms: on a fast machine 500
			// in-memory calls could all fall within one.
			time.Sleep(time.Millisecond)
		}
	}
	if s.held(r.Bucket, "a") == 0 {
		t.Fatal("gateway a never held a lease")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.held(r.Bucket, "a") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the quiet gateway never returned its pocket")
		}
		time.Sleep(10 * time.Millisecond)
	}
	spentB := 0
	for i := 0; i < 2000; i++ {
		if res, _ := b.Allow(context.Background(), r); res.Decision.Allowed {
			spentB++
		}
	}
	if spentA+spentB != 1000 {
		t.Fatalf("a spent %d, b %d: %d of 1000", spentA, spentB, spentA+spentB)
	}
}

// When the store fails, local mode starts this gateway's share from the
// bucket as the store last reported it, and charges what it admitted to
// the shared bucket once the store answers again.
func TestLimiterLocalShareStartsFromLastStateAndRepays(t *testing.T) {
	s := newMemStore()
	l := newTestLimiter(t, s, "g1", 1)
	p := policy(t, "default", "1/h burst 10")
	r := req(p, "k", 1)
	for i := 0; i < 8; i++ {
		if res, _ := l.Allow(context.Background(), r); !res.Decision.Allowed {
			t.Fatalf("request %d refused", i+1)
		}
	}
	s.failing.Store(true)
	admitted := 0
	for i := 0; i < 10; i++ {
		res, err := l.Allow(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if res.Decision.Allowed {
			admitted++
		}
	}
	if admitted != 2 {
		t.Fatalf("local mode admitted %d, want the 2 Redis had left", admitted)
	}
	if !l.BreakerOpen() {
		t.Error("breaker not open")
	}
	s.failing.Store(false)
	// The debt (what local mode admitted) reaches the store once it answers.
	deadline := time.Now().Add(5 * time.Second)
	e := l.entries.get(r.Bucket, p, time.Now())
	for {
		e.mu.Lock()
		debt := e.debt
		e.mu.Unlock()
		if debt == 0 && !l.BreakerOpen() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("debt %d not repaid", debt)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A fresh gateway (nothing in its memory) finds the bucket empty.
	fresh := newTestLimiter(t, s, "g2", 1)
	if res, _ := fresh.Allow(context.Background(), r); res.Decision.Allowed {
		t.Fatal("the store forgot what local mode admitted")
	}
}

// A bucket the store lost (a restart without persistence) starts from what
// the gateway last saw of it, not full, and a pocket granted by the lost
// bucket is dropped at the next answer.
func TestLimiterBucketLostByTheStore(t *testing.T) {
	s := newMemStore()
	l := newTestLimiter(t, s, "g1", 1)
	p := policy(t, "default", "1/h burst 50")
	r := req(p, "k", 1)
	admitted := 0
	for i := 0; i < 60; i++ {
		if res, _ := l.Allow(context.Background(), r); res.Decision.Allowed {
			admitted++
		}
	}
	if admitted != 50 {
		t.Fatalf("admitted %d of 50", admitted)
	}
	s.wipe()
	// Cost 2: the last refusal (for cost 1) would otherwise answer locally.
	r.Cost = 2
	for i := 0; i < 60; i++ {
		if res, _ := l.Allow(context.Background(), r); res.Decision.Allowed {
			t.Fatalf("request %d after the store lost the bucket was admitted", i+1)
		}
	}
}

// The breaker opens on consecutive failures, not on a slow call while the
// store answers other calls (as when this gateway's CPU is starved); the
// slow call's requests still get the fallback.
func TestLimiterBreakerIgnoresSlownessWhileTheStoreAnswers(t *testing.T) {
	s := newMemStore()
	l := newTestLimiter(t, s, "g1", 1)
	p := policy(t, "default", "1/h burst 1000")
	slow := Request{Bucket: p.Bucket("slow"), Policy: p, Cost: 1, Timeout: 30 * time.Millisecond}
	s.slow.Store(slow.Bucket, 200*time.Millisecond)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // other keys keep answering
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = l.Allow(context.Background(), req(p, "fast"+strconv.Itoa(i), 1))
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 0; i < 6; i++ {
		res, err := l.Allow(context.Background(), slow)
		if err != nil || res.Source != SourceLocal {
			t.Fatalf("slow call %d: %+v %v, want a local decision", i, res, err)
		}
	}
	close(stop)
	wg.Wait()
	if l.BreakerOpen() {
		t.Fatal("breaker opened while the store was answering")
	}
	// Now nothing answers: three failed calls open it.
	s.failing.Store(true)
	for i := 0; i < 3; i++ {
		_, _ = l.Allow(context.Background(), req(p, "down"+strconv.Itoa(i), 1))
	}
	if !l.BreakerOpen() {
		t.Fatal("breaker still closed after 3 consecutive failures")
	}
}

func TestLimiterModesWhileTheStoreFails(t *testing.T) {
	s := newMemStore()
	s.failing.Store(true)
	l := newTestLimiter(t, s, "g1", 2)
	p := policy(t, "default", "1/h burst 10")
	r := req(p, "k", 1)
	r.Mode = ModeAllow
	if res, err := l.Allow(context.Background(), r); err != nil || res.Decided || res.Source != SourceAllow {
		t.Errorf("allow: %+v %v", res, err)
	}
	r.Mode = ModeDeny
	if res, err := l.Allow(context.Background(), r); err == nil || res.Source != SourceDeny {
		t.Errorf("deny: %+v %v", res, err)
	}
	// local, never answered: this gateway's share of 2 is a full 5.
	r.Mode = ModeLocal
	r.Bucket = p.Bucket("never-seen")
	n := 0
	for i := 0; i < 10; i++ {
		if res, _ := l.Allow(context.Background(), r); res.Decision.Allowed {
			n++
		}
	}
	if n != 5 {
		t.Errorf("local share admitted %d, want 5", n)
	}
	// min_gateways divides further.
	r.Bucket, r.MinGateways = p.Bucket("min"), 5
	n = 0
	for i := 0; i < 10; i++ {
		if res, _ := l.Allow(context.Background(), r); res.Decision.Allowed {
			n++
		}
	}
	if n != 2 {
		t.Errorf("local share with min_gateways 5 admitted %d, want 2", n)
	}
}

// A request whose client goes away while it waits ends with an error and
// leaves the limiter working.
func TestLimiterRequestEndsWhileWaiting(t *testing.T) {
	s := newMemStore()
	l := newTestLimiter(t, s, "g1", 1)
	p := policy(t, "default", "1/h burst 10")
	r := req(p, "k", 1)
	s.slow.Store(r.Bucket, 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { // holds the call in flight
		_, _ = l.Allow(context.Background(), r)
		close(done)
	}()
	time.Sleep(5 * time.Millisecond)
	if _, err := l.Allow(ctx, r); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ended request: %v", err)
	}
	<-done
	s.slow.Delete(r.Bucket)
	if res, err := l.Allow(context.Background(), r); err != nil || !res.Decision.Allowed {
		t.Errorf("after: %+v %v", res, err)
	}
}

// The table of buckets a gateway remembers stays bounded: buckets that are
// full again and hold nothing are forgotten as it grows.
func TestLimiterForgetsFullBuckets(t *testing.T) {
	s := newMemStore()
	l := newTestLimiter(t, s, "g1", 1)
	p := policy(t, "default", "1000/s burst 1")
	const keys = 140_000
	for i := 0; i < keys; i++ {
		if _, err := l.Allow(context.Background(), req(p, strconv.Itoa(i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.entries.Len(); n > 1100*localShards {
		t.Fatalf("%d buckets remembered after %d keys", n, keys)
	}
}
