package azenready

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/testenv"

	"github.com/azen-sh/gateway/internal/contract"
)

type fakeStore struct{ err error }

func (s fakeStore) CheckStore(context.Context) error { return s.err }

type fakeUpstream bool

func (u fakeUpstream) Healthy() bool { return bool(u) }

func ups(h ...bool) []interface{ Healthy() bool } {
	var out []interface{ Healthy() bool }
	for _, v := range h {
		out = append(out, fakeUpstream(v))
	}
	return out
}

func intp(n int) *int { return &n }

// TestReadinessRules: one row per rule of what makes the gateway ready.
// The stores and upstreams are stand-ins here; Redis is a real server that
// the last rows stop (tests/ops_readyz_test.go runs it all for real).
func TestReadinessRules(t *testing.T) {
	r := testenv.StartRedis(t)
	client, release, err := redisconn.Shared(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	redisUp := func(modes ...string) []*redisTarget {
		return []*redisTarget{{url: r.URL(), modes: modes, client: client}}
	}
	ok := map[string]storeChecker{"sqlite:a.db": fakeStore{}}
	ready, draining, gone := backend(t, http.StatusOK), backend(t, http.StatusServiceUnavailable), deadAddr(t)
	for _, tc := range []struct {
		name  string
		deps  dependencies
		stop  bool // Redis stopped before the check
		want  report
		cause bool // a problem is logged
	}{
		{name: "nothing configured is ready", want: report{Status: "ready", Checks: checks{
			KeyStore: check{Status: "not configured"}, Redis: check{Status: "not configured"}, Upstreams: check{Status: "not configured"}}}},
		{name: "store, Redis and one healthy upstream of two: ready",
			deps: dependencies{stores: ok, redis: redisUp("local"), proxies: []proxy{{static: ups(true, false)}}},
			want: report{Status: "ready", Checks: checks{KeyStore: check{Status: "ok"}, Redis: check{Status: "ok"},
				Upstreams: check{Status: "ok", Healthy: intp(1), Total: intp(2)}}}, cause: false},
		{name: "the key store down: unready",
			deps: dependencies{stores: map[string]storeChecker{"sqlite:a.db": fakeStore{errors.New("unable to open")}}, proxies: []proxy{{static: ups(true)}}},
			want: report{Status: "unready", Checks: checks{KeyStore: check{Status: "down"}, Redis: check{Status: "not configured"},
				Upstreams: check{Status: "ok", Healthy: intp(1), Total: intp(1)}}}, cause: true},
		{name: "no healthy upstream: unready",
			deps: dependencies{stores: ok, proxies: []proxy{{static: ups(false, false)}}},
			want: report{Status: "unready", Checks: checks{KeyStore: check{Status: "ok"}, Redis: check{Status: "not configured"},
				Upstreams: check{Status: "down", Healthy: intp(0), Total: intp(2)}}}, cause: true},
		{name: "every reverse_proxy needs one healthy upstream",
			deps: dependencies{proxies: []proxy{{static: ups(true)}, {static: ups(false)}}},
			want: report{Status: "unready", Checks: checks{KeyStore: check{Status: "not configured"}, Redis: check{Status: "not configured"},
				Upstreams: check{Status: "down", Healthy: intp(1), Total: intp(2)}}}, cause: true},
		{name: "dynamic upstreams: probed on the active check's uri, one of two ready is enough",
			deps: dependencies{stores: ok, proxies: []proxy{{dynamic: dynamic(fakeSource{dial: []string{ready, draining}}, "/readyz")}}},
			want: report{Status: "ready", Checks: checks{KeyStore: check{Status: "ok"}, Redis: check{Status: "not configured"},
				Upstreams: check{Status: "ok", Dynamic: true, Healthy: intp(1), Total: intp(2)}}}},
		{name: "dynamic upstreams all unready (draining or gone): unready",
			deps: dependencies{stores: ok, proxies: []proxy{{dynamic: dynamic(fakeSource{dial: []string{draining, gone}}, "/readyz")}}},
			want: report{Status: "unready", Checks: checks{KeyStore: check{Status: "ok"}, Redis: check{Status: "not configured"},
				Upstreams: check{Status: "down", Dynamic: true, Healthy: intp(0), Total: intp(2)}}}, cause: true},
		{name: "a DNS name that resolves to nothing: unready",
			deps: dependencies{stores: ok, proxies: []proxy{{dynamic: dynamic(fakeSource{err: errors.New("no such host")}, "/readyz")}}},
			want: report{Status: "unready", Checks: checks{KeyStore: check{Status: "ok"}, Redis: check{Status: "not configured"},
				Upstreams: check{Status: "down", Dynamic: true, Healthy: intp(0), Total: intp(0)}}}, cause: true},
		{name: "dynamic upstreams without an active health check: a connection that opens is healthy",
			deps: dependencies{stores: ok, proxies: []proxy{{dynamic: dynamic(fakeSource{dial: []string{draining, gone}}, "")}}},
			want: report{Status: "ready", Checks: checks{KeyStore: check{Status: "ok"}, Redis: check{Status: "not configured"},
				Upstreams: check{Status: "ok", Dynamic: true, Healthy: intp(1), Total: intp(2)}}}},
		{name: "Redis answers but the limiter's breaker is still open: degraded",
			deps: dependencies{stores: ok, redis: []*redisTarget{{url: r.URL(), modes: []string{"local"}, client: client,
				limiters: []breaker{openBreaker(false), openBreaker(true)}}}, proxies: []proxy{{static: ups(true)}}},
			want: report{Status: "ready", Checks: checks{KeyStore: check{Status: "ok"}, Redis: check{Status: "degraded", Mode: "local"},
				Upstreams: check{Status: "ok", Healthy: intp(1), Total: intp(1)}}}, cause: true},
		{name: "Redis down with the local fallback: degraded, still ready",
			deps: dependencies{stores: ok, redis: redisUp("local"), proxies: []proxy{{static: ups(true)}}}, stop: true,
			want: report{Status: "ready", Checks: checks{KeyStore: check{Status: "ok"}, Redis: check{Status: "degraded", Mode: "local"},
				Upstreams: check{Status: "ok", Healthy: intp(1), Total: intp(1)}}}, cause: true},
		{name: "Redis down with on_redis_error deny: every limited request fails, unready",
			deps: dependencies{stores: ok, redis: redisUp("allow", "deny"), proxies: []proxy{{static: ups(true)}}}, stop: true,
			want: report{Status: "unready", Checks: checks{KeyStore: check{Status: "ok"}, Redis: check{Status: "degraded", Mode: "allow,deny"},
				Upstreams: check{Status: "ok", Healthy: intp(1), Total: intp(1)}}}, cause: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.stop {
				r.Stop()
				defer r.Start()
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			got, problems := tc.deps.check(ctx, httptest.NewRequest("GET", "/readyz", nil))
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tc.want)
			if string(g) != string(w) {
				t.Errorf("got  %s\nwant %s", g, w)
			}
			if (len(problems) > 0) != tc.cause {
				t.Errorf("problems %q, want some: %v", problems, tc.cause)
			}
		})
	}
}

// TestServeHTTP: 200 or 503 with the JSON report and a request id, the body
// left out for HEAD, and one round of checks reused for a second.
func TestServeHTTP(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	calls := 0
	h := &Handler{}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	h.logger = zap.NewNop()
	h.st.deps = &dependencies{stores: map[string]storeChecker{"x": countingStore{&calls}}, proxies: []proxy{{static: ups(false)}}}
	for _, method := range []string{"GET", "HEAD", "GET"} {
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, httptest.NewRequest(method, "/readyz", nil), nil); err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %q", method, w.Code, w.Header().Get("Content-Type"))
		}
		// Contract §4: every response carries one, without azen_request_id.
		if ids := w.Header().Values(contract.RequestIDHeader); len(ids) != 1 || !contract.SaneRequestID(ids[0]) {
			t.Errorf("%s: X-Request-Id %q, want exactly one", method, ids)
		}
		var rep report
		if method == "HEAD" {
			if w.Body.Len() != 0 {
				t.Errorf("HEAD has a body: %q", w.Body)
			}
		} else if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || rep.Status != "unready" || rep.Checks.Upstreams.Status != "down" {
			t.Errorf("GET: %v %s", err, w.Body)
		}
	}
	if calls != 1 {
		t.Errorf("%d rounds of checks for three probes within a second, want 1", calls)
	}
}

// fakeSource stands in for `dynamic a`: the addresses a lookup returned.
type fakeSource struct {
	dial []string
	err  error
}

func (s fakeSource) GetUpstreams(*http.Request) ([]*reverseproxy.Upstream, error) {
	var out []*reverseproxy.Upstream
	for _, d := range s.dial {
		out = append(out, &reverseproxy.Upstream{Dial: d})
	}
	return out, s.err
}

func dynamic(src reverseproxy.UpstreamSource, uri string) *dynamicUpstreams {
	h := &reverseproxy.Handler{DynamicUpstreams: src, Transport: &http.Transport{}}
	if uri != "" {
		h.HealthChecks = &reverseproxy.HealthChecks{Active: &reverseproxy.ActiveHealthChecks{URI: uri}}
	}
	return newDynamicUpstreams(h)
}

// backend is a real HTTP server whose /readyz answers status.
func backend(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type countingStore struct{ n *int }

func (s countingStore) CheckStore(context.Context) error { *s.n++; return nil }

// openBreaker is an azen_ratelimit handler's breaker state.
type openBreaker bool

func (b openBreaker) BreakerOpen() bool { return bool(b) }
