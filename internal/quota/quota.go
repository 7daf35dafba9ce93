// Package quota names where a key's quota use is counted in Redis (contract
// §10), so the limiter that counts it and the console and CLI that show it
// agree on one key. The count is the number of requests (cost units) spent
// in the current UTC day or month; the limiter increments it in the same
// script call as the rate limit, and it expires a day after its period.
package quota

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/apikey"
)

// Key is the Redis key counting key id's use of q in the period holding
// now: azen:quota:{ID}:2026-12-01 (day) or azen:quota:{ID}:2026-12 (month).
// The braces are a Cluster hash tag: the limiter's bucket names carry the
// same {ID}, so one script can touch both.
func Key(keyID string, q apikey.Quota, now time.Time) string {
	start, _ := q.Window(now)
	layout := "2006-01-02"
	if q.Period == apikey.PeriodMonth {
		layout = "2006-01"
	}
	return "azen:quota:" + HashTag(keyID) + ":" + start.Format(layout)
}

// LocalKey is the hash beside Key's counter that makes charging local-mode
// admissions idempotent: field = a gateway's id, value = the units its
// local mode (Redis unreachable) admitted in the period and has charged to
// the counter. It lives as long as the counter. Readers of the use need
// only Key.
func LocalKey(keyID string, q apikey.Quota, now time.Time) string {
	return Key(keyID, q, now) + ":local"
}

// HashTag is the Cluster hash tag of everything kept for key id.
func HashTag(keyID string) string { return "{" + keyID + "}" }

// ExpireAt is when the counter of the period holding now may go: a day
// after the period ends, so a late reader still sees the final count.
func ExpireAt(q apikey.Quota, now time.Time) time.Time {
	_, end := q.Window(now)
	return end.Add(24 * time.Hour)
}

// ResetIn is how long until the period holding now ends.
func ResetIn(q apikey.Quota, now time.Time) time.Duration {
	_, end := q.Window(now)
	return end.Sub(now)
}

// Used reads how much of q key id has spent in the current period.
func Used(ctx context.Context, client redis.UniversalClient, keyID string, q apikey.Quota, now time.Time) (int64, error) {
	if q.IsZero() {
		return 0, nil
	}
	n, err := client.Get(ctx, Key(keyID, q, now)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}
