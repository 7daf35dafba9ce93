package azenauth

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azen-sh/gateway/internal/promreg"
)

// Outcomes of azen_auth_requests_total.
const (
	outcomeOK         = "ok"
	outcomeMissing    = "missing"
	outcomeBlank      = "blank"
	outcomeMalformed  = "malformed"
	outcomeUnknown    = "unknown"
	outcomeDisabled   = "disabled"
	outcomeExpired    = "expired"
	outcomeIncomplete = "incomplete"
	outcomeThrottled  = "throttled"
	outcomeError      = "error"

	outcomeNoSession      = "no_session"
	outcomeNoOrganization = "no_organization"
	outcomeNoPermission   = "no_permission"
	outcomeCrossOrigin    = "cross_origin"
	outcomeBadBody        = "bad_body"
)

var allOutcomes = []string{
	outcomeOK, outcomeMissing, outcomeBlank, outcomeMalformed, outcomeUnknown,
	outcomeDisabled, outcomeExpired, outcomeIncomplete, outcomeThrottled, outcomeError,
	outcomeNoSession, outcomeNoOrganization, outcomeNoPermission, outcomeCrossOrigin, outcomeBadBody,
}

// authMetrics holds the counters with their label values resolved once, so
// counting costs no allocation on the request path.
type authMetrics struct {
	outcomes map[string]prometheus.Counter
	cache    [3]prometheus.Counter
}

// authCounters are the collectors; a runtime keeps one set, so counts
// survive config reloads that keep the runtime.
type authCounters struct {
	requests *prometheus.CounterVec
	cache    *prometheus.CounterVec
	gauges   prometheus.Collector // cache sizes and blocked addresses, read at scrape time
}

// newAuthCounters makes the runtime's collectors; its gauges read rt when
// scraped.
func newAuthCounters(rt *authRuntime) authCounters {
	return authCounters{
		gauges: runtimeGauges{rt},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "azen", Subsystem: "auth", Name: "requests_total",
			Help: "Requests seen by azen_auth, by outcome.",
		}, []string{"outcome"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "azen", Subsystem: "auth", Name: "key_cache_total",
			Help: "API key and session lookups by cache result: hit, miss (the store was asked), stale (store failed, expired entry used).",
		}, []string{"result"}),
	}
}

// newAuthMetrics registers c on reg. Caddy gives every config load a
// registry, and several azen_auth handlers share one: when the counters are
// already registered the existing ones are used.
func newAuthMetrics(reg prometheus.Registerer, c authCounters) (*authMetrics, error) {
	requests, err := promreg.Register(reg, c.requests)
	if err != nil {
		return nil, err
	}
	cache, err := promreg.Register(reg, c.cache)
	if err != nil {
		return nil, err
	}
	if err := promreg.RegisterAll(reg, c.gauges); err != nil {
		return nil, err
	}
	m := &authMetrics{outcomes: make(map[string]prometheus.Counter, len(allOutcomes))}
	for _, o := range allOutcomes {
		m.outcomes[o] = requests.WithLabelValues(o)
	}
	for r := cacheHit; r <= cacheStale; r++ {
		m.cache[r] = cache.WithLabelValues(r.String())
	}
	return m, nil
}

func (m *authMetrics) outcome(o string) { m.outcomes[o].Inc() }

func (m *authMetrics) cacheResult(r cacheResult) { m.cache[r].Inc() }

// runtimeGauges are the sizes operators watch: how full the credential
// caches are (against cache_size) and how many client addresses the
// failed-attempt limiter is refusing right now.
type runtimeGauges struct{ rt *authRuntime }

var (
	cacheEntriesDesc = prometheus.NewDesc("azen_auth_cache_entries",
		"Entries in the credential caches: cache keys or sessions, entry positive (found) or negative (unknown).",
		[]string{"cache", "entry"}, nil)
	blockedDesc = prometheus.NewDesc("azen_auth_blocked_addresses",
		"Client addresses (IPv6: /64 networks) whose keyed requests and sign-ins get 429 now, past failed_attempts.",
		nil, nil)
)

func (g runtimeGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheEntriesDesc
	ch <- blockedDesc
}

func (g runtimeGauges) Collect(ch chan<- prometheus.Metric) {
	for _, c := range []struct {
		name string
		len  func() (int, int)
	}{{"keys", g.rt.keys.Len}, {"sessions", g.rt.sessions.Len}} {
		pos, neg := c.len()
		ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(pos), c.name, "positive")
		ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(neg), c.name, "negative")
	}
	ch <- prometheus.MustNewConstMetric(blockedDesc, prometheus.GaugeValue, float64(g.rt.failures.BlockedCount(time.Now())))
}
