package quota

import (
	"context"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/testenv"
)

func TestKeyNamesThePeriod(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 30, 0, 0, time.FixedZone("x", -3600)) // 2027-01-01 00:30 UTC
	const id = "0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a11"
	if got := Key(id, apikey.Quota{Limit: 1, Period: apikey.PeriodDay}, at); got != "azen:quota:{"+id+"}:2027-01-01" {
		t.Errorf("day key %q", got)
	}
	if got := Key(id, apikey.Quota{Limit: 1, Period: apikey.PeriodMonth}, at); got != "azen:quota:{"+id+"}:2027-01" {
		t.Errorf("month key %q", got)
	}
	if got := LocalKey(id, apikey.Quota{Limit: 1, Period: apikey.PeriodMonth}, at); got != "azen:quota:{"+id+"}:2027-01:local" {
		t.Errorf("local key %q", got)
	}
	if d := ResetIn(apikey.Quota{Limit: 1, Period: apikey.PeriodDay}, at); d != 23*time.Hour+30*time.Minute {
		t.Errorf("ResetIn %s", d)
	}
}

func TestUsedReadsTheCounter(t *testing.T) {
	rd := testenv.StartRedis(t)
	o, _ := redisconn.Parse(rd.URL())
	c := o.NewClient()
	defer c.Close()
	ctx := context.Background()
	q := apikey.Quota{Limit: 10, Period: apikey.PeriodMonth}
	now := time.Now()
	if n, err := Used(ctx, c, "k", q, now); err != nil || n != 0 {
		t.Fatalf("unused quota: %d %v", n, err)
	}
	c.IncrBy(ctx, Key("k", q, now), 7)
	if n, err := Used(ctx, c, "k", q, now); err != nil || n != 7 {
		t.Fatalf("used %d %v", n, err)
	}
	if n, _ := Used(ctx, c, "k", q, now.AddDate(0, 1, 0)); n != 0 {
		t.Fatalf("next month starts at %d", n)
	}
}
