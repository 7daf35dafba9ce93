package limiter

import (
	"context"
	"testing"
	"time"
)

// A gateway whose clock is hours off Redis's, within the same UTC day,
// names the right counter; the time to the reset it tells clients
// (Retry-After, "Resets in", the quota's t) is Redis's time to midnight,
// not its own, from the first answer on.
func TestLimiterQuotaResetAfterIsRedisClock(t *testing.T) {
	_, client := newTestRedis(t)
	r := NewRedis(client)
	t.Cleanup(r.Close)
	now := time.Now().UTC()
	start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 0, 1)
	// Half the way to the nearer end of the day, so both clocks are in it.
	skew := -now.Sub(start) / 2
	if end.Sub(now) > now.Sub(start) {
		skew = end.Sub(now) / 2
	}
	l := New(Config{Redis: r, Holder: "g1", Now: func() time.Time { return time.Now().Add(skew) }})
	t.Cleanup(l.Close)
	p := policy(t, "default", "1000/s burst 1000")
	q := day(2)
	for i := 0; i < 3; i++ {
		res, err := l.Allow(context.Background(), qreq(p, "skewed-"+t.Name(), 1, q))
		if err != nil || res.Decision.Allowed != (i < 2) {
			t.Fatalf("request %d: %+v %v", i+1, res, err)
		}
		want := time.Until(end)
		if d := res.Quota.ResetAfter - want; d < -2*time.Second || d > 2*time.Second {
			t.Fatalf("request %d on a gateway %s off: resets after %s, want Redis's %s to midnight", i+1, skew, res.Quota.ResetAfter, want)
		}
		if i == 2 && res.Decision.RetryAfter-want > 2*time.Second {
			t.Fatalf("Retry-After %s, want Redis's %s to midnight", res.Decision.RetryAfter, want)
		}
	}
}
