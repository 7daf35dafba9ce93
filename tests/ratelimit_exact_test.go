package tests

import (
	"strconv"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// Burst N admits exactly N requests in total, however the requests are
// spread over gateways and however concurrent they are: the bucket lives in
// Redis and GCRA runs there.
func TestRateLimitExactAcrossGateways(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}
	gws := startGateways(t, 3, rlCaddyfile(headerKeyed("rate 10/h\nburst 10")), env)

	t.Run("sequential", func(t *testing.T) {
		got := fire(t, gws, uniqueKey(t), 25, 1)
		if got[200] != 10 || got[429] != 15 {
			t.Fatalf("statuses %v, want exactly 10×200 and 15×429", got)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		got := fire(t, gws, uniqueKey(t), 90, 24)
		if got[200] != 10 || got[429] != 80 {
			t.Fatalf("statuses %v, want exactly 10×200 and 80×429", got)
		}
	})
	t.Run("keys are independent", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			got := fire(t, gws, uniqueKey(t)+strconv.Itoa(i), 12, 4)
			if got[200] != 10 || got[429] != 2 {
				t.Fatalf("key %d: statuses %v, want 10×200 and 2×429", i, got)
			}
		}
	})
}

// The same exactness on a three-node Redis Cluster, with keys spread over
// the cluster's slots.
func TestRateLimitExactOnRedisCluster(t *testing.T) {
	cluster := testenv.StartRedisCluster(t, 3)
	env := map[string]string{"AZEN_REDIS_URL": cluster.URL(), "UP": startUpstream(t).Addr}
	gws := startGateways(t, 2, rlCaddyfile(headerKeyed("rate 8/h\nburst 8")), env)
	for i := 0; i < 6; i++ {
		key := uniqueKey(t) + "-" + strconv.Itoa(i)
		got := fire(t, gws, key, 30, 10)
		if got[200] != 8 || got[429] != 22 {
			t.Fatalf("key %d: statuses %v, want exactly 8×200 and 22×429", i, got)
		}
	}
}

// Every header of contract §5 on an allowed and a refused response, the 429
// body, and an honest Retry-After: waiting it lets the next request pass.
func TestRateLimitHeadersAndRetryAfter(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}
	// 30/m: one request back every 2 s; burst 2.
	gws := startGateways(t, 2, rlCaddyfile(headerKeyed("rate 30/m\nburst 2")), env)
	key := uniqueKey(t)

	resp := rlGet(t, gws[0].URL, key)
	wantHeaders(t, resp, 200, map[string]string{
		"X-RateLimit-Limit":     "30",
		"X-RateLimit-Remaining": "1",
		"X-RateLimit-Reset":     "2",
		"RateLimit-Policy":      `"default";q=30;w=60`,
		"RateLimit":             `"default";r=1;t=2`,
		"Retry-After":           "",
	})
	resp = rlGet(t, gws[1].URL, key)
	wantHeaders(t, resp, 200, map[string]string{
		"X-RateLimit-Remaining": "0",
		"X-RateLimit-Reset":     "4",
		"RateLimit":             `"default";r=0;t=4`,
	})

	refused := call(t, "GET", gws[0].URL+"/api/v1/memory", withHeader("X-Client", key))
	wantHeaders(t, refused, 429, map[string]string{
		"X-RateLimit-Limit":     "30",
		"X-RateLimit-Remaining": "0",
		"RateLimit-Policy":      `"default";q=30;w=60`,
		"Retry-After":           "2",
	})
	if reset := refused.header.Get("X-RateLimit-Reset"); reset != "4" && reset != "3" {
		t.Errorf("X-RateLimit-Reset on 429 = %q, want 3 or 4", reset)
	}
	e := wantAPIError(t, refused, 429)
	if e.Message != "Rate limit exceeded: 30 requests per minute. Retry in 2 s." {
		t.Errorf("429 message %q", e.Message)
	}

	// Honest Retry-After: after waiting exactly what it said, the next
	// request passes (on either gateway). Repeat to catch rounding errors.
	for i := 0; i < 2; i++ {
		r := rlGet(t, gws[i%2].URL, key)
		if r.status != 429 {
			t.Fatalf("round %d: %d before waiting, want 429", i, r.status)
		}
		wait, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || wait < 1 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
		time.Sleep(time.Duration(wait) * time.Second)
		if r := rlGet(t, gws[(i+1)%2].URL, key); r.status != 200 {
			t.Fatalf("round %d: %d after waiting Retry-After %d s, want 200", i, r.status, wait)
		}
	}
}

func wantHeaders(t *testing.T, resp reply, status int, want map[string]string) {
	t.Helper()
	if resp.status != status {
		t.Fatalf("status %d, want %d", resp.status, status)
	}
	for k, v := range want {
		if got := resp.header.Get(k); got != v {
			t.Errorf("%d response: %s = %q, want %q", status, k, got, v)
		}
	}
}

// key {client_ip} limits anonymous routes per client address.
func TestRateLimitByClientIP(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}
	block := `		azen_ratelimit {
			redis {env.AZEN_REDIS_URL}
			key   {client_ip}
			rate  2/h
		}`
	g := testenv.StartGateway(t, rlCaddyfile(block), env)
	for i, want := range []int{200, 200, 429} {
		if resp := rlGet(t, g.URL, ""); resp.status != want {
			t.Fatalf("request %d: %d, want %d", i+1, resp.status, want)
		}
	}
	keys, err := redisClient(t, rs.URL()).Keys(t.Context(), "azen:rl:*:default:2/3600s/2").Result()
	if err != nil || len(keys) != 1 || keys[0] != "azen:rl:{127.0.0.1}:default:2/3600s/2" {
		t.Fatalf("bucket keys %v (%v), want the one of 127.0.0.1", keys, err)
	}
}
