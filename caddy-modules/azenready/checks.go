package azenready

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/azen-sh/gateway/caddy-modules/azenauth"
	"github.com/azen-sh/gateway/caddy-modules/azenratelimit"
	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/sqldb"
)

// Status values of the report and of each check.
const (
	statusReady   = "ready"
	statusUnready = "unready"

	checkOK            = "ok"
	checkDown          = "down"
	checkDegraded      = "degraded"
	checkNotConfigured = "not configured"
)

// report is the /readyz body. It names no address, URL or error: the
// endpoint is public, and the causes go to the log.
type report struct {
	Status string `json:"status"`
	Checks checks `json:"checks"`
}

type checks struct {
	KeyStore  check `json:"keyStore"`
	Redis     check `json:"redis"`
	Upstreams check `json:"upstreams"`
}

type check struct {
	Status string `json:"status"`
	// Mode is what azen_ratelimit does while Redis does not answer
	// (on_redis_error: local, allow, deny), given when Redis is degraded.
	Mode    string `json:"mode,omitempty"`
	Healthy *int   `json:"healthy,omitempty"`
	Total   *int   `json:"total,omitempty"`
	// Dynamic is set when some upstreams are dynamic (DNS): Caddy keeps no
	// health state for them, so azen_ready probes the current set itself.
	Dynamic bool `json:"dynamic,omitempty"`
}

// storeChecker is what azen_ready needs of azen_auth.
type storeChecker interface {
	CheckStore(ctx context.Context) error
}

// proxy is one reverse_proxy's upstreams: the static ones Caddy keeps
// health for, or a dynamic source azen_ready probes.
type proxy struct {
	static  []interface{ Healthy() bool }
	dynamic *dynamicUpstreams
}

// redisTarget is one Redis URL the config uses, and what the limiters on
// it do without it.
type redisTarget struct {
	url      string
	modes    []string // on_redis_error of the azen_ratelimit handlers on this URL
	limiters []breaker
	client   redis.UniversalClient
	release  func()
}

// breaker is an azen_ratelimit handler, asked whether its circuit breaker
// keeps its calls off Redis.
type breaker interface{ BreakerOpen() bool }

// dependencies are what the config's handlers rely on.
type dependencies struct {
	stores  map[string]storeChecker // one azen_auth per database URL
	redis   []*redisTarget
	proxies []proxy
}

// walk collects the handlers of routes, descending into subroutes (every
// `handle` and `route` block).
func (d *dependencies) walk(routes caddyhttp.RouteList) {
	for _, r := range routes {
		for _, mh := range r.Handlers {
			switch h := mh.(type) {
			case *caddyhttp.Subroute:
				d.walk(h.Routes)
			case *azenauth.Handler:
				if d.stores == nil {
					d.stores = map[string]storeChecker{}
				}
				d.stores[expand(h.Database, sqldb.DefaultURL)] = h
				d.addRedis(expand(h.Redis, ""), "")
			case *azenratelimit.Handler:
				if t := d.addRedis(expand(h.Redis, ""), h.OnRedisError); t != nil {
					t.limiters = append(t.limiters, h)
				}
			case *reverseproxy.Handler:
				var p proxy
				if h.DynamicUpstreams != nil {
					p.dynamic = newDynamicUpstreams(h)
				}
				for _, u := range h.Upstreams {
					p.static = append(p.static, u)
				}
				d.proxies = append(d.proxies, p)
			}
		}
	}
}

// expand fills {env.*} as the modules do when they provision.
func expand(raw, empty string) string {
	v := strings.TrimSpace(caddy.NewReplacer().ReplaceKnown(raw, ""))
	if v == "" {
		return empty
	}
	return v
}

func (d *dependencies) addRedis(url, mode string) *redisTarget {
	if url == "" {
		return nil
	}
	i := slices.IndexFunc(d.redis, func(t *redisTarget) bool { return t.url == url })
	if i < 0 {
		d.redis = append(d.redis, &redisTarget{url: url})
		i = len(d.redis) - 1
	}
	if mode != "" && !slices.Contains(d.redis[i].modes, mode) {
		d.redis[i].modes = append(d.redis[i].modes, mode)
		slices.Sort(d.redis[i].modes)
	}
	return d.redis[i]
}

// connect takes the process's shared client of each Redis URL (the one the
// modules use), for the PINGs.
func (d *dependencies) connect(logger *zap.Logger) {
	for _, t := range d.redis {
		c, release, err := redisconn.Shared(t.url)
		if err != nil {
			logger.Error("readiness cannot check a Redis URL", zap.Error(err))
			continue
		}
		t.client, t.release = c, release
	}
}

func (d *dependencies) release() {
	for _, t := range d.redis {
		if t.release != nil {
			t.release()
			t.release = nil
		}
	}
}

// check runs every check at once, each bounded by ctx; r is the probe
// that asked (dynamic upstream sources read it). problems are the causes of
// anything not ok, for the log.
func (d *dependencies) check(ctx context.Context, r *http.Request) (report, []string) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		problems []string
		storeErr error
		redisErr = make([]error, len(d.redis))
		probed   = make([]probeResult, len(d.proxies))
	)
	note := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	for url, s := range d.stores {
		wg.Go(func() {
			if err := s.CheckStore(ctx); err != nil {
				note("key store %s: %v", sqldb.Describe(url), err)
				mu.Lock()
				storeErr = errors.Join(storeErr, err)
				mu.Unlock()
			}
		})
	}
	for i, t := range d.redis {
		wg.Go(func() {
			err := errors.New("no client")
			if t.client != nil {
				err = t.client.Ping(ctx).Err()
			}
			// Redis may answer a PING while the limiter still decides
			// alone: its breaker opens on failed calls and closes on the
			// next good one.
			if err == nil && slices.ContainsFunc(t.limiters, breaker.BreakerOpen) {
				err = errors.New("the rate limiter's circuit breaker is open: limits are decided on each gateway alone")
			}
			if err != nil {
				note("redis: %v", err)
			}
			redisErr[i] = err
		})
	}
	for i, p := range d.proxies {
		if p.dynamic == nil {
			continue
		}
		wg.Go(func() {
			res := &probed[i]
			res.healthy, res.total, res.err = p.dynamic.probe(ctx, r)
			if res.err != nil {
				note("dynamic upstreams: %v", res.err)
			}
		})
	}
	wg.Wait()

	rep := report{Status: statusReady}
	switch {
	case len(d.stores) == 0:
		rep.Checks.KeyStore = check{Status: checkNotConfigured}
	case storeErr != nil:
		rep.Checks.KeyStore = check{Status: checkDown}
		rep.Status = statusUnready
	default:
		rep.Checks.KeyStore = check{Status: checkOK}
	}

	rep.Checks.Redis = check{Status: checkNotConfigured}
	if len(d.redis) > 0 {
		rep.Checks.Redis.Status = checkOK
	}
	var modes []string
	for i, t := range d.redis {
		if redisErr[i] == nil {
			continue
		}
		rep.Checks.Redis.Status = checkDegraded
		for _, m := range t.modes {
			if !slices.Contains(modes, m) {
				modes = append(modes, m)
			}
			// deny: every limited request is a 500 until Redis answers.
			if m == "deny" {
				rep.Status = statusUnready
			}
		}
	}
	slices.Sort(modes)
	rep.Checks.Redis.Mode = strings.Join(modes, ",")

	rep.Checks.Upstreams = d.upstreams(probed, note)
	if rep.Checks.Upstreams.Status == checkDown {
		rep.Status = statusUnready
	}
	return rep, problems
}

// probeResult is what probing one proxy's dynamic upstreams found.
type probeResult struct {
	healthy, total int
	err            error
}

// upstreams: every reverse_proxy needs at least one upstream that is
// healthy: held healthy by Caddy (active and passive checks) for static
// ones, answering the probe for dynamic ones (probed, by proxy).
func (d *dependencies) upstreams(probed []probeResult, note func(string, ...any)) check {
	if len(d.proxies) == 0 {
		return check{Status: checkNotConfigured}
	}
	healthy, total, dynamic, starved := 0, 0, false, 0
	for i, p := range d.proxies {
		h, n := 0, len(p.static)
		for _, u := range p.static {
			if u.Healthy() {
				h++
			}
		}
		if p.dynamic != nil {
			dynamic = true
			h, n = h+probed[i].healthy, n+probed[i].total
		}
		if h == 0 {
			starved++
		}
		healthy += h
		total += n
	}
	c := check{Status: checkOK, Dynamic: dynamic, Healthy: &healthy, Total: &total}
	if starved > 0 {
		c.Status = checkDown
		note("upstreams: %d reverse_proxy handler(s) without a healthy upstream (%d of %d healthy in all)", starved, healthy, total)
	}
	return c
}
