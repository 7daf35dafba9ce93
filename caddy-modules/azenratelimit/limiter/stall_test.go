package limiter

import (
	"context"
	"testing"
	"time"
)

func TestStallWatch(t *testing.T) {
	var w stallWatch
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for ms := 0; ms <= 200; ms += 20 { // on time
		w.tick(at(ms))
	}
	if w.during(at(0), at(205), 0) {
		t.Fatal("ticks on time taken for a stall")
	}
	w.tick(at(235)) // 15 ms late: scheduling delay, not a stall
	if w.during(at(0), at(236), 0) {
		t.Fatal("a 15 ms delay taken for a stall")
	}
	// Nothing ran from 235 to 335: a stall of 80 ms beyond the tick.
	if !w.during(at(220), at(335), 12*time.Millisecond) {
		t.Fatal("a stall going on (no tick for 100 ms) not seen")
	}
	w.tick(at(335))
	if !w.during(at(220), at(336), 12*time.Millisecond) {
		t.Fatal("a stall of 80 ms after the call started not seen")
	}
	if w.during(at(220), at(336), 100*time.Millisecond) {
		t.Fatal("an 80 ms stall taken for one of at least 100 ms")
	}
	if w.during(at(340), at(345), 0) {
		t.Fatal("a stall that ended before the call started counted")
	}
}

// stallingStore is a store whose calls hang past their deadline while the
// gateway "stalls": each call records a stall of the Limiter's process
// before giving up, as a SIGSTOPped gateway finds on waking.
type stallingStore struct {
	l *Limiter
}

func (s *stallingStore) lease(ctx context.Context, bucket string, a leaseArgs) (leaseResult, error) {
	<-ctx.Done()
	now := time.Now()
	s.l.stalls.length.Store(int64(100 * time.Millisecond))
	s.l.stalls.end.Store(now.UnixNano())
	return leaseResult{}, ctx.Err()
}

// lateStore is a store whose calls hang, and that returns their timeout
// only 40 ms after the deadline passed, as a gateway whose goroutines are
// not scheduled notices it.
type lateStore struct{}

func (lateStore) lease(ctx context.Context, bucket string, a leaseArgs) (leaseResult, error) {
	<-ctx.Done()
	time.Sleep(40 * time.Millisecond)
	return leaseResult{}, ctx.Err()
}

// Calls that time out while the gateway itself was not running (a stall
// seen, or the deadline noticed well after it passed) tell nothing about
// Redis: the breaker stays closed however many there are (their requests
// get the fallback), while the same timeouts noticed on time open it.
func TestLimiterBreakerIgnoresTimeoutsOfItsOwnStalls(t *testing.T) {
	s := &stallingStore{}
	l := newTestLimiter(t, s, "g1", 1)
	s.l = l
	p := policy(t, "default", "1/h burst 1000")
	r := Request{Bucket: p.Bucket("stalled"), Policy: p, Cost: 1, Timeout: 30 * time.Millisecond}
	for i := 0; i < 2*breakerThreshold; i++ {
		res, err := l.Allow(context.Background(), r)
		if err != nil || res.Source != SourceLocal {
			t.Fatalf("call %d: %+v %v, want a local decision", i+1, res, err)
		}
	}
	if l.BreakerOpen() {
		t.Fatal("the breaker opened on timeouts of the gateway's own stalls")
	}

	late := newTestLimiter(t, lateStore{}, "g3", 1)
	for i := 0; i < 2*breakerThreshold; i++ {
		_, _ = late.Allow(context.Background(), r)
	}
	if late.BreakerOpen() {
		t.Fatal("the breaker opened on timeouts the gateway noticed 40 ms late")
	}

	hung := newMemStore()
	l2 := newTestLimiter(t, hung, "g2", 1)
	hung.slow.Store(r.Bucket, time.Second)
	for i := 0; i < breakerThreshold; i++ {
		_, _ = l2.Allow(context.Background(), r)
	}
	if !l2.BreakerOpen() {
		t.Fatal("the breaker stayed closed on timeouts with the gateway running")
	}
}
