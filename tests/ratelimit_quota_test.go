package tests

// Quotas (contract §10) through real binaries: three azen-gateway processes
// with azen_auth in front of azen_ratelimit, real PostgreSQL and Redis,
// keys made with `keys create --quota`. The quota is counted exactly
// across the gateways under concurrency, with cost, refused with the
// contract's message and the second draft-10 policy, changed by `keys
// update` within a second, and kept through a Redis outage and restart.
// (The reset at a UTC day and month boundary is crossed through two
// gateways, on a private Redis whose clock is moved, by
// TestRateLimitQuotaResetAtPeriodBoundary.)

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/azen-sh/gateway/caddy-modules/azenratelimit/limiter"
	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/quota"
	"github.com/azen-sh/gateway/internal/testenv"
)

// quotaCaddyfile: azen_auth, then the limiter far above any test's load
// (keyed by the key id, the default), cost 3 on /api/v1/memory/search.
const quotaCaddyfile = `{
	admin {$AZEN_ADMIN_ADDR}
	metrics
}
{$AZEN_SITE_ADDRESS} {
	azen_request_id
	handle /api/v1/* {
		azen_auth {
			database {env.AZEN_DATABASE_URL}
			redis {env.AZEN_REDIS_URL}
			secret {env.AZEN_GATEWAY_SECRET}
			cache_ttl 30s
			failed_attempts 1000/m
		}
		@search path /api/v1/memory/search
		azen_ratelimit @search {
			redis {env.AZEN_REDIS_URL}
			rate 100000/m
			cost 3
		}
		@other not path /api/v1/memory/search
		azen_ratelimit @other {
			redis {env.AZEN_REDIS_URL}
			rate 100000/m
		}
		reverse_proxy {$UP}
	}
	handle {
		azen_error 404
	}
	handle_errors {
		azen_error
	}
}
`

// qCall sends GET path to gw with key.
func qCall(t *testing.T, gwURL, path, key string) reply {
	t.Helper()
	return call(t, "GET", gwURL+path, via(rlClient), withKey(key))
}

var quotaMessage = regexp.MustCompile(`^Quota exceeded: (\d+) requests? per (day|month)\. Resets in (\d+ d( \d+ h)?|\d+ h( \d+ min)?|\d+ min|\d+ s)\.$`)

// qUsed is the key's counter for the current period in Redis.
func qUsed(t *testing.T, redisURL, keyID string, q apikey.Quota) int64 {
	t.Helper()
	n, _ := redisClient(t, redisURL).Get(context.Background(), quota.Key(keyID, q, time.Now())).Int64()
	return n
}

func TestRateLimitQuota(t *testing.T) {
	pg := testenv.StartPostgres(t)
	rd := testenv.StartRedis(t)
	_, env := signedStack(t, pg, rd)
	gws := startGateways(t, 3, quotaCaddyfile, env)
	for _, gw := range gws { // the key-change subscription starts with the first request
		authCall(t, gw.URL, nil)
	}
	waitForKeySubscribers(t, 3, rd.URL())

	t.Run("exact across three gateways under concurrency", func(t *testing.T) {
		k := testenv.CreateKeyFull(t, env, "--quota", "25/day")
		var next, admitted, refused atomic.Int64
		var mu sync.Mutex
		others := map[int]int{}
		var wg sync.WaitGroup
		for c := 0; c < 40; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= 200 {
						return
					}
					resp := qCall(t, gws[i%3].URL, "/api/v1/memory", k.Key)
					switch resp.status {
					case 200:
						admitted.Add(1)
					case 429:
						refused.Add(1)
						if m := resp.apiError().Message; !quotaMessage.MatchString(m) || !strings.HasPrefix(m, "Quota exceeded: 25 requests per day.") {
							t.Errorf("refusal message %q", m)
						}
					default:
						mu.Lock()
						others[resp.status]++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		if admitted.Load() != 25 || refused.Load() != 175 || len(others) != 0 {
			t.Fatalf("admitted %d, refused %d, other %v: want exactly 25 admitted", admitted.Load(), refused.Load(), others)
		}
		q := apikey.Quota{Limit: 25, Period: apikey.PeriodDay}
		if n := qUsed(t, rd.URL(), k.ID, q); n != 25 {
			t.Errorf("counter %d, want 25", n)
		}
		if got := lcList(t, env, k.ID); got.Quota == nil || got.Quota.Used == nil || *got.Quota.Used != 25 {
			t.Errorf("keys list shows %+v", got.Quota)
		}
	})

	t.Run("cost 3 beside cost 1", func(t *testing.T) {
		k := testenv.CreateKeyFull(t, env, "--quota", "10/day")
		for i := 0; i < 3; i++ {
			if resp := qCall(t, gws[i%3].URL, "/api/v1/memory/search", k.Key); resp.status != 200 {
				t.Fatalf("cost-3 request %d: %d %s", i+1, resp.status, resp.raw)
			}
		}
		// 1 unit left: a cost-3 request is refused for the quota, a cost-1 one passes.
		resp := qCall(t, gws[0].URL, "/api/v1/memory/search", k.Key)
		if resp.status != 429 || !strings.HasPrefix(resp.apiError().Message, "Quota exceeded: 10 requests per day.") {
			t.Fatalf("cost 3 with 1 left: %d %s", resp.status, resp.raw)
		}
		if !strings.Contains(resp.header.Get("RateLimit"), `"quota";r=1;`) {
			t.Errorf("RateLimit %q, want the 1 unit left", resp.header.Get("RateLimit"))
		}
		if resp := qCall(t, gws[1].URL, "/api/v1/memory", k.Key); resp.status != 200 {
			t.Fatalf("cost 1 with 1 left: %d %s", resp.status, resp.raw)
		}
		for _, gw := range gws {
			if resp := qCall(t, gw.URL, "/api/v1/memory", k.Key); resp.status != 429 {
				t.Fatalf("%s: %d with the quota spent", gw.URL, resp.status)
			}
		}
		if n := qUsed(t, rd.URL(), k.ID, apikey.Quota{Limit: 10, Period: apikey.PeriodDay}); n != 10 {
			t.Errorf("counter %d, want 10", n)
		}
	})

	t.Run("the message and the headers", func(t *testing.T) {
		k := testenv.CreateKeyFull(t, env, "--quota", "2/month")
		q := apikey.Quota{Limit: 2, Period: apikey.PeriodMonth}
		start, end := q.Window(time.Now())
		window := strconv.FormatInt(int64(end.Sub(start)/time.Second), 10)
		for i := 0; i < 2; i++ {
			resp := qCall(t, gws[i].URL, "/api/v1/memory", k.Key)
			if resp.status != 200 {
				t.Fatalf("request %d: %d", i+1, resp.status)
			}
			if got, want := resp.header.Get("RateLimit-Policy"), `"default";q=100000;w=60, "quota";q=2;w=`+window; got != want {
				t.Errorf("RateLimit-Policy %q, want %q", got, want)
			}
			m := regexp.MustCompile(`^"default";r=\d+;t=\d+, "quota";r=(\d+);t=(\d+)$`).FindStringSubmatch(resp.header.Get("RateLimit"))
			if m == nil || m[1] != strconv.Itoa(1-i) {
				t.Fatalf("request %d: RateLimit %q, want %d left of the quota", i+1, resp.header.Get("RateLimit"), 1-i)
			}
			if reset, _ := strconv.ParseInt(m[2], 10, 64); absDiff(reset, int64(time.Until(end)/time.Second)) > 2 {
				t.Errorf("quota t=%d, want the seconds until the month ends (%s)", reset, time.Until(end))
			}
			if resp.header.Get("X-RateLimit-Limit") != "100000" {
				t.Errorf("X-RateLimit-Limit %q: the legacy fields stay the rate limit's", resp.header.Get("X-RateLimit-Limit"))
			}
		}
		resp := qCall(t, gws[2].URL, "/api/v1/memory", k.Key)
		resetIn := time.Until(end)
		e := wantAPIError(t, resp, 429)
		if e.Status != "rate_limited" || e.Code != 429 {
			t.Errorf("error %+v", e)
		}
		// The words are the time to the month's end, rounded up.
		if want := []string{limiter.DurationWords(resetIn), limiter.DurationWords(resetIn - 2*time.Second)}; e.Message != "Quota exceeded: 2 requests per month. Resets in "+want[0]+"." &&
			e.Message != "Quota exceeded: 2 requests per month. Resets in "+want[1]+"." {
			t.Errorf("message %q, want the reset in %q", e.Message, want[0])
		}
		ra, err := strconv.ParseInt(resp.header.Get("Retry-After"), 10, 64)
		if err != nil || absDiff(ra, int64(resetIn/time.Second)) > 2 {
			t.Errorf("Retry-After %q, want the seconds until the month ends (%s)", resp.header.Get("Retry-After"), resetIn)
		}
		if !strings.HasSuffix(resp.header.Get("RateLimit"), `, "quota";r=0;t=`+resp.header.Get("Retry-After")) &&
			!strings.Contains(resp.header.Get("RateLimit"), `"quota";r=0;`) {
			t.Errorf("RateLimit %q on the refusal", resp.header.Get("RateLimit"))
		}
		if v := metricValue(t, gws[2], "azen_ratelimit_quota_exceeded_total"); v < 1 {
			t.Errorf("quota_exceeded_total = %v", v)
		}
	})

	t.Run("the counter names the period and expires a day after it", func(t *testing.T) {
		// The period boundary itself is crossed in the limiter's tests; here
		// the gateways use the counter of the current UTC day, which
		// refuses until midnight and lives a day longer, while the next
		// day's counter is untouched.
		k := testenv.CreateKeyFull(t, env, "--quota", "5/day")
		q := apikey.Quota{Limit: 5, Period: apikey.PeriodDay}
		c := redisClient(t, rd.URL())
		now := time.Now()
		today, tomorrow := quota.Key(k.ID, q, now), quota.Key(k.ID, q, now.AddDate(0, 0, 1))
		if resp := qCall(t, gws[0].URL, "/api/v1/memory", k.Key); resp.status != 200 {
			t.Fatalf("first request: %d", resp.status)
		}
		if ttl := c.PTTL(context.Background(), today).Val(); absDiff(int64(ttl/time.Second), int64(quota.ExpireAt(q, now).Sub(now)/time.Second)) > 2 {
			t.Errorf("%s expires in %s, want a day after the period (%s)", today, ttl, quota.ExpireAt(q, now).Sub(now))
		}
		c.Set(context.Background(), today, 5, time.Hour) // spent by others
		for _, gw := range gws {
			resp := qCall(t, gw.URL, "/api/v1/memory", k.Key)
			ra, _ := strconv.ParseInt(resp.header.Get("Retry-After"), 10, 64)
			if midnight := int64(quota.ResetIn(q, time.Now()) / time.Second); resp.status != 429 || absDiff(ra, midnight) > 2 {
				t.Fatalf("%s: %d, Retry-After %d, want 429 until midnight UTC (%d s)", gw.URL, resp.status, ra, midnight)
			}
		}
		if n, err := c.Exists(context.Background(), tomorrow).Result(); err != nil || n != 0 {
			t.Errorf("%s exists (%d, %v)", tomorrow, n, err)
		}
	})

	t.Run("keys update changes the quota on every gateway within 1 s", func(t *testing.T) {
		k := testenv.CreateKeyFull(t, env, "--quota", "3/day")
		for i := 0; i < 3; i++ {
			if resp := qCall(t, gws[i].URL, "/api/v1/memory", k.Key); resp.status != 200 {
				t.Fatalf("request %d: %d", i+1, resp.status)
			}
		}
		for _, gw := range gws {
			if resp := qCall(t, gw.URL, "/api/v1/memory", k.Key); resp.status != 429 {
				t.Fatalf("%s: %d with 3 of 3 spent", gw.URL, resp.status)
			}
		}
		testenv.Command(t, env, "keys", "update", k.ID, "--quota", "5/day")
		admitted := 0
		for i, gw := range gws[:2] {
			took := lcEventually(t, gw.URL, "GET", k.Key, time.Second, "admitting under 5/day", func(r reply) bool {
				return r.status == 200 && strings.Contains(r.header.Get("RateLimit-Policy"), `"quota";q=5;`)
			})
			admitted++
			t.Logf("gateway %d applied the new quota after %s", i+1, took)
		}
		resp := qCall(t, gws[2].URL, "/api/v1/memory", k.Key)
		if resp.status != 429 || !strings.HasPrefix(resp.apiError().Message, "Quota exceeded: 5 requests per day.") {
			t.Fatalf("third gateway after 5 of 5: %d %s", resp.status, resp.raw)
		}
		if n := qUsed(t, rd.URL(), k.ID, apikey.Quota{Limit: 5, Period: apikey.PeriodDay}); n != 5 || admitted != 2 {
			t.Errorf("counter %d after %d more admitted, want 5", n, admitted)
		}
		testenv.Command(t, env, "keys", "update", k.ID, "--quota", "none")
		for _, gw := range gws {
			lcEventually(t, gw.URL, "GET", k.Key, time.Second, "admitting without a quota", func(r reply) bool {
				return r.status == 200 && !strings.Contains(r.header.Get("RateLimit-Policy"), "quota")
			})
		}
	})

	// Each gateway admits its share of what it last saw left, divided by
	// the 3 gateways.
	spendShares := func(t *testing.T, key string, want []int) {
		t.Helper()
		for i, gw := range gws {
			n := 0
			for j := 0; j < 10; j++ {
				resp := qCall(t, gw.URL, "/api/v1/memory", key)
				switch {
				case resp.status == 200:
					n++
				case resp.status != 429 || !strings.HasPrefix(resp.apiError().Message, "Quota exceeded: 30 requests per day."):
					t.Fatalf("gateway %d, Redis down: %d %s", i+1, resp.status, resp.raw)
				}
			}
			if n != want[i] {
				t.Errorf("gateway %d admitted %d while Redis was down, want its share of %d", i+1, n, want[i])
			}
		}
	}
	// 12 requests, 4 per gateway in turn: the gateways last saw 10, 11 and
	// 12 units used, so their shares are floor(20/3), floor(19/3) and
	// floor(18/3): 6 each.
	spendTwelve := func(t *testing.T, key string) {
		t.Helper()
		for i := 0; i < 12; i++ {
			if resp := qCall(t, gws[i%3].URL, "/api/v1/memory", key); resp.status != 200 {
				t.Fatalf("request %d: %d", i+1, resp.status)
			}
		}
	}
	q30 := apikey.Quota{Limit: 30, Period: apikey.PeriodDay}

	t.Run("Redis frozen, then back with its data: never more than the quota", func(t *testing.T) {
		waitGatewaysSeen(t, rd.URL(), 3)
		k := testenv.CreateKeyFull(t, env, "--quota", "30/day")
		spendTwelve(t, k.Key)
		pid := redisPID(t, rd.URL())
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		spendShares(t, k.Key, []int{6, 6, 6})
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		// What local mode admitted is charged once (12 + 18), however many
		// calls carried it. Calls that timed out while Redis was frozen run
		// when it resumes: what they grant is counted, never used (at most
		// the 3 calls that open each breaker and a probe a second).
		deadline := time.Now().Add(15 * time.Second)
		for qUsed(t, rd.URL(), k.ID, q30) < 30 {
			if time.Now().After(deadline) {
				t.Fatalf("counter %d after Redis resumed, want at least 30", qUsed(t, rd.URL(), k.ID, q30))
			}
			time.Sleep(100 * time.Millisecond)
		}
		for i := 0; i < 9; i++ {
			if resp := qCall(t, gws[i%3].URL, "/api/v1/memory", k.Key); resp.status != 429 {
				t.Fatalf("request %d after the outage: %d, the quota of 30 is spent", i+1, resp.status)
			}
		}
		if used := qUsed(t, rd.URL(), k.ID, q30); used > 30+3*4 {
			t.Errorf("counter %d: more than the late calls explain", used)
		} else {
			t.Logf("30 admitted of a quota of 30; counter %d", used)
		}
	})

	// Last: it stops Redis.
	t.Run("Redis down, then restarted empty", func(t *testing.T) {
		waitGatewaysSeen(t, rd.URL(), 3)
		k := testenv.CreateKeyFull(t, env, "--quota", "30/day")
		q := q30
		spendTwelve(t, k.Key)
		rd.Stop()
		spendShares(t, k.Key, []int{6, 6, 6})
		rd.Start() // empty: the counter is lost
		// Each gateway charges what it admitted; the counter is recreated
		// from the first caller's last view (10, 11 or 12) plus the 18.
		deadline := time.Now().Add(15 * time.Second)
		for qUsed(t, rd.URL(), k.ID, q) < 28 {
			if time.Now().After(deadline) {
				t.Fatalf("counter %d after Redis came back, want 28 to 30", qUsed(t, rd.URL(), k.ID, q))
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Second)
		used := qUsed(t, rd.URL(), k.ID, q)
		if used < 28 || used > 30 {
			t.Fatalf("counter %d, want 28 to 30", used)
		}
		// What the counter lost (at most what others admitted after the
		// first caller's last answer: 2) may be admitted again, no more.
		more := 0
		for i := 0; i < 9; i++ {
			if resp := qCall(t, gws[i%3].URL, "/api/v1/memory", k.Key); resp.status == 200 {
				more++
			}
		}
		if total := 12 + 18 + more; total > 32 || int64(more) != 30-used {
			t.Fatalf("%d admitted in all (%d after the restart, counter %d), want at most 32", total, more, used)
		}
		t.Logf("counter %d after the restart; %d admitted in all of a quota of 30", used, 12+18+more)
	})
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// On a 3-node Redis Cluster: the key's bucket and quota counter share its
// hash tag, so the one script call works there too, exactly, across two
// gateways.
func TestRateLimitQuotaOnRedisCluster(t *testing.T) {
	cluster := testenv.StartRedisCluster(t, 3)
	secret := testenv.GatewaySecret()
	up := startUpstream(t, verifying(secret))
	env := map[string]string{
		"AZEN_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "azen.db"),
		"AZEN_REDIS_URL":      cluster.URL(),
		"AZEN_GATEWAY_SECRET": secret,
		"UP":                  up.Addr,
	}
	gws := startGateways(t, 2, quotaCaddyfile, env)
	for k := 0; k < 3; k++ { // keys land in different slots
		key := testenv.CreateKeyFull(t, env, "--quota", "12/day")
		var admitted, other atomic.Int64
		var wg sync.WaitGroup
		for c := 0; c < 10; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 3; i++ {
					resp := qCall(t, gws[(c+i)%2].URL, "/api/v1/memory", key.Key)
					switch resp.status {
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
		if admitted.Load() != 12 || other.Load() != 0 {
			t.Fatalf("key %d: %d admitted (%d neither 200 nor 429), want exactly 12", k+1, admitted.Load(), other.Load())
		}
	}
}
