package limiter

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
)

// Canonical header names, set directly to skip canonicalisation per request.
const (
	hLimit      = "X-Ratelimit-Limit"
	hRemaining  = "X-Ratelimit-Remaining"
	hReset      = "X-Ratelimit-Reset"
	hPolicy     = "Ratelimit-Policy"
	hRateLimit  = "Ratelimit"
	hRetryAfter = "Retry-After"
)

// SetHeaders writes the rate-limit fields of contract §5 for a decision under
// policy p (the policy as configured, even when a gateway decided alone on
// its share of it):
//
//	X-RateLimit-Limit:     requests per period
//	X-RateLimit-Remaining: requests of cost 1 that would pass now
//	X-RateLimit-Reset:     whole seconds until the bucket is full again
//	RateLimit-Policy:      "NAME";q=COUNT;w=PERIOD_SECONDS (IETF draft-10)
//	RateLimit:             "NAME";r=REMAINING;t=RESET_SECONDS (IETF draft-10)
//	Retry-After:           whole seconds, at least 1 (refused requests only)
func SetHeaders(h http.Header, p Policy, d Decision) {
	remaining := strconv.Itoa(max(0, d.Remaining))
	reset := strconv.FormatInt(contract.CeilSeconds(d.ResetAfter), 10)
	policyField, limit := p.policyField, p.limitText
	if policyField == "" {
		policyField, limit = p.makePolicyField(), strconv.Itoa(p.Rate.Count)
	}
	name, _, _ := strings.Cut(policyField, ";")
	// One backing array for every value (one allocation, not six); each
	// field gets its own element, capped so that an append copies.
	v := make([]string, 6)
	v[0], v[1], v[2], v[3] = limit, remaining, reset, policyField
	v[4] = name + ";r=" + remaining + ";t=" + reset
	h[hLimit], h[hRemaining], h[hReset] = v[0:1:1], v[1:2:2], v[2:3:3]
	h[hPolicy], h[hRateLimit] = v[3:4:4], v[4:5:5]
	if !d.Allowed {
		v[5] = strconv.FormatInt(RetryAfterSeconds(d), 10)
		h[hRetryAfter] = v[5:6:6]
	} else {
		delete(h, hRetryAfter)
	}
}

// RetryAfterSeconds is the Retry-After value of a refused decision: rounded
// up to whole seconds and at least 1, so a client that waits it is never
// early.
func RetryAfterSeconds(d Decision) int64 {
	return contract.RetryAfterSeconds(d.RetryAfter)
}

// RefusalMessage is the client-facing 429 message, naming the limit:
// "Rate limit exceeded: 60 requests per minute. Retry in 7 s."
func RefusalMessage(p Policy, d Decision) string {
	noun := "requests"
	if p.Rate.Count == 1 {
		noun = "request"
	}
	return fmt.Sprintf("Rate limit exceeded: %d %s per %s. Retry in %d s.",
		p.Rate.Count, noun, p.PeriodText(), RetryAfterSeconds(d))
}

// QuotaPolicyName names a key's quota in the draft-10 fields.
const QuotaPolicyName = "quota"

// SetQuotaHeaders adds a key's quota q (contract §10), after SetHeaders,
// as the second item of the draft-10 fields, which are Structured Field
// Lists (items separated by ", "):
//
//	RateLimit-Policy: "default";q=60;w=60, "quota";q=10000;w=2678400
//	RateLimit:        "default";r=59;t=1, "quota";r=9988;t=1036800
//
// q is the quota, w the length of the current period in seconds (86 400
// for a day; 28 to 31 days for a month), r what is left of it and t the
// seconds until the period ends (rounded up). The X-RateLimit-* fields
// stay the rate limit's. A quota of 0 (none) adds nothing.
func SetQuotaHeaders(h http.Header, q QuotaStatus) {
	if q.Limit == 0 {
		return
	}
	policy, limit := h[hPolicy], h[hRateLimit]
	if len(policy) != 1 || len(limit) != 1 {
		return // SetHeaders did not run
	}
	item := q.policyItem
	if item == "" {
		item = quotaPolicyItem(q.Limit, q.Window)
	}
	// The slices are SetHeaders' own: their one element is replaced.
	policy[0] += item
	limit[0] += `, "` + QuotaPolicyName + `";r=` + strconv.FormatInt(max(0, q.Remaining), 10) +
		";t=" + strconv.FormatInt(contract.CeilSeconds(q.ResetAfter), 10)
}

// quotaPolicyItem is the quota's item of RateLimit-Policy, with the comma
// that separates it from the rate limit's.
func quotaPolicyItem(limit int64, window time.Duration) string {
	return `, "` + QuotaPolicyName + `";q=` + strconv.FormatInt(limit, 10) + ";w=" + strconv.FormatInt(contract.RetryAfterSeconds(window), 10)
}

// QuotaRefusalMessage is the client-facing 429 message for a spent quota:
// "Quota exceeded: 10000 requests per month. Resets in 3 d 4 h."
func QuotaRefusalMessage(q QuotaStatus) string {
	noun := "requests"
	if q.Limit == 1 {
		noun = "request"
	}
	return fmt.Sprintf("Quota exceeded: %d %s per %s. Resets in %s.", q.Limit, noun, q.Period, DurationWords(q.ResetAfter))
}

// DurationWords says d in the two largest units a client can act on,
// rounded up so that waiting that long is never early: "3 d 4 h",
// "5 h 30 min", "12 min", "40 s". A zero part is left out ("2 d", "1 h").
func DurationWords(d time.Duration) string {
	s := contract.RetryAfterSeconds(d)
	if s < 60 {
		return strconv.FormatInt(s, 10) + " s"
	}
	two := func(big int64, bigUnit string, small int64, smallUnit string) string {
		out := strconv.FormatInt(big, 10) + " " + bigUnit
		if small > 0 {
			out += " " + strconv.FormatInt(small, 10) + " " + smallUnit
		}
		return out
	}
	if m := (s + 59) / 60; m < 60 {
		return strconv.FormatInt(m, 10) + " min"
	} else if m < 24*60 {
		return two(m/60, "h", m%60, "min")
	}
	h := (s + 3599) / 3600
	return two(h/24, "d", h%24, "h")
}
