package tests

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/testenv"
)

// rlCaddyfile wraps an azen_ratelimit block (and anything before it, such
// as azen_auth) in a site that proxies /api/v1/* to {$UP}.
func rlCaddyfile(handlers string) string {
	return `{
	admin {$AZEN_ADMIN_ADDR}
	metrics
}
{$AZEN_SITE_ADDRESS} {
	azen_request_id
	handle /api/v1/* {
` + handlers + `
		reverse_proxy {$UP}
	}
	handle {
		azen_error 404 "Unknown endpoint"
	}
	handle_errors {
		azen_error
	}
}
`
}

// headerKeyed is an azen_ratelimit block keyed by the X-Client header, so
// tests can pick keys freely without azen_auth.
func headerKeyed(extra string) string {
	return `		azen_ratelimit {
			redis {env.AZEN_REDIS_URL}
			key {http.request.header.X-Client}
` + extra + `
		}`
}

// startGateways starts n gateways on one Caddyfile and environment.
func startGateways(t *testing.T, n int, caddyfile string, env map[string]string) []*testenv.Gateway {
	t.Helper()
	gws := make([]*testenv.Gateway, n)
	var wg sync.WaitGroup
	for i := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gws[i] = testenv.StartGateway(t, caddyfile, env)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return gws
}

var rlClient = &http.Client{
	Timeout: 10 * time.Second,
	Transport: &http.Transport{
		MaxIdleConnsPerHost: 64,
	},
}

// rlGet sends GET base+/api/v1/memory with the given X-Client (none when
// blank).
func rlGet(t testing.TB, base, client string) reply {
	t.Helper()
	opts := []callOption{via(rlClient)}
	if client != "" {
		opts = append(opts, withHeader("X-Client", client))
	}
	return call(t, "GET", base+"/api/v1/memory", opts...)
}

// uniqueKey is a bucket owner no other test uses.
func uniqueKey(t *testing.T) string {
	return strings.ReplaceAll(t.Name(), "/", "-") + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// fire sends total requests for client spread round-robin over the
// gateways from conc goroutines, and counts statuses.
func fire(t *testing.T, gws []*testenv.Gateway, client string, total, conc int) map[int]int {
	t.Helper()
	var next atomic.Int64
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				resp := rlGet(t, gws[i%len(gws)].URL, client)
				mu.Lock()
				counts[resp.status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

// waitGatewaysSeen waits until n gateways have announced themselves in
// Redis (so a gateway in local mode divides by n).
func waitGatewaysSeen(t *testing.T, redisURL string, n int64) {
	t.Helper()
	c := redisClient(t, redisURL)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := c.ZCard(context.Background(), "azen:rl:gateways").Result()
		if got == n {
			// Every gateway beats every 2 s; give each a beat that sees all.
			time.Sleep(2500 * time.Millisecond)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d gateways announced in Redis, want %d", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func redisClient(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// metricValue reads one sample of the gateway's Prometheus metrics (0 if
// absent), e.g. `azen_ratelimit_decisions_total{mode="local",outcome="allowed"}`.
func metricValue(t *testing.T, g *testenv.Gateway, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + g.AdminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// leasesHeld is the number of tokens gateways hold in leases of key's
// buckets (the h:<gateway> fields of each bucket's hash: "seq tokens
// expiry", and the quota period for a key with a quota).
func leasesHeld(t *testing.T, c redis.UniversalClient, key string) int {
	t.Helper()
	keys, err := c.Keys(context.Background(), "azen:rl:{"+key+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	now := time.Now().UnixMicro() - 1483228800*1_000_000 // the script's clock
	for _, k := range keys {
		fields, err := c.HGetAll(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range fields {
			if strings.HasPrefix(f, "h:") {
				// An expired hold counts as spent (the record is updated lazily).
				if parts := strings.Fields(v); len(parts) == 3 || len(parts) == 4 {
					n, _ := strconv.Atoi(parts[1])
					exp, _ := strconv.ParseInt(parts[2], 10, 64)
					if exp > now {
						held += n
					}
				}
			}
		}
	}
	return held
}

// waitLeasesReturned waits until no gateway holds tokens of key's buckets:
// unspent leases go back after 100 ms without use.
func waitLeasesReturned(t *testing.T, redisURL, key string) {
	t.Helper()
	c := redisClient(t, redisURL)
	deadline := time.Now().Add(10 * time.Second)
	for leasesHeld(t, c, key) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("gateways still hold %d tokens of %s", leasesHeld(t, c, key), key)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
