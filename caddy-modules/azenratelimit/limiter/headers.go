package limiter

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
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
	reset := strconv.FormatInt(ceilSecondsOrZero(d.ResetAfter), 10)
	policyField := p.policyField
	if policyField == "" {
		policyField = p.makePolicyField()
	}
	name, _, _ := strings.Cut(policyField, ";")
	h[hLimit] = []string{strconv.Itoa(p.Rate.Count)}
	h[hRemaining] = []string{remaining}
	h[hReset] = []string{reset}
	h[hPolicy] = []string{policyField}
	h[hRateLimit] = []string{name + ";r=" + remaining + ";t=" + reset}
	if !d.Allowed {
		h[hRetryAfter] = []string{strconv.FormatInt(RetryAfterSeconds(d), 10)}
	} else {
		delete(h, hRetryAfter)
	}
}

// RetryAfterSeconds is the Retry-After value of a refused decision: rounded
// up to whole seconds and at least 1, so a client that waits it is never
// early.
func RetryAfterSeconds(d Decision) int64 {
	return ceilSeconds(d.RetryAfter)
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
