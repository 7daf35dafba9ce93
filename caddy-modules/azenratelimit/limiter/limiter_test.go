package limiter

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/ratespec"
)

func policy(t testing.TB, name, text string) Policy {
	t.Helper()
	p, err := ratespec.ParsePolicy(text)
	if err != nil {
		t.Fatal(err)
	}
	return NewPolicy(name, p)
}

// manualClock is a clock that moves only when told.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newManualClock() *manualClock         { return &manualClock{t: time.Unix(1_700_000_000, 0)} }

func TestPolicyDefaultsBurstToCount(t *testing.T) {
	if p := policy(t, "default", "60/m"); p.Burst != 60 {
		t.Errorf("burst %d, want 60", p.Burst)
	}
	if p := policy(t, "pro", "600/m burst 100"); p.Burst != 100 {
		t.Errorf("burst %d, want 100", p.Burst)
	}
}

func TestBucketNamespacing(t *testing.T) {
	def := policy(t, "default", "60/m")
	pro := policy(t, "pro", "60/m")
	bigger := policy(t, "default", "60/m burst 10")
	names := map[string]string{
		"default": def.Bucket("k1"),
		"pro":     pro.Bucket("k1"),
		"burst":   bigger.Bucket("k1"),
		"other":   def.Bucket("k2"),
	}
	seen := map[string]string{}
	for what, b := range names {
		if prev, dup := seen[b]; dup {
			t.Errorf("%s and %s share bucket %s", what, prev, b)
		}
		seen[b] = what
	}
	if got, want := def.Bucket("k1"), "azen:rl:{k1}:default:60/60s/60"; got != want {
		t.Errorf("bucket %q, want %q", got, want)
	}
	long := def.Bucket(string(make([]byte, 500)))
	if len(long) > 200 {
		t.Errorf("long key not hashed: %d bytes", len(long))
	}
}

func TestPolicyCheck(t *testing.T) {
	for text, ok := range map[string]bool{
		"60/m": true, "1000000/s": true, "1000001/s": false,
		"1/d burst 366": true, "1/d burst 367": false, "100/h burst 1000000000": false,
	} {
		if err := policy(t, "p", text).Check(); (err == nil) != ok {
			t.Errorf("%s: Check() = %v, want ok=%v", text, err, ok)
		}
	}
}

func TestDivide(t *testing.T) {
	p := policy(t, "pro", "600/m burst 100")
	tests := []struct {
		n         int
		emission  time.Duration
		wantBurst int
	}{
		{1, 100 * time.Millisecond, 100},
		{2, 200 * time.Millisecond, 50},
		{3, 300 * time.Millisecond, 33},
		{200, 20 * time.Second, 1},
	}
	for _, tt := range tests {
		q := p.Divide(tt.n)
		if q.Emission() != tt.emission || q.Burst != tt.wantBurst || q.Name != "pro" {
			t.Errorf("Divide(%d) = %+v (emission %s), want emission %s burst %d", tt.n, q, q.Emission(), tt.emission, tt.wantBurst)
		}
	}
}

func TestLocalBurstThenRate(t *testing.T) {
	c := newManualClock()
	l := NewLocal(c.now)
	p := policy(t, "default", "60/m burst 5")
	b := p.Bucket("k")
	for i := 0; i < 5; i++ {
		d := l.Allow(b, p, 1)
		if !d.Allowed || d.Remaining != 4-i {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i+1, d, 4-i)
		}
	}
	d := l.Allow(b, p, 1)
	if d.Allowed || d.RetryAfter != time.Second || d.ResetAfter != 5*time.Second {
		t.Fatalf("6th request: %+v, want refused, retry 1s, reset 5s", d)
	}
	c.add(999 * time.Millisecond)
	if d := l.Allow(b, p, 1); d.Allowed {
		t.Fatalf("allowed before Retry-After passed: %+v", d)
	}
	c.add(time.Millisecond)
	if d := l.Allow(b, p, 1); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("refused once Retry-After passed: %+v", d)
	}
	c.add(time.Hour)
	if d := l.Allow(b, p, 1); !d.Allowed || d.Remaining != 4 {
		t.Fatalf("bucket did not refill: %+v", d)
	}
}

func TestLocalCost(t *testing.T) {
	c := newManualClock()
	l := NewLocal(c.now)
	p := policy(t, "default", "10/s burst 10")
	b := p.Bucket("k")
	for i, want := range []bool{true, true, true, false} { // cost 3: 3+3+3 = 9 of 10
		d := l.Allow(b, p, 3)
		if d.Allowed != want {
			t.Fatalf("request %d: %+v, want allowed=%v", i+1, d, want)
		}
	}
	d := l.Allow(b, p, 1)
	if !d.Allowed || d.Remaining != 0 {
		t.Fatalf("cost 1 after 9 spent: %+v", d)
	}
}

func TestLocalExactUnderConcurrency(t *testing.T) {
	l := NewLocal(nil)
	p := policy(t, "default", "50/h burst 50")
	b := p.Bucket("k")
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if d := l.Allow(b, p, 1); d.Allowed {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 50 {
		t.Fatalf("%d allowed, want exactly 50", allowed.Load())
	}
}

func TestLocalSweepsFullBuckets(t *testing.T) {
	c := newManualClock()
	l := NewLocal(c.now)
	p := policy(t, "default", "1/s")
	const requests = 200_000
	for i := 0; i < requests; i++ {
		_ = l.Allow(p.Bucket(strconv.Itoa(i)), p, 1)
		c.add(100 * time.Microsecond) // every bucket is full again 1 s later
	}
	// Without sweeping every one of the 200 000 buckets would stay; with it
	// a shard never holds much more than its sweep threshold.
	if n := l.Len(); n > 1024*localShards {
		t.Fatalf("%d buckets held, want the full ones swept", n)
	}
}

func TestBreaker(t *testing.T) {
	c := newManualClock()
	b := NewBreaker(3, time.Second, c.now)
	if !b.Allow() {
		t.Fatal("new breaker refuses")
	}
	for i := 0; i < 2; i++ {
		if b.Failure(c.now()) {
			t.Fatalf("opened after %d failures, before the threshold of 3", i+1)
		}
	}
	b.Success() // resets the run of failures
	b.Failure(c.now())
	b.Failure(c.now())
	if !b.Failure(c.now()) {
		t.Fatal("3 consecutive failures did not open it")
	}
	if b.Allow() {
		t.Fatal("open breaker let a call through before the cooldown")
	}
	c.add(time.Second)
	if !b.Allow() {
		t.Fatal("no probe after the cooldown")
	}
	if b.Allow() {
		t.Fatal("a second probe while one is in flight")
	}
	b.Failure(c.now()) // probe failed
	if b.Allow() {
		t.Fatal("failed probe did not restart the cooldown")
	}
	c.add(time.Second)
	if !b.Allow() {
		t.Fatal("no probe after the second cooldown")
	}
	b.Abandon() // the probe's client went away: another may probe
	if !b.Allow() {
		t.Fatal("no new probe after the first was abandoned")
	}
	if !b.Success() {
		t.Fatal("successful probe did not report recovery")
	}
	if !b.Allow() || b.Open() {
		t.Fatal("breaker not closed after recovery")
	}
}

func TestHeaders(t *testing.T) {
	p := policy(t, "pro", "600/m burst 100")
	tests := []struct {
		name string
		d    Decision
		want map[string]string
	}{
		{"allowed", Decision{Allowed: true, Remaining: 29, ResetAfter: 2100 * time.Millisecond}, map[string]string{
			"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "29", "X-RateLimit-Reset": "3",
			"RateLimit-Policy": `"pro";q=600;w=60`, "RateLimit": `"pro";r=29;t=3`, "Retry-After": "",
		}},
		{"refused rounds Retry-After up", Decision{Allowed: false, RetryAfter: 6001 * time.Millisecond, ResetAfter: 10 * time.Second}, map[string]string{
			"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "10", "RateLimit": `"pro";r=0;t=10`, "Retry-After": "7",
		}},
		{"refused Retry-After at least 1", Decision{Allowed: false, RetryAfter: time.Millisecond, ResetAfter: time.Millisecond}, map[string]string{
			"Retry-After": "1", "X-RateLimit-Reset": "1",
		}},
		{"whole seconds stay whole", Decision{Allowed: false, RetryAfter: 2 * time.Second, ResetAfter: 4 * time.Second}, map[string]string{
			"Retry-After": "2", "X-RateLimit-Reset": "4",
		}},
		{"full bucket resets in 0", Decision{Allowed: true, Remaining: 100}, map[string]string{
			"X-RateLimit-Reset": "0", "RateLimit": `"pro";r=100;t=0`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("Retry-After", "stale")
			SetHeaders(h, p, tt.d)
			for k, v := range tt.want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestHeaderNamesAreCanonical(t *testing.T) {
	for _, k := range []string{hLimit, hRemaining, hReset, hPolicy, hRateLimit, hRetryAfter} {
		if http.CanonicalHeaderKey(k) != k {
			t.Errorf("%s is not canonical", k)
		}
	}
}

func TestRefusalMessage(t *testing.T) {
	tests := []struct {
		policy string
		retry  time.Duration
		want   string
	}{
		{"60/m", 6500 * time.Millisecond, "Rate limit exceeded: 60 requests per minute. Retry in 7 s."},
		{"1/s", 0, "Rate limit exceeded: 1 request per second. Retry in 1 s."},
		{"1000/d", time.Hour, "Rate limit exceeded: 1000 requests per day. Retry in 3600 s."},
		{"100/10s", time.Second, "Rate limit exceeded: 100 requests per 10s. Retry in 1 s."},
	}
	for _, tt := range tests {
		got := RefusalMessage(policy(t, "default", tt.policy), Decision{RetryAfter: tt.retry})
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.policy, got, tt.want)
		}
	}
}

func FuzzGCRA(f *testing.F) {
	f.Add(60, int64(60), 60, 1, int64(0))
	f.Add(600, int64(60), 100, 3, int64(123456789))
	f.Add(1, int64(1), 1, 1, int64(999999999))
	f.Fuzz(func(t *testing.T, count int, periodSec int64, burst, cost int, step int64) {
		if count < 1 || count > 1e6 || periodSec < 1 || periodSec > 7*86400 || burst < 1 || burst > 1e6 || cost < 1 || cost > burst || step < 0 {
			return
		}
		p := Policy{Name: "f", Rate: ratespec.Rate{Count: count, Period: time.Duration(periodSec) * time.Second}, Burst: burst}
		if p.Emission() <= 0 {
			return
		}
		c := newManualClock()
		l := NewLocal(c.now)
		allowedUnits := 0
		for i := 0; i < 50; i++ {
			d := l.Allow("b", p, cost)
			if d.Allowed {
				allowedUnits += cost
				if d.Remaining < 0 || d.Remaining > burst || d.RetryAfter != 0 {
					t.Fatalf("allowed decision out of range: %+v", d)
				}
			} else if d.RetryAfter <= 0 || RetryAfterSeconds(d) < 1 {
				t.Fatalf("refused without a positive wait: %+v", d)
			} else {
				// Waiting Retry-After (rounded up) always lets it pass.
				c.add(time.Duration(RetryAfterSeconds(d)) * time.Second)
				if d2 := l.Allow("b", p, cost); !d2.Allowed {
					t.Fatalf("refused after waiting Retry-After %ds: %+v then %+v", RetryAfterSeconds(d), d, d2)
				}
				allowedUnits += cost
			}
			c.add(time.Duration(step % int64(time.Minute)))
		}
		_ = allowedUnits
	})
}

func BenchmarkLocalAllow(b *testing.B) {
	l := NewLocal(nil)
	p := NewPolicy("default", ratespec.Policy{Rate: ratespec.Rate{Count: 1_000_000, Period: time.Second}})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = p.Bucket(strconv.Itoa(i))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_ = l.Allow(keys[i&1023], p, 1)
			i++
		}
	})
}
