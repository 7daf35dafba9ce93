package tests

// The quota's reset at a UTC period boundary, crossed through real
// gateways (issue 12 item 6): a quota's period is Redis's (the lease
// script reads Redis TIME), so the test moves Redis's clock, and only
// Redis's, to just before a UTC day and then a UTC month boundary
// (testenv.FakeClock, an LD_PRELOAD shim in the private redis-server); the
// gateways, PostgreSQL and the test run on the machine's clock, unmodified.

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/quota"
	"github.com/azen-sh/gateway/internal/testenv"
)

// quotaItem is the quota's item of the RateLimit field: r left, t seconds
// to the period's end.
var quotaItem = regexp.MustCompile(`"quota";r=(\d+);t=(\d+)$`)

// quotaLeft reads r and t of the quota's RateLimit item.
func quotaLeft(t *testing.T, r reply) (left, reset int64) {
	t.Helper()
	m := quotaItem.FindStringSubmatch(r.header.Get("RateLimit"))
	if m == nil {
		t.Fatalf("RateLimit %q has no quota item", r.header.Get("RateLimit"))
	}
	left, _ = strconv.ParseInt(m[1], 10, 64)
	reset, _ = strconv.ParseInt(m[2], 10, 64)
	return left, reset
}

// redisNow is Redis's clock.
func redisNow(t *testing.T, c redis.UniversalClient) time.Time {
	t.Helper()
	now, err := c.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now.UTC()
}

// setRedisClock moves Redis's clock to at and waits until Redis reads it.
func setRedisClock(t *testing.T, clock *testenv.FakeClock, c redis.UniversalClient, at time.Time) {
	t.Helper()
	clock.SetNow(at)
	deadline := time.Now().Add(5 * time.Second)
	for {
		now := redisNow(t, c)
		if !now.Before(at) && now.Before(at.Add(5*time.Second)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis reads %s, want %s: its clock did not move (is the clock shim loaded?)", now, at)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitRedisPast waits until Redis's clock is past at.
func waitRedisPast(t *testing.T, c redis.UniversalClient, at time.Time) {
	t.Helper()
	for wait := time.Now().Add(time.Minute); redisNow(t, c).Before(at); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("Redis's clock did not reach %s within a minute", at)
		}
	}
}

// Two gateways, a key with a daily quota and one with a monthly quota.
// Just before a UTC day boundary (not a month's) both are spent and
// refused on both gateways with the quota message until the boundary;
// Redis's clock crosses it; the next request passes on both gateways with
// the new day's headers, while the monthly key stays refused (a new day is
// not a new month). Then just before a UTC month boundary: the monthly key
// is still refused, and after the boundary passes on both gateways with
// the new month's headers.
func TestRateLimitQuotaResetAtPeriodBoundary(t *testing.T) {
	pg := testenv.StartPostgres(t)
	clock := testenv.NewFakeClock(t)
	rd := testenv.StartRedisWithClock(t, clock)
	_, env := signedStack(t, pg, rd)
	gws := startGateways(t, 2, quotaCaddyfile, env)
	for _, gw := range gws {
		authCall(t, gw.URL, nil)
	}
	waitForKeySubscribers(t, 2, rd.URL())
	c := redisClient(t, rd.URL())

	daily := testenv.CreateKeyFull(t, env, "--quota", "3/day")
	monthly := testenv.CreateKeyFull(t, env, "--quota", "2/month")
	dayQ := apikey.Quota{Limit: 3, Period: apikey.PeriodDay}
	monthQ := apikey.Quota{Limit: 2, Period: apikey.PeriodMonth}

	// The next UTC midnight that does not start a month, and the start of
	// the month after it: both ahead, in that order.
	_, dayEnd := dayQ.Window(time.Now())
	if dayEnd.Day() == 1 {
		dayEnd = dayEnd.AddDate(0, 0, 1)
	}
	_, monthEnd := monthQ.Window(dayEnd)

	// lead is how far before a boundary Redis's clock is set: room for a
	// few requests on a busy machine, checked below.
	const lead = 20 * time.Second

	// spend admits the quota's n units, alternating gateways.
	spend := func(t *testing.T, k testenv.CreatedKey, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if r := qCall(t, gws[i%2].URL, "/api/v1/memory", k.Key); r.status != 200 {
				t.Fatalf("request %d of %d: %s", i+1, n, r)
			}
		}
	}
	// refused checks that both gateways refuse k for its quota, with the
	// message, until end (as Redis tells the time).
	refused := func(t *testing.T, k testenv.CreatedKey, prefix string, end time.Time) {
		t.Helper()
		for i, gw := range gws {
			r := qCall(t, gw.URL, "/api/v1/memory", k.Key)
			if msg := r.apiError().Message; r.status != 429 || !quotaMessage.MatchString(msg) || !strings.HasPrefix(msg, prefix) {
				t.Fatalf("gateway %d: %s, want 429 %q", i+1, r, prefix+" Resets in …")
			}
			until := end.Sub(redisNow(t, c))
			ra, err := strconv.ParseInt(r.header.Get("Retry-After"), 10, 64)
			if err != nil || ra < int64(until/time.Second)-2 || ra > int64(until/time.Second)+2 {
				t.Errorf("gateway %d: Retry-After %q, want the %s to %s on Redis's clock", i+1, r.header.Get("Retry-After"), until.Round(time.Second), end)
			}
			if left, _ := quotaLeft(t, r); left != 0 {
				t.Errorf("gateway %d: %d of the quota left on a refusal", i+1, left)
			}
		}
	}
	// passes checks that both gateways admit k once more each after the
	// boundary, with the new period's headers: want left after each, the
	// period's length w, and t its whole length (less the seconds since it
	// began).
	passes := func(t *testing.T, k testenv.CreatedKey, q apikey.Quota, start time.Time, want []int64) {
		t.Helper()
		_, end := q.Window(start)
		w := int64(end.Sub(start) / time.Second)
		for i, gw := range gws {
			r := qCall(t, gw.URL, "/api/v1/memory", k.Key)
			if r.status != 200 {
				t.Fatalf("gateway %d after the boundary: %s, want the quota reset", i+1, r)
			}
			if p := r.header.Get("RateLimit-Policy"); !strings.HasSuffix(p, `, "quota";q=`+strconv.FormatInt(q.Limit, 10)+`;w=`+strconv.FormatInt(w, 10)) {
				t.Errorf("gateway %d: RateLimit-Policy %q, want the new period of %d s", i+1, p, w)
			}
			left, reset := quotaLeft(t, r)
			since := int64(redisNow(t, c).Sub(start)/time.Second) + 1
			if left != want[i] || reset > w || reset < w-since-2 {
				t.Errorf("gateway %d: quota r=%d t=%d, want r=%d and t=%d less the %d s since the period began", i+1, left, reset, want[i], w, since)
			}
		}
		if n, _ := c.Get(context.Background(), quota.Key(k.ID, q, start)).Int64(); n != int64(len(want)) {
			t.Errorf("the new period's counter is %d, want %d", n, len(want))
		}
	}
	// beforeBoundary checks that what was to happen before end did.
	beforeBoundary := func(t *testing.T, end time.Time) {
		t.Helper()
		if now := redisNow(t, c); !now.Before(end.Add(-2 * time.Second)) {
			t.Fatalf("Redis reads %s: the requests before the boundary took over %s on this machine", now, lead-2*time.Second)
		}
	}

	t.Run("a UTC day", func(t *testing.T) {
		setRedisClock(t, clock, c, dayEnd.Add(-lead))
		spend(t, daily, 3)
		refused(t, daily, "Quota exceeded: 3 requests per day.", dayEnd)
		spend(t, monthly, 2)
		refused(t, monthly, "Quota exceeded: 2 requests per month.", monthEnd)
		beforeBoundary(t, dayEnd)

		// Past the boundary, and past the second a refusal stands on a
		// gateway (limiter.quotaStand).
		waitRedisPast(t, c, dayEnd.Add(1500*time.Millisecond))
		passes(t, daily, dayQ, dayEnd, []int64{2, 1})
		if n, _ := c.Get(context.Background(), quota.Key(daily.ID, dayQ, dayEnd.Add(-time.Hour))).Int64(); n != 3 {
			t.Errorf("the previous day's counter is %d, want 3", n)
		}
		refused(t, monthly, "Quota exceeded: 2 requests per month.", monthEnd)
	})

	t.Run("a UTC month", func(t *testing.T) {
		setRedisClock(t, clock, c, monthEnd.Add(-lead))
		// A quota refusal stands on a gateway for a second
		// (limiter.quotaStand), with the reset time of its answer: let the
		// last ones, from before Redis's clock jumped, lapse.
		time.Sleep(1500 * time.Millisecond)
		// The last day of the month: a new day for the daily key, the same
		// month for the monthly one.
		spend(t, daily, 3)
		refused(t, daily, "Quota exceeded: 3 requests per day.", monthEnd)
		refused(t, monthly, "Quota exceeded: 2 requests per month.", monthEnd)
		beforeBoundary(t, monthEnd)

		waitRedisPast(t, c, monthEnd.Add(1500*time.Millisecond))
		passes(t, monthly, monthQ, monthEnd, []int64{1, 0})
		passes(t, daily, dayQ, monthEnd, []int64{2, 1})
		refused(t, monthly, "Quota exceeded: 2 requests per month.", monthEnd.AddDate(0, 1, 0))
	})
}
