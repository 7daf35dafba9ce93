package azenratelimit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/caddy-modules/azenratelimit/limiter"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/testenv"
)

// provision provisions h in a fresh Caddy context, cleaned up with the test.
func provision(t *testing.T, h *Handler) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := h.Provision(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = h.Cleanup()
		cancel()
	})
	return h
}

// request runs one request through h with the given replacer values and
// returns the recorder and the handler's error.
func request(h *Handler, vars map[string]any) (*httptest.ResponseRecorder, error) {
	r := httptest.NewRequest("GET", "/api/v1/memory", nil)
	repl := caddy.NewReplacer()
	for k, v := range vars {
		repl.Set(k, v)
	}
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		return nil
	}))
	return w, err
}

func statusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return -1
}

func TestLocalModeLimitsPerKey(t *testing.T) {
	h := provision(t, &Handler{Rate: "10/h", Burst: 3})
	for i := 0; i < 3; i++ {
		w, err := request(h, map[string]any{"azen.key_id": "k1"})
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if got := w.Header().Get("X-RateLimit-Remaining"); got != strconv.Itoa(2-i) {
			t.Errorf("request %d: remaining %s", i+1, got)
		}
	}
	w, err := request(h, map[string]any{"azen.key_id": "k1"})
	if statusOf(err) != http.StatusTooManyRequests {
		t.Fatalf("4th request: %v, want 429", err)
	}
	msg, ok := contract.PublicMessage(err)
	if !ok || msg != "Rate limit exceeded: 10 requests per hour. Retry in 360 s." {
		t.Errorf("message %q", msg)
	}
	if w.Header().Get("Retry-After") != "360" || w.Header().Get("X-RateLimit-Limit") != "10" {
		t.Errorf("headers %v", w.Header())
	}
	if _, err := request(h, map[string]any{"azen.key_id": "k2"}); err != nil {
		t.Errorf("another key shares the bucket: %v", err)
	}
}

func TestEmptyKeyIsAnError(t *testing.T) {
	h := provision(t, &Handler{})
	if _, err := request(h, nil); statusOf(err) != http.StatusInternalServerError {
		t.Fatalf("empty key: %v, want 500", err)
	}
}

func TestPolicyResolution(t *testing.T) {
	h := provision(t, &Handler{Rate: "60/m", Tiers: map[string]string{"pro": "600/m burst 100", "free": "10/m"}})
	tests := []struct {
		name       string
		vars       map[string]any
		wantPolicy string
		wantLimit  string
	}{
		{"default", map[string]any{"azen.key_id": "a"}, `"default";q=60;w=60`, "60"},
		{"tier", map[string]any{"azen.key_id": "b", "azen.tier": "pro"}, `"pro";q=600;w=60`, "600"},
		{"tier without burst gets its count", map[string]any{"azen.key_id": "c", "azen.tier": "free"}, `"free";q=10;w=60`, "10"},
		{"unknown tier falls back to default", map[string]any{"azen.key_id": "d", "azen.tier": "gold"}, `"default";q=60;w=60`, "60"},
		{"override beats tier", map[string]any{"azen.key_id": "e", "azen.tier": "pro", "azen.rate_limit": "120/m burst 20"}, `"key";q=120;w=60`, "120"},
		{"override without burst", map[string]any{"azen.key_id": "f", "azen.rate_limit": "5/s"}, `"key";q=5;w=1`, "5"},
		{"malformed override ignored", map[string]any{"azen.key_id": "g", "azen.tier": "pro", "azen.rate_limit": "lots"}, `"pro";q=600;w=60`, "600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := request(h, tt.vars)
			if err != nil {
				t.Fatal(err)
			}
			if got := w.Header().Get("RateLimit-Policy"); got != tt.wantPolicy {
				t.Errorf("RateLimit-Policy %q, want %q", got, tt.wantPolicy)
			}
			if got := w.Header().Get("X-RateLimit-Limit"); got != tt.wantLimit {
				t.Errorf("X-RateLimit-Limit %q, want %q", got, tt.wantLimit)
			}
		})
	}
	// The override's burst is its own: 20 pass, the 21st does not.
	for i := 1; i < 20; i++ {
		if _, err := request(h, map[string]any{"azen.key_id": "e", "azen.rate_limit": "120/m burst 20"}); err != nil {
			t.Fatalf("override request %d: %v", i+1, err)
		}
	}
	if _, err := request(h, map[string]any{"azen.key_id": "e", "azen.rate_limit": "120/m burst 20"}); statusOf(err) != 429 {
		t.Fatalf("21st override request: %v", err)
	}
}

func TestCostSpendsSeveralUnits(t *testing.T) {
	h := provision(t, &Handler{Rate: "10/h", Cost: 4})
	for i, want := range []int{200, 200, 429} {
		if _, err := request(h, map[string]any{"azen.key_id": "k"}); statusOf(err) != want {
			t.Fatalf("request %d: %v, want %d", i+1, err, want)
		}
	}
}

// startRedis starts a private Redis for one test (it starts in a few ms).
func startRedis(t *testing.T) *testenv.Redis {
	t.Helper()
	return testenv.StartRedis(t)
}

func TestRedisModeIsExactAcrossHandlers(t *testing.T) {
	rs := startRedis(t)
	// Two handlers on different URLs for the same server stand for two
	// gateways: they share nothing but Redis.
	a := provision(t, &Handler{Redis: rs.URL(), Rate: "10/h", Burst: 7})
	b := provision(t, &Handler{Redis: rs.URL() + "/0", Rate: "10/h", Burst: 7})
	key := "exact-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	var allowed, limited atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(h *Handler) {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				_, err := request(h, map[string]any{"azen.key_id": key})
				switch statusOf(err) {
				case 200:
					allowed.Add(1)
				case 429:
					limited.Add(1)
				default:
					t.Errorf("unexpected %v", err)
				}
			}
		}([]*Handler{a, b}[i%2])
	}
	wg.Wait()
	if allowed.Load() != 7 || limited.Load() != 33 {
		t.Fatalf("allowed %d limited %d, want exactly 7 and 33", allowed.Load(), limited.Load())
	}
}

func TestRedisDecisionMatchesLocalMaths(t *testing.T) {
	rs := startRedis(t)
	redisH := provision(t, &Handler{Redis: rs.URL(), Rate: "6/m", Burst: 3})
	localH := provision(t, &Handler{Rate: "6/m", Burst: 3})
	key := "maths-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	for i := 0; i < 4; i++ {
		wr, errR := request(redisH, map[string]any{"azen.key_id": key})
		wl, errL := request(localH, map[string]any{"azen.key_id": key})
		if statusOf(errR) != statusOf(errL) {
			t.Fatalf("request %d: redis %v, local %v", i+1, errR, errL)
		}
		for _, k := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit", "Retry-After"} {
			if wr.Header().Get(k) != wl.Header().Get(k) {
				t.Errorf("request %d: %s redis %q, local %q", i+1, k, wr.Header().Get(k), wl.Header().Get(k))
			}
		}
	}
}

func TestRedisFailureModes(t *testing.T) {
	rs := testenv.StartRedis(t) // private: this test kills it
	local := provision(t, &Handler{Redis: rs.URL(), Rate: "10/h", Burst: 4})
	allow := provision(t, &Handler{Redis: rs.URL() + "/1", Rate: "10/h", Burst: 4, OnRedisError: "allow"})
	deny := provision(t, &Handler{Redis: rs.URL() + "/2", Rate: "10/h", Burst: 4, OnRedisError: "deny"})
	vars := map[string]any{"azen.key_id": "down"}
	for _, h := range []*Handler{local, allow, deny} {
		if _, err := request(h, vars); err != nil {
			t.Fatalf("with Redis up: %v", err)
		}
	}
	rs.Stop()

	// local: this gateway alone keeps limiting, from the bucket as Redis
	// last reported it (3 of burst 4 left; it has seen only itself alive).
	n := 0
	for i := 0; i < 10; i++ {
		if _, err := request(local, vars); err == nil {
			n++
		} else if statusOf(err) != 429 {
			t.Fatalf("local mode: %v", err)
		}
	}
	if n != 3 {
		t.Errorf("local mode admitted %d of 10, want 3", n)
	}
	if !local.state.limiter.BreakerOpen() {
		t.Error("breaker not open after Redis died")
	}
	for i := 0; i < 10; i++ {
		if w, err := request(allow, vars); err != nil || w.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("allow mode: %v %v", err, w.Header())
		}
		if _, err := request(deny, vars); statusOf(err) != 500 {
			t.Fatalf("deny mode: %v, want 500", err)
		}
	}

	rs.Start()
	deadline := time.Now().Add(5 * time.Second)
	for local.state.limiter.BreakerOpen() || deny.state.limiter.BreakerOpen() {
		if time.Now().After(deadline) {
			t.Fatal("breaker did not close after Redis came back")
		}
		_, _ = request(local, vars)
		_, _ = request(deny, vars)
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := request(deny, vars); err != nil {
		t.Fatalf("deny mode after recovery: %v", err)
	}
}

func TestHeartbeatCountsGateways(t *testing.T) {
	rs := startRedis(t)
	h := provision(t, &Handler{Redis: rs.URL() + "/5"})
	c := redis.NewClient(&redis.Options{Addr: rs.Addr(), DB: 5})
	defer c.Close()
	// Another gateway announced itself a moment ago.
	if err := c.ZAdd(context.Background(), limiter.GatewaysKey, redis.Z{Score: float64(time.Now().UnixMilli()), Member: "other"}).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * limiter.HeartbeatInterval)
	for h.state.gateways.Count() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("gateways = %d, want 2", h.state.gateways.Count())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func BenchmarkServeHTTPLocal(b *testing.B) {
	benchServe(b, provisionBench(b, ""))
}

func BenchmarkServeHTTPRedis(b *testing.B) {
	benchServe(b, provisionBench(b, testenv.StartRedis(b).URL()))
}

// BenchmarkServeHTTPRedisConcurrent has 16 requests per CPU in flight, as
// a gateway under load does, so most calls are pipelined.
func BenchmarkServeHTTPRedisConcurrent(b *testing.B) {
	h := provisionBench(b, testenv.StartRedis(b).URL())
	b.SetParallelism(16)
	benchServe(b, h)
}

// BenchmarkServeHTTPRedisQuota is BenchmarkServeHTTPRedis for a key with a
// quota far above the benchmark's load (counted in the same calls, leased
// with the tokens).
func BenchmarkServeHTTPRedisQuota(b *testing.B) {
	benchServe(b, provisionBench(b, testenv.StartRedis(b).URL()), "azen.quota", "1000000000000/month")
}

// BenchmarkServeHTTPLocalOverride is BenchmarkServeHTTPLocal for a key with
// its own rate limit ({azen.rate_limit}), read on every request.
func BenchmarkServeHTTPLocalOverride(b *testing.B) {
	benchServe(b, provisionBench(b, ""), "azen.rate_limit", "60000000/m burst 1000000")
}

// provisionBench provisions a handler with limits far above any benchmark's
// load, on redisURL ("" for the in-process limiter), cleaned up with b.
func provisionBench(b *testing.B, redisURL string) *Handler {
	b.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	h := &Handler{Redis: redisURL, Rate: "1000000/s"}
	if err := h.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Cleanup() })
	return h
}

// benchServe runs requests of the key "bench" through h; vars are more
// placeholders to set (name, value, …).
func benchServe(b *testing.B, h *Handler, vars ...string) {
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", "/", nil)
		repl := caddy.NewReplacer()
		repl.Set("azen.key_id", "bench")
		for i := 0; i+1 < len(vars); i += 2 {
			repl.Set(vars[i], vars[i+1])
		}
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
		w := httptest.NewRecorder()
		for pb.Next() {
			if err := h.ServeHTTP(w, r, next); err != nil {
				b.Fatal(err)
			}
		}
	})
}
