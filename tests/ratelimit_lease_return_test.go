package tests

// Returned leases across real gateways (issue 11 items 1 and 5): a gateway
// that goes quiet gives its unspent tokens back to the shared bucket in
// Redis, where the other gateways get them, and a Redis restart does not
// hand out the burst again, with three gateways.

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/testenv"
)

// leaseHold is one gateway's record in a bucket's hash in Redis:
// h:<holder> = "seq tokens expiry[ quota period]", expiry in µs on the
// script's clock. A returned pocket is rewritten as "seq 0 <when>"; a
// pocket left to expire keeps its tokens and expiry until another call
// sees it (and then counts them as spent).
type leaseHold struct {
	holder string
	seq    int64
	tokens int
	expiry int64
}

// bucketState reads a bucket's hash: the holds, and n, the tokens taken
// since the bucket was created, net of returns (expired holds count as
// taken).
func bucketState(t *testing.T, c redis.UniversalClient, bucket string) (holds map[string]leaseHold, taken int) {
	t.Helper()
	fields, err := c.HGetAll(context.Background(), bucket).Result()
	if err != nil {
		t.Fatal(err)
	}
	holds = map[string]leaseHold{}
	for f, v := range fields {
		if f == "n" {
			taken, _ = strconv.Atoi(v)
		}
		h, ok := strings.CutPrefix(f, "h:")
		if !ok {
			continue
		}
		parts := strings.Fields(v)
		if len(parts) < 3 {
			t.Fatalf("hold %s = %q: not \"seq tokens expiry\"", f, v)
		}
		seq, _ := strconv.ParseInt(parts[0], 10, 64)
		tokens, _ := strconv.Atoi(parts[1])
		exp, _ := strconv.ParseInt(parts[2], 10, 64)
		holds[h] = leaseHold{holder: h, seq: seq, tokens: tokens, expiry: exp}
	}
	return holds, taken
}

// scriptNow is Redis's clock as the lease script counts it: µs since
// 2017-01-01.
func scriptNow(t *testing.T, c redis.UniversalClient) int64 {
	t.Helper()
	now, err := c.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now.UnixMicro() - 1483228800*1_000_000
}

// Gateway A is busy on a key, so it leases pockets of tokens; then it goes
// quiet, and its pocket goes back to the bucket about 100 ms later
// (limiter.idleReturn), well before Redis would count it spent at its
// expiry (limiter.holdTTL, 1 s). Then B and C ask for more than is left
// and get all of it: across A, B and C exactly what the GCRA allows
// (burst 900 at 1/h: 900 over the run), at least 98 % of it, and Redis's
// own count of tokens taken equals what the gateways admitted.
//
// A pocket is at most 2 % of the burst divided by the gateways (the
// script's cap), so the 98 % bound alone cannot tell a returned pocket
// from one left to expire; Redis's bookkeeping can: a returned pocket is
// subtracted from the bucket's count of tokens taken (n) and its hold is
// rewritten before its expiry, an expired one is counted as taken.
func TestRateLimitLeaseReturnedToOtherGateways(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}
	// timeout 2s: on a busy machine a call over the default 50 ms would be
	// given up while Redis granted it, and its tokens would expire unused;
	// this test is about returns, not about slow calls.
	const burst = 900
	gws := startGateways(t, 3, rlCaddyfile(headerKeyed("rate 1/h\nburst 900\ntimeout 2s")), env)
	waitGatewaysSeen(t, rs.URL(), 3)
	bc := gws[1:] // gws[0] is A
	key := uniqueKey(t)
	bucket := "azen:rl:{" + key + "}:default:1/3600s/900"
	c := redisClient(t, rs.URL())

	// A is busy until it is seen holding a pocket the moment its clients
	// stop (its last request may have spent the last leased token; then
	// it is busy again, after giving back what it held).
	var admittedA int
	var pocket leaseHold
	for try := 1; pocket.tokens == 0; try++ {
		if try > 10 {
			t.Fatalf("gateway A never held a pocket when it went quiet (%d admitted)", admittedA)
		}
		waitLeasesReturned(t, rs.URL(), key)
		got := runLoad(t, gws[:1], key, 8, 150, nil, nil)
		admittedA += int(got.admitted.Load())
		if got.refused.Load() != 0 || got.other.Load() != 0 {
			t.Fatalf("gateway A: %d refused, %d neither 200 nor 429, with the bucket far from empty", got.refused.Load(), got.other.Load())
		}
		holds, _ := bucketState(t, c, bucket)
		if len(holds) != 1 {
			t.Fatalf("holds of %s: %v, want A's alone", bucket, holds)
		}
		for _, h := range holds {
			pocket = h
		}
	}
	quietSince := time.Now()
	t.Logf("A admitted %d and holds %d tokens (hold %s)", admittedA, pocket.tokens, pocket.holder)

	// A's pocket goes back: its hold drops to 0 tokens before its expiry
	// (a call of A's that was in flight may have extended it: the latest
	// hold seen is the one compared), and Redis counts as taken exactly
	// what A admitted.
	deadline := time.Now().Add(10 * time.Second)
	var back leaseHold
	var taken int
	for {
		holds, n := bucketState(t, c, bucket)
		h := holds[pocket.holder]
		if h.tokens == 0 {
			back, taken = h, n
			break
		}
		pocket = h
		if scriptNow(t, c) > h.expiry {
			t.Fatalf("A's pocket of %d tokens was left to expire (Redis counts it spent) instead of going back", h.tokens)
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway A still holds %d tokens 10 s after going quiet", h.tokens)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("A's pocket went back about %s after its last request", time.Since(quietSince).Round(10*time.Millisecond))
	if back.seq <= pocket.seq || back.expiry >= pocket.expiry {
		t.Fatalf("A's hold went from %+v to %+v: not returned by a call of A's before it expired", pocket, back)
	}
	if taken != admittedA {
		t.Fatalf("Redis counts %d tokens taken after A admitted %d: its pocket was not given back", taken, admittedA)
	}
	if held := leasesHeld(t, c, key); held != 0 {
		t.Fatalf("gateways hold %d tokens after A returned its pocket", held)
	}

	// B and C ask for more than is left, and are admitted all of it.
	left := burst - admittedA
	got := runLoad(t, bc, key, 16, left+600, nil, nil)
	admittedBC := int(got.admitted.Load())
	total := admittedA + admittedBC
	least := burst * 98 / 100
	t.Logf("B and C admitted %d of the %d left (%d refused); %d of %d in all", admittedBC, left, got.refused.Load(), total, burst)
	if total > burst || total < least || got.other.Load() != 0 {
		t.Fatalf("admitted %d in all (A %d, B and C %d, other %d), want %d..%d", total, admittedA, admittedBC, got.other.Load(), least, burst)
	}
	waitLeasesReturned(t, rs.URL(), key)
	if _, n := bucketState(t, c, bucket); n != total {
		t.Fatalf("Redis counts %d tokens taken, the gateways admitted %d: a pocket expired unspent", n, total)
	}
}
