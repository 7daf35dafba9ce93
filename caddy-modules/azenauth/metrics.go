package azenauth

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
}

func newAuthCounters() authCounters {
	return authCounters{
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
	requests, err := registerOnce(reg, c.requests)
	if err != nil {
		return nil, err
	}
	cache, err := registerOnce(reg, c.cache)
	if err != nil {
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

func registerOnce(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, err
	}
	return c, nil
}

func (m *authMetrics) outcome(o string) { m.outcomes[o].Inc() }

func (m *authMetrics) cacheResult(r cacheResult) { m.cache[r].Inc() }
