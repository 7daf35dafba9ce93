package azenratelimit

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/azen-sh/gateway/internal/promreg"
)

// The collectors live for the whole process, so counters keep counting
// across reloads; each config's registry gets them registered once.
var (
	decisionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "azen",
		Subsystem: "ratelimit",
		Name:      "decisions_total",
		Help:      "Rate-limit decisions by outcome (allowed, limited, error) and mode (redis, local, allow, deny).",
	}, []string{"outcome", "mode"})
	redisSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "azen",
		Subsystem: "ratelimit",
		Name:      "redis_seconds",
		Help:      "Latency of the rate-limit Redis call, failed calls included.",
		Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
	})
	quotaExceededTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "azen",
		Subsystem: "ratelimit",
		Name:      "quota_exceeded_total",
		Help:      "Requests refused because the key's quota for the period is spent (also counted in decisions_total as limited).",
	})
	// The gauges are read at scrape time from every limiter state in the
	// process (one per Redis URL); no label names the URL, which may hold a
	// password.
	breakerOpen = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "azen",
		Subsystem: "ratelimit",
		Name:      "breaker_open",
		Help:      "Limiters whose Redis circuit breaker is open (limits decided on this gateway alone, per on_redis_error); 0 when Redis answers.",
	}, func() float64 {
		n := 0
		states.Range(func(_, v any) bool {
			if s := v.(*state); s.redis != nil && s.limiter.BreakerOpen() {
				n++
			}
			return true
		})
		return float64(n)
	})
	gatewaysAlive = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "azen",
		Subsystem: "ratelimit",
		Name:      "gateways_alive",
		Help:      "Gateways last seen alive in Redis by this one's heartbeat (what local mode divides a policy by); 0 without Redis.",
	}, func() float64 {
		n := 0
		states.Range(func(_, v any) bool {
			if s := v.(*state); s.gateways != nil {
				n = max(n, s.gateways.Count())
			}
			return true
		})
		return float64(n)
	})
	redisErrorsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "azen",
		Subsystem: "ratelimit",
		Name:      "redis_errors_total",
		Help:      "Rate-limit Redis calls that failed or timed out (calls skipped by the open breaker not included).",
	})
)

// Pre-bound counters keep label lookups off the request path.
var (
	mRedisAllowed = decisionsTotal.WithLabelValues("allowed", "redis")
	mRedisLimited = decisionsTotal.WithLabelValues("limited", "redis")
	mLocalAllowed = decisionsTotal.WithLabelValues("allowed", "local")
	mLocalLimited = decisionsTotal.WithLabelValues("limited", "local")
	mAllowAllowed = decisionsTotal.WithLabelValues("allowed", "allow")
	mDenyError    = decisionsTotal.WithLabelValues("error", "deny")
	mRedisError   = decisionsTotal.WithLabelValues("error", "redis")
	// mQuotaExceeded is the one quota counter.
	mQuotaExceeded prometheus.Counter = quotaExceededTotal
)

// registerMetrics adds the collectors to a config's registry; a second
// handler in the same config finds them there already.
func registerMetrics(reg prometheus.Registerer) error {
	return promreg.RegisterAll(reg, decisionsTotal, redisSeconds, redisErrorsTotal, quotaExceededTotal, breakerOpen, gatewaysAlive)
}
