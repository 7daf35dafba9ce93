package tests

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// costlyBlock limits /api/v1/memory/search at cost 3 and every other path
// at cost 1, both from the same bucket (keyed by X-Client).
func costlyBlock(policy string) string {
	return `		@costly path /api/v1/memory/search
		azen_ratelimit @costly {
			redis {env.AZEN_REDIS_URL}
			key {http.request.header.X-Client}
			` + policy + `
			cost 3
		}
		@cheap not path /api/v1/memory/search
		azen_ratelimit @cheap {
			redis {env.AZEN_REDIS_URL}
			key {http.request.header.X-Client}
			` + policy + `
		}`
}

// rlGetPath is rlGet for another path.
func rlGetPath(t testing.TB, base, path, client string) reply {
	t.Helper()
	return call(t, "GET", base+path, via(rlClient), withHeader("X-Client", client))
}

// load sends requests for client round-robin over gws from conc goroutines
// until stop is closed or total requests were sent (total 0: no limit), and
// returns the units admitted (cost 3 for paths under search).
type loadResult struct {
	admitted, refused, other atomic.Int64
	units                    atomic.Int64
	first, last              atomic.Int64 // unix ns
}

func runLoad(t *testing.T, gws []*testenv.Gateway, client string, conc, total int, stop <-chan struct{}, path func(i int) string) *loadResult {
	t.Helper()
	res := &loadResult{}
	res.first.Store(time.Now().UnixNano())
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if stop != nil {
					select {
					case <-stop:
						return
					default:
					}
				}
				i := int(next.Add(1)) - 1
				if total > 0 && i >= total {
					return
				}
				p := "/api/v1/memory"
				if path != nil {
					p = path(i)
				}
				resp := rlGetPath(t, gws[i%len(gws)].URL, p, client)
				switch resp.status {
				case 200:
					res.admitted.Add(1)
					if p == "/api/v1/memory/search" {
						res.units.Add(3)
					} else {
						res.units.Add(1)
					}
				case 429:
					res.refused.Add(1)
				default:
					res.other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res.last.Store(time.Now().UnixNano())
	return res
}

func (r *loadResult) elapsed() time.Duration {
	return time.Duration(r.last.Load() - r.first.Load())
}

// allowedBy is the most a policy of burst b and rate per second lets
// through in d from a full bucket: b + rate·d, plus one for the instant.
func allowedBy(b int, perSecond float64, d time.Duration) int {
	return b + int(math.Floor(perSecond*d.Seconds())) + 1
}

// Three gateways, one Redis, leases on: bursts under concurrency, steady
// overload, and cost 3 beside cost 1 never admit more than the policy, and
// admit at least 98 % of it.
func TestRateLimitLeasesExactAcrossThreeGateways(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}

	t.Run("burst under concurrency", func(t *testing.T) {
		gws := startGateways(t, 3, rlCaddyfile(headerKeyed("rate 600/h\nburst 300")), env)
		got := runLoad(t, gws, uniqueKey(t), 30, 1500, nil, nil)
		most := allowedBy(300, 600.0/3600, got.elapsed())
		if n := int(got.admitted.Load()); n > most || n < 294 || got.other.Load() != 0 {
			t.Fatalf("admitted %d (refused %d, other %d) in %s, want 294..%d", n, got.refused.Load(), got.other.Load(), got.elapsed(), most)
		}
		t.Logf("admitted %d of at most %d in %s", got.admitted.Load(), most, got.elapsed())
	})
	t.Run("cost 3 beside cost 1", func(t *testing.T) {
		gws := startGateways(t, 3, rlCaddyfile(costlyBlock("rate 600/h\nburst 300")), env)
		got := runLoad(t, gws, uniqueKey(t), 30, 600, nil, func(i int) string {
			if i%3 == 0 {
				return "/api/v1/memory/search"
			}
			return "/api/v1/memory"
		})
		most := allowedBy(300, 600.0/3600, got.elapsed())
		// A cost-3 request may be refused while 1 or 2 units are left.
		if n := int(got.units.Load()); n > most || n < 294-2 || got.other.Load() != 0 {
			t.Fatalf("admitted %d units (%d requests) in %s, want 292..%d", n, got.admitted.Load(), got.elapsed(), most)
		}
	})
	t.Run("steady overload with refill", func(t *testing.T) {
		// 20 per second, burst 20: over ~3 s of overload the refill is most
		// of what is allowed.
		gws := startGateways(t, 3, rlCaddyfile(headerKeyed("rate 1200/m\nburst 20")), env)
		stop := make(chan struct{})
		time.AfterFunc(3*time.Second, func() { close(stop) })
		got := runLoad(t, gws, uniqueKey(t), 24, 0, stop, nil)
		most := allowedBy(20, 20, got.elapsed())
		// The lower bound leaves out the last 100 ms, when a token may come
		// back after the last request was sent.
		least := int(math.Floor(0.98 * float64(20+20*(got.elapsed()-100*time.Millisecond).Seconds())))
		if n := int(got.admitted.Load()); n > most || n < least || got.other.Load() != 0 {
			t.Fatalf("admitted %d (refused %d) in %s, want %d..%d", n, got.refused.Load(), got.elapsed(), least, most)
		}
		t.Logf("admitted %d, allowed at most %d, refused %d, in %s", got.admitted.Load(), most, got.refused.Load(), got.elapsed())
	})
}

// Tiers and per-key overrides with real keys, three gateways, concurrent
// clients: each key's own policy, exactly.
func TestRateLimitLeasesTiersAndOverridesUnderConcurrency(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{
		"AZEN_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "azen.db"),
		"AZEN_REDIS_URL":      rs.URL(),
		"AZEN_GATEWAY_SECRET": testenv.GatewaySecret(),
		"UP":                  startUpstream(t).Addr,
	}
	block := `		azen_auth {
			database {env.AZEN_DATABASE_URL}
			redis    {env.AZEN_REDIS_URL}
			secret   {env.AZEN_GATEWAY_SECRET}
		}
		azen_ratelimit {
			redis {env.AZEN_REDIS_URL}
			rate  100/h
			tier pro 600/h burst 250
		}`
	gws := startGateways(t, 3, rlCaddyfile(block), env)
	_, plain := testenv.CreateKey(t, env)
	_, pro := testenv.CreateKey(t, env, "--tier", "pro")
	_, override := testenv.CreateKey(t, env, "--tier", "pro", "--rate", "60/h", "--burst", "150")
	for _, tt := range []struct {
		name  string
		key   string
		burst int
		rate  float64 // per second
	}{
		{"default 100/h burst 100", plain, 100, 100.0 / 3600},
		{"tier pro 600/h burst 250", pro, 250, 600.0 / 3600},
		{"override 60/h burst 150", override, 150, 60.0 / 3600},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var admitted, other atomic.Int64
			var next atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < 24; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := int(next.Add(1)); i <= 3*tt.burst; i = int(next.Add(1)) {
						switch keyGet(t, gws[i%3].URL, "/api/v1/memory", tt.key).status {
						case 200:
							admitted.Add(1)
						case 429:
						default:
							other.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			most := allowedBy(tt.burst, tt.rate, time.Since(start))
			least := int(math.Ceil(0.98 * float64(tt.burst)))
			if n := int(admitted.Load()); n > most || n < least || other.Load() != 0 {
				t.Fatalf("admitted %d (other %d), want %d..%d", n, other.Load(), least, most)
			}
		})
	}
}

// With leases the headers stay honest: on one gateway, X-RateLimit-Remaining
// counts down one by one whether a request spent a leased token or asked
// Redis, and the draft-10 field agrees; once empty, Retry-After is at least
// what the bucket needs.
func TestRateLimitLeaseHeaders(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}
	g := testenv.StartGateway(t, rlCaddyfile(headerKeyed("rate 1/h\nburst 500")), env)
	key := uniqueKey(t)
	for i := 1; i <= 500; i++ {
		resp := rlGet(t, g.URL, key)
		if resp.status != 200 {
			t.Fatalf("request %d: %d", i, resp.status)
		}
		rem, _ := strconv.Atoi(resp.header.Get("X-RateLimit-Remaining"))
		if rem != 500-i {
			t.Fatalf("request %d: remaining %d, want %d", i, rem, 500-i)
		}
		if got := resp.header.Get("RateLimit"); got != `"default";r=`+strconv.Itoa(rem)+`;t=`+resp.header.Get("X-RateLimit-Reset") {
			t.Fatalf("request %d: RateLimit %q disagrees with X-RateLimit-* (%d)", i, got, rem)
		}
	}
	var refused *reply
	for i := 0; i < 10 && refused == nil; i++ {
		if r := rlGet(t, g.URL, key); r.status == 429 {
			refused = &r
		}
	}
	if refused == nil {
		t.Fatal("never refused after spending the burst")
	}
	if wait, err := strconv.Atoi(refused.header.Get("Retry-After")); err != nil || wait < 1 {
		t.Fatalf("Retry-After %q", refused.header.Get("Retry-After"))
	}
}

// A Redis restart (its data lost) does not hand out the burst again: the
// bucket starts from what the gateways last saw of it, and pockets granted
// by the lost bucket are not spent twice. With two and with three gateways.
func TestRateLimitLeasesAcrossRedisRestart(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d gateways", n), func(t *testing.T) { leasesAcrossRedisRestart(t, n) })
	}
}

func leasesAcrossRedisRestart(t *testing.T, n int) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}
	gws := startGateways(t, n, rlCaddyfile(costlyBlock("rate 1/h\nburst 400")), env)
	key := uniqueKey(t)
	before := runLoad(t, gws, key, 4*n, 600, nil, nil)
	if got := before.admitted.Load(); got < 392 || got > 401 {
		t.Fatalf("before the restart: admitted %d of 400", got)
	}
	rs.Restart()
	// Cost 3 requests: the gateways' last refusals (for cost 1) would
	// otherwise be answered without asking Redis. Repeat until every
	// gateway decides with Redis again (their breakers may have opened).
	deadline := time.Now().Add(15 * time.Second)
	sample := int64(20 * n)
	var after int64
	for {
		local := localDecisions(t, gws)
		shared := sharedDecisions(t, gws)
		got := runLoad(t, gws, key, 2*n, int(sample), nil, func(int) string { return "/api/v1/memory/search" })
		after += got.units.Load()
		if localDecisions(t, gws) == local && sharedDecisions(t, gws)-shared == float64(sample) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateways did not go back to Redis after its restart")
		}
		time.Sleep(200 * time.Millisecond)
	}
	bucket := "azen:rl:{" + key + "}:default:1/3600s/400"
	if got, _ := redisClient(t, rs.URL()).Exists(t.Context(), bucket).Result(); got != 1 {
		t.Fatal("the restarted Redis has no bucket: the requests were not decided there")
	}
	// 401: allowedBy's instant (one token may refill during the run).
	if total := before.units.Load() + after; total > 401 {
		t.Fatalf("admitted %d units before and %d after a Redis restart: %d of a burst of 400", before.units.Load(), after, total)
	}
	t.Logf("admitted %d units before the restart and %d after, of a burst of 400", before.units.Load(), after)
}

// localDecisions and sharedDecisions add up the gateways' decision
// counters by mode.
func localDecisions(t *testing.T, gws []*testenv.Gateway) float64 {
	n := 0.0
	for _, g := range gws {
		n += metricValue(t, g, `azen_ratelimit_decisions_total{mode="local",outcome="allowed"}`) +
			metricValue(t, g, `azen_ratelimit_decisions_total{mode="local",outcome="limited"}`)
	}
	return n
}

func sharedDecisions(t *testing.T, gws []*testenv.Gateway) float64 {
	n := 0.0
	for _, g := range gws {
		n += metricValue(t, g, `azen_ratelimit_decisions_total{mode="redis",outcome="allowed"}`) +
			metricValue(t, g, `azen_ratelimit_decisions_total{mode="redis",outcome="limited"}`)
	}
	return n
}
