package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// Redis dies under two gateways with on_redis_error local: each keeps
// limiting on its own with half the policy (two gateways were seen alive),
// logs the degradation once, counts it in the metrics, and goes back to the
// shared Redis limit by itself when Redis returns.
func TestRateLimitRedisDownLocalThenRecovers(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}
	gws := startGateways(t, 2, rlCaddyfile(headerKeyed("rate 10/h\nburst 10\ntimeout 50ms")), env)
	a := gws[0]
	waitGatewaysSeen(t, rs.URL(), 2)

	// Distributed: all 12 requests on gateway A still share the burst of 10.
	if got := fire(t, gws[:1], uniqueKey(t), 12, 3); got[200] != 10 {
		t.Fatalf("with Redis up: %v, want 10 admitted", got)
	}
	// The gauges operators look for (issue 13): the breaker is closed, and
	// this gateway sees both.
	if v := metricValue(t, a, `azen_ratelimit_breaker_open`); v != 0 {
		t.Errorf("breaker_open = %v with Redis up, want 0", v)
	}
	if v := metricValue(t, a, `azen_ratelimit_gateways_alive`); v != 2 {
		t.Errorf("gateways_alive = %v, want 2", v)
	}

	rs.Stop()
	key := uniqueKey(t)
	got := fire(t, gws[:1], key, 12, 3)
	if got[200] != 5 || got[429] != 7 {
		t.Fatalf("Redis down, gateway A alone: %v, want its share: 5×200, 7×429", got)
	}
	if got := fire(t, gws[1:], key, 12, 3); got[200] != 5 {
		t.Fatalf("Redis down, gateway B alone: %v, want its share of 5", got)
	}
	waitForLog(t, a.Process, "Redis failing")
	// Many more requests while Redis is down: the degradation is logged once.
	fire(t, gws[:1], uniqueKey(t), 50, 5)
	if n := strings.Count(a.Output(), "Redis failing"); n != 1 {
		t.Errorf("degradation logged %d times, want once", n)
	}
	if v := metricValue(t, a, `azen_ratelimit_decisions_total{mode="local",outcome="limited"}`); v < 7 {
		t.Errorf("local limited decisions metric = %v, want at least 7", v)
	}
	if v := metricValue(t, a, `azen_ratelimit_redis_errors_total`); v < 1 {
		t.Errorf("redis errors metric = %v, want at least 1", v)
	}
	// The breaker keeps the dead Redis from being asked on every request.
	errorsBefore := metricValue(t, a, `azen_ratelimit_redis_errors_total`)
	fire(t, gws[:1], uniqueKey(t), 100, 4)
	if d := metricValue(t, a, `azen_ratelimit_redis_errors_total`) - errorsBefore; d > 10 {
		t.Errorf("%v Redis calls failed for 100 requests: the breaker did not open", d)
	}
	if v := metricValue(t, a, `azen_ratelimit_breaker_open`); v != 1 {
		t.Errorf("breaker_open = %v with Redis down, want 1", v)
	}

	rs.Start()
	// Recovery needs no restart: soon 12 requests on A for a fresh key
	// admit the shared 10 again, not A's local 5.
	for _, g := range gws {
		deadline := time.Now().Add(15 * time.Second)
		for {
			got := fire(t, []*testenv.Gateway{g}, uniqueKey(t), 12, 1)
			if got[200] == 10 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still not distributed after Redis came back: %v", got)
			}
			time.Sleep(200 * time.Millisecond)
		}
		waitForLog(t, g.Process, "Redis is back")
	}
	// And it is the shared limit again: B sees what A spent (once A has
	// given back the tokens it leased and did not spend).
	shared := uniqueKey(t)
	fire(t, gws[:1], shared, 6, 2)
	waitLeasesReturned(t, rs.URL(), shared)
	if got := fire(t, gws[1:], shared, 6, 2); got[200] != 4 {
		t.Fatalf("after recovery B admitted %v of the 4 left, want 4", got)
	}
}

// on_redis_error allow lets requests through without rate-limit headers;
// deny answers a contract 500; both recover when Redis returns.
func TestRateLimitRedisDownAllowAndDeny(t *testing.T) {
	rs := testenv.StartRedis(t)
	up := startUpstream(t).Addr
	allow := testenv.StartGateway(t, rlCaddyfile(headerKeyed("rate 2/h\non_redis_error allow")),
		map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": up})
	deny := testenv.StartGateway(t, rlCaddyfile(headerKeyed("rate 2/h\non_redis_error deny")),
		map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": up})
	key := uniqueKey(t)
	for _, g := range []*testenv.Gateway{allow, deny} {
		if r := rlGet(t, g.URL, key+g.URL); r.status != 200 || r.header.Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("Redis up: %d %v", r.status, r.header)
		}
	}
	rs.Stop()
	for i := 0; i < 5; i++ {
		r := rlGet(t, allow.URL, key)
		if r.status != 200 || r.header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("allow mode, Redis down: %d %v", r.status, r.header)
		}
		e := wantAPIError(t, call(t, "GET", deny.URL+"/api/v1/memory", withHeader("X-Client", key)), 500)
		if strings.Contains(strings.ToLower(e.Message), "redis") {
			t.Errorf("500 message leaks the cause: %q", e.Message)
		}
	}
	if v := metricValue(t, deny, `azen_ratelimit_decisions_total{mode="deny",outcome="error"}`); v < 5 {
		t.Errorf("deny metric = %v", v)
	}
	if v := metricValue(t, allow, `azen_ratelimit_decisions_total{mode="allow",outcome="allowed"}`); v < 5 {
		t.Errorf("allow metric = %v", v)
	}
	rs.Start()
	deadline := time.Now().Add(10 * time.Second)
	for rlGet(t, deny.URL, uniqueKey(t)).status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("deny mode still failing after Redis came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Without a Redis URL the in-process limiter is the default: a warning is
// logged once and limits still hold on the gateway.
func TestRateLimitWithoutRedis(t *testing.T) {
	g := testenv.StartGateway(t, rlCaddyfile(headerKeyed("rate 3/h")), map[string]string{"UP": startUpstream(t).Addr})
	if got := fire(t, []*testenv.Gateway{g}, uniqueKey(t), 6, 3); got[200] != 3 || got[429] != 3 {
		t.Fatalf("in-process limiter: %v, want 3×200 and 3×429", got)
	}
	waitForLog(t, g.Process, "no Redis configured")
	if n := strings.Count(g.Output(), "no Redis configured"); n != 1 {
		t.Errorf("warning logged %d times, want once", n)
	}
}
