package tests

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/testenv"
)

// TestRateLimitRetryAfterIsHonestWithLeases: the same rule as
// TestRateLimitHeadersAndRetryAfter ("wait exactly Retry-After, then the
// request passes"), on a bucket large enough that both gateways lease
// tokens while it drains. A 429 read on one gateway, while the other may
// still have held a pocket, never names a time before the request passes
// on the other gateway.
func TestRateLimitRetryAfterIsHonestWithLeases(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}
	gws := startGateways(t, 2, rlCaddyfile(headerKeyed("rate 60/m\nburst 300\ntimeout 1s")), env)
	key := uniqueKey(t)

	// Drain the bucket from both gateways at once: 16 clients, 600 requests
	// for 300 tokens (plus what refills meanwhile).
	c := redisClient(t, rs.URL())
	before := scriptCalls(t, c)
	got := fire(t, gws, key, 600, 16)
	if got[200] < 300 || got[200] > 330 || got[429] == 0 || got[200]+got[429] != 600 {
		t.Fatalf("draining 300 of burst: %v", got)
	}
	// Leases were in play: fewer script calls than admitted requests.
	if calls := scriptCalls(t, c) - before; calls >= int64(got[200]) {
		t.Fatalf("%d script calls for %d admitted requests: no token was leased", calls, got[200])
	}
	for i := 0; i < 3; i++ {
		r := rlGet(t, gws[i%2].URL, key)
		if r.status != 429 {
			t.Fatalf("round %d: %d before waiting, want 429", i, r.status)
		}
		wait, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || wait < 1 {
			t.Fatalf("round %d: Retry-After %q", i, r.header.Get("Retry-After"))
		}
		time.Sleep(time.Duration(wait) * time.Second)
		if r := rlGet(t, gws[(i+1)%2].URL, key); r.status != 200 {
			t.Fatalf("round %d: %d on the other gateway after waiting Retry-After %d s, want 200", i, r.status, wait)
		}
	}
}

var scriptCallsRE = regexp.MustCompile(`cmdstat_(?:evalsha|eval):calls=(\d+)`)

// scriptCalls is how many Lua scripts Redis has run (INFO commandstats).
func scriptCalls(t *testing.T, c redis.UniversalClient) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, m := range scriptCallsRE.FindAllStringSubmatch(info, -1) {
		v, _ := strconv.ParseInt(m[1], 10, 64)
		n += v
	}
	return n
}
