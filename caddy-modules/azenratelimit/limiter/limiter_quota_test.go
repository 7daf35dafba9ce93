package limiter

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/quota"
	"github.com/azen-sh/gateway/internal/testenv"
)

// qreq is a request of cost for owner's bucket under p with quota q.
func qreq(p Policy, owner string, cost int, q apikey.Quota) Request {
	r := req(p, owner, cost)
	r.Quota, r.QuotaOwner = q, owner
	return r
}

func day(n int64) apikey.Quota { return apikey.Quota{Limit: n, Period: apikey.PeriodDay} }

// hammerResults is hammer keeping every result.
func hammerResults(t *testing.T, ls []*Limiter, r func(i int) Request, total, conc int) []Result {
	t.Helper()
	var next atomic.Int64
	var mu sync.Mutex
	var out []Result
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
				res, err := ls[i%len(ls)].Allow(context.Background(), r(i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				out = append(out, res)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// Three gateways, 40 concurrent clients, a quota of 25 per day and a rate
// far above it: exactly 25 admitted, every refusal a quota refusal, and
// the counter holds 25.
func TestLimiterQuotaExactAcrossGateways(t *testing.T) {
	s := newMemStore()
	ls := []*Limiter{newTestLimiter(t, s, "g1", 3), newTestLimiter(t, s, "g2", 3), newTestLimiter(t, s, "g3", 3)}
	p := policy(t, "default", "1000000/s burst 100000")
	q := day(25)
	res := hammerResults(t, ls, func(int) Request { return qreq(p, "k", 1, q) }, 1000, 40)
	admitted := 0
	for _, r := range res {
		switch {
		case r.Decision.Allowed:
			admitted++
		case !r.Quota.Exceeded || r.Decision.RetryAfter < r.Quota.ResetAfter:
			t.Fatalf("refusal %+v is not a quota refusal until the period ends", r)
		}
		if r.Quota.Limit != 25 || r.Quota.Period != "day" || r.Quota.Window != 24*time.Hour {
			t.Fatalf("quota status %+v", r.Quota)
		}
	}
	if admitted != 25 {
		t.Fatalf("%d admitted, want exactly 25", admitted)
	}
	if n := s.used(quota.Key("k", q, time.Now())); n != 25 {
		t.Fatalf("counter %d, want 25", n)
	}
}

// Cost 3 beside cost 1 under a quota of 10: a cost-3 request is refused
// for the quota while 1 or 2 units are left, a cost-1 request still passes,
// and never more than 10 units are admitted.
func TestLimiterQuotaWithCost(t *testing.T) {
	s := newMemStore()
	l := newTestLimiter(t, s, "g1", 1)
	p := policy(t, "default", "1000000/s burst 100000")
	q := day(10)
	units := 0
	for i := 0; i < 3; i++ {
		if r, _ := l.Allow(context.Background(), qreq(p, "k", 3, q)); !r.Decision.Allowed || r.Quota.Remaining != int64(10-3*(i+1)) {
			t.Fatalf("cost-3 request %d: %+v", i+1, r)
		}
		units += 3
	}
	r, _ := l.Allow(context.Background(), qreq(p, "k", 3, q))
	if r.Decision.Allowed || !r.Quota.Exceeded || r.Quota.Remaining != 1 {
		t.Fatalf("cost 3 with 1 left: %+v", r)
	}
	if r, _ := l.Allow(context.Background(), qreq(p, "k", 1, q)); !r.Decision.Allowed || r.Quota.Remaining != 0 {
		t.Fatalf("cost 1 with 1 left: %+v", r)
	}
	if r, _ := l.Allow(context.Background(), qreq(p, "k", 1, q)); r.Decision.Allowed || !r.Quota.Exceeded {
		t.Fatalf("cost 1 with nothing left: %+v", r)
	}
}

// A busy key leases quota units with its tokens: far fewer store calls
// than requests, exactly the quota admitted, and the remaining quota
// counts down one by one (one gateway).
func TestLimiterQuotaLeasesCountDownExactly(t *testing.T) {
	s := newMemStore()
	l := newTestLimiter(t, s, "g1", 1)
	p := policy(t, "default", "1000000/s burst 100000")
	q := day(5000)
	admitted := 0
	for i := 0; i < 6000; i++ {
		r, err := l.Allow(context.Background(), qreq(p, "busy", 1, q))
		if err != nil {
			t.Fatal(err)
		}
		if r.Decision.Allowed {
			admitted++
			if r.Quota.Remaining != int64(5000-admitted) {
				t.Fatalf("request %d: quota remaining %d, want %d", i+1, r.Quota.Remaining, 5000-admitted)
			}
		}
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // demand measured over at least 1 ms
		}
	}
	if admitted != 5000 {
		t.Fatalf("%d admitted of a quota of 5000", admitted)
	}
	if calls := s.calls.Load(); calls > 2500 {
		t.Errorf("%d store calls for 6000 requests: quota keys are not leased", calls)
	}
	t.Logf("%d store calls for 6000 requests", s.calls.Load())
}

// A change of quota (keys update) applies to the next request: a pocket
// leased under the old quota is not spent under the new one but given back
// to the counter (the same period), so the new limit is reached exactly.
func TestLimiterQuotaChangeUnderAPocket(t *testing.T) {
	s := newMemStore()
	l := newTestLimiter(t, s, "g1", 1)
	p := policy(t, "default", "1000000/s burst 100000")
	old, lowered := day(10000), day(60)
	admitted := 0
	for i := 0; i < 50; i++ {
		if r, _ := l.Allow(context.Background(), qreq(p, "k", 1, old)); r.Decision.Allowed {
			admitted++
		}
		time.Sleep(100 * time.Microsecond)
	}
	if admitted != 50 {
		t.Fatalf("admitted %d of 50 under the old quota", admitted)
	}
	if s.held(p.Bucket("k"), "g1") == 0 {
		t.Fatal("no pocket under the old quota")
	}
	for i := 0; i < 100; i++ {
		r, _ := l.Allow(context.Background(), qreq(p, "k", 1, lowered))
		if r.Decision.Allowed {
			admitted++
		} else if !r.Quota.Exceeded || r.Quota.Limit != 60 {
			t.Fatalf("refusal under the new quota: %+v", r)
		}
	}
	if admitted != 60 {
		t.Fatalf("%d admitted, the new quota is 60", admitted)
	}
	if used := s.used(quota.Key("k", lowered, time.Now())); used != 60 {
		t.Fatalf("counter %d for %d admitted", used, admitted)
	}
}

// The store failing: local mode admits this gateway's share of what the
// store last said was left (here (20-10)/2 = 5), refuses the rest for the
// quota, and charges what it admitted once the store answers again, even
// after the store lost the counter.
func TestLimiterQuotaLocalShareAndRepay(t *testing.T) {
	for _, lost := range []bool{false, true} {
		t.Run(map[bool]string{false: "store kept the counter", true: "store lost the counter"}[lost], func(t *testing.T) {
			s := newMemStore()
			a := newTestLimiter(t, s, "a", 2)
			p := policy(t, "default", "1000000/s burst 100000")
			q := day(20)
			for i := 0; i < 10; i++ {
				if r, _ := a.Allow(context.Background(), qreq(p, "k", 1, q)); !r.Decision.Allowed {
					t.Fatalf("request %d refused", i+1)
				}
			}
			time.Sleep(300 * time.Millisecond) // pockets returned
			s.failing.Store(true)
			admitted := 0
			for i := 0; i < 10; i++ {
				r, err := a.Allow(context.Background(), qreq(p, "k", 1, q))
				if err != nil {
					t.Fatal(err)
				}
				if r.Decision.Allowed {
					admitted++
				} else if !r.Quota.Exceeded || r.Source != SourceLocal {
					t.Fatalf("local refusal: %+v", r)
				}
			}
			if admitted != 5 {
				t.Fatalf("local mode admitted %d, want its share of 5", admitted)
			}
			if lost {
				s.wipe()
			}
			s.failing.Store(false)
			key := quota.Key("k", q, time.Now())
			deadline := time.Now().Add(5 * time.Second)
			for s.used(key) != 15 {
				if time.Now().After(deadline) {
					t.Fatalf("counter %d, want 15 (10, then 5 charged)", s.used(key))
				}
				time.Sleep(20 * time.Millisecond)
			}
			// What is left (5) is shared again.
			fresh := newTestLimiter(t, s, "b", 2)
			n := 0
			for i := 0; i < 10; i++ {
				if r, _ := fresh.Allow(context.Background(), qreq(p, "k", 1, q)); r.Decision.Allowed {
					n++
				}
			}
			if n != 5 {
				t.Fatalf("after recovery %d admitted of the 5 left", n)
			}
		})
	}
}

// What local mode admitted is charged once, however many calls carry it:
// the breaker's probes that reached the store but whose replies were lost
// (timeouts) all sent it, and the one that succeeded sent it again.
func TestLimiterQuotaLocalAdmissionsChargedOnce(t *testing.T) {
	s := newMemStore()
	l := newTestLimiter(t, s, "a", 1)
	p := policy(t, "default", "1000000/s burst 100000")
	q := day(100)
	for i := 0; i < 10; i++ {
		l.Allow(context.Background(), qreq(p, "k", 1, q))
	}
	time.Sleep(300 * time.Millisecond) // pockets returned
	s.failing.Store(true)
	for i := 0; i < 5; i++ {
		if r, _ := l.Allow(context.Background(), qreq(p, "k", 1, q)); !r.Decision.Allowed || r.Source != SourceLocal {
			t.Fatalf("local request %d: %+v", i+1, r)
		}
	}
	s.failing.Store(false)
	s.lostReplies.Store(true)
	before := s.calls.Load()
	time.Sleep(2500 * time.Millisecond) // probes, a second apart, carry the 5
	if probes := s.calls.Load() - before; probes < 2 {
		t.Fatalf("%d calls while replies were lost, want the breaker's probes", probes)
	}
	s.lostReplies.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for l.quotaOwes("k", q) {
		if time.Now().After(deadline) {
			t.Fatal("local admissions never confirmed charged")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if used := s.used(quota.Key("k", q, time.Now())); used != 15 {
		t.Fatalf("counter %d after %d calls carried the 5 local admissions, want 10 + 5", used, s.calls.Load()-before)
	}
}

// Without a store the quota is counted in process, and a new UTC period
// (on the injected clock) starts it again.
func TestLimiterQuotaAloneResetsAtThePeriodBoundary(t *testing.T) {
	clock := &manualClock{t: time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC)}
	l := New(Config{Now: clock.now})
	t.Cleanup(l.Close)
	p := policy(t, "default", "1000/s burst 1000")
	for _, q := range []apikey.Quota{day(3), {Limit: 3, Period: apikey.PeriodMonth}} {
		owner := "k-" + q.Period
		for i := 0; i < 3; i++ {
			if r, _ := l.Allow(context.Background(), qreq(p, owner, 1, q)); !r.Decision.Allowed || r.Quota.Remaining != int64(2-i) {
				t.Fatalf("%s request %d: %+v", q, i+1, r)
			}
		}
		r, _ := l.Allow(context.Background(), qreq(p, owner, 1, q))
		if r.Decision.Allowed || !r.Quota.Exceeded || r.Quota.ResetAfter != 2*time.Second || r.Decision.RetryAfter != 2*time.Second {
			t.Fatalf("%s: refusal %+v, want a reset in 2 s", q, r)
		}
		if w := map[string]time.Duration{"day": 24 * time.Hour, "month": 31 * 24 * time.Hour}[q.Period]; r.Quota.Window != w {
			t.Fatalf("%s window %s", q, r.Quota.Window)
		}
	}
	clock.add(2 * time.Second) // 2027-01-01T00:00:00Z
	for _, q := range []apikey.Quota{day(3), {Limit: 3, Period: apikey.PeriodMonth}} {
		r, _ := l.Allow(context.Background(), qreq(p, "k-"+q.Period, 1, q))
		if !r.Decision.Allowed || r.Quota.Remaining != 2 {
			t.Fatalf("%s after the boundary: %+v", q, r)
		}
	}
}

// With Redis: exact at the UTC period boundary, on Redis's clock. The
// test shifts the quota's clock (QuotaClockOffset, 0 in every gateway) to
// 1.5 s before midnight UTC: the quota is spent, the refusal says it
// resets at midnight, and after midnight the next day's counter (named for
// that day) takes the requests while the old one keeps its count.
func TestLimiterQuotaPeriodBoundaryOnRedis(t *testing.T) {
	_, client := newTestRedis(t)
	r := NewRedis(client)
	t.Cleanup(r.Close)
	now := time.Now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	offset := midnight.Add(-1500 * time.Millisecond).Sub(now)
	l := New(Config{Redis: r, Holder: "g1", QuotaClockOffset: offset})
	t.Cleanup(l.Close)
	p := policy(t, "default", "1000000/s burst 100000")
	q := day(5)
	for i := 0; i < 5; i++ {
		if res, err := l.Allow(context.Background(), qreq(p, "edge", 1, q)); err != nil || !res.Decision.Allowed {
			t.Fatalf("request %d: %+v %v", i+1, res, err)
		}
	}
	res, err := l.Allow(context.Background(), qreq(p, "edge", 1, q))
	if err != nil || res.Decision.Allowed || !res.Quota.Exceeded {
		t.Fatalf("6th request: %+v %v", res, err)
	}
	if ra := res.Decision.RetryAfter; ra < 500*time.Millisecond || ra > 1600*time.Millisecond {
		t.Fatalf("Retry-After %s, want the time until midnight (under 1.5 s)", ra)
	}
	if got := RetryAfterSeconds(res.Decision); got != 1 && got != 2 {
		t.Fatalf("Retry-After %d s", got)
	}
	time.Sleep(time.Until(midnight.Add(-offset)) + 100*time.Millisecond)
	res, err = l.Allow(context.Background(), qreq(p, "edge", 1, q))
	if err != nil || !res.Decision.Allowed || res.Quota.Remaining != 4 || res.Quota.ResetAfter < 23*time.Hour {
		t.Fatalf("after midnight: %+v %v", res, err)
	}
	ctx := context.Background()
	yesterday, today := quota.Key("edge", q, midnight.Add(-time.Second)), quota.Key("edge", q, midnight)
	if n, _ := client.Get(ctx, yesterday).Int64(); n != 5 {
		t.Errorf("%s = %d, want 5", yesterday, n)
	}
	if n, _ := client.Get(ctx, today).Int64(); n != 1 {
		t.Errorf("%s = %d, want 1", today, n)
	}
}

// A gateway whose clock is a day off names the wrong period's counter:
// Redis refuses it and the gateway asks again for the period of Redis's
// clock, in the same request.
func TestLimiterQuotaPeriodIsRedisClock(t *testing.T) {
	_, client := newTestRedis(t)
	r := NewRedis(client)
	t.Cleanup(r.Close)
	l := New(Config{Redis: r, Holder: "g1", Now: func() time.Time { return time.Now().Add(-25 * time.Hour) }})
	t.Cleanup(l.Close)
	p := policy(t, "default", "1000/s burst 1000")
	q := day(3)
	for i := 0; i < 4; i++ {
		res, err := l.Allow(context.Background(), qreq(p, "skewed", 1, q))
		if err != nil || res.Decision.Allowed != (i < 3) {
			t.Fatalf("request %d: %+v %v", i+1, res, err)
		}
	}
	if n, _ := client.Get(context.Background(), quota.Key("skewed", q, time.Now())).Int64(); n != 3 {
		t.Fatalf("Redis's day counted %d, want 3", n)
	}
}

// Many keys with quotas: the table of quota entries stays bounded.
func TestLimiterForgetsIdleQuotas(t *testing.T) {
	clock := newManualClock()
	l := New(Config{Now: clock.now})
	t.Cleanup(l.Close)
	p := policy(t, "default", "1000/s burst 1")
	for round := 0; round < 3; round++ {
		for i := 0; i < 70_000; i++ {
			l.Allow(context.Background(), qreq(p, strconv.Itoa(round)+"-"+strconv.Itoa(i), 1, day(5)))
		}
		clock.add(25 * time.Hour) // the day is over: its counts no longer matter
	}
	if n := l.quotas.Len(); n > 1100*localShards+70_000 {
		t.Fatalf("%d quota entries after 210 000 keys over three days", n)
	}
}

// quotaOwes reports whether l owes the store local admissions of owner's q.
func (l *Limiter) quotaOwes(owner string, q apikey.Quota) bool {
	e := l.quotas.lock(owner, q, l.clock.now())
	defer e.mu.Unlock()
	return e.owed() > 0
}

// On a Redis Cluster the bucket, the quota counter and its ledger share
// the key's hash tag: one script call touches all three (no CROSSSLOT),
// through the Limiter and with a charge of local admissions.
func TestLeaseScriptOnRedisCluster(t *testing.T) {
	cluster := testenv.StartRedisCluster(t, 3)
	var addrs []string
	for _, n := range cluster.Nodes {
		addrs = append(addrs, n.Addr())
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	r := NewRedis(client)
	t.Cleanup(r.Close)
	p := policy(t, "default", "1000/s burst 1000")
	q := day(7)
	ctx := context.Background()
	for i, owner := range []string{"4f1c2b8e-1111-4c1a-9a3e-0b9b4b1e7a11", "a", "b", "c"} {
		now := time.Now()
		start, end := q.Window(now)
		res, err := r.lease(ctx, p.Bucket(owner), leaseArgs{
			emission: p.emissionMicros(), burst: 1000, holder: "g", seq: 1, need: 1, cost: 1, gateways: 1,
			ttl: 1e6, retain: 1e7, qkey: quota.Key(owner, q, now), qledger: quota.LocalKey(owner, q, now),
			qlimit: 7, qmark: "m", qstart: leaseMicros(start), qend: leaseMicros(end), qmargin: 2e6,
			qdebt: 3,
		})
		if err != nil || res.need != 1 || res.qused != 4 {
			t.Fatalf("owner %d: %+v %v", i, res, err)
		}
		if n, err := client.HGet(ctx, quota.LocalKey(owner, q, now), "g").Int64(); err != nil || n != 3 {
			t.Fatalf("owner %d: ledger %d %v", i, n, err)
		}
	}
	l := New(Config{Redis: r, Holder: "g2"})
	t.Cleanup(l.Close)
	n := 0
	for i := 0; i < 10; i++ {
		res, err := l.Allow(ctx, qreq(p, "limiter-owner", 1, q))
		if err != nil || res.Source != SourceShared {
			t.Fatalf("request %d: %+v %v", i+1, res, err)
		}
		if res.Decision.Allowed {
			n++
		}
	}
	if n != 7 {
		t.Fatalf("%d admitted of a quota of 7 on the cluster", n)
	}
}
