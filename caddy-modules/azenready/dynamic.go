package azenready

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// dynamicUpstreams are a reverse_proxy's upstreams found at request time
// (`dynamic a`, `dynamic srv`, …). Caddy keeps no health state for them, so
// azen_ready asks the source for the current set and probes each one the way
// the proxy's active health check would (its uri, port and expected status,
// through the proxy's own transport); without an active health check with a
// uri (health_uri) a connection that opens is healthy.
type dynamicUpstreams struct {
	source    reverseproxy.UpstreamSource
	transport http.RoundTripper
	active    *reverseproxy.ActiveHealthChecks
}

func newDynamicUpstreams(h *reverseproxy.Handler) *dynamicUpstreams {
	d := &dynamicUpstreams{source: h.DynamicUpstreams, transport: h.Transport}
	if h.HealthChecks != nil && h.HealthChecks.Active != nil && h.HealthChecks.Active.URI != "" {
		d.active = h.HealthChecks.Active
	}
	return d
}

// probe resolves the current upstreams for r and counts the healthy ones.
// A source that fails or returns none counts as no upstream at all.
func (d *dynamicUpstreams) probe(ctx context.Context, r *http.Request) (healthy, total int, err error) {
	// Sources read placeholders from the request's replacer; the lookup is
	// bounded by ctx, not by the probe's connection.
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		repl = caddy.NewReplacer()
	}
	ups, err := d.source.GetUpstreams(r.WithContext(context.WithValue(ctx, caddy.ReplacerCtxKey, repl)))
	if err != nil {
		return 0, 0, err
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	for _, u := range ups {
		wg.Go(func() {
			if d.healthy(ctx, u.Dial) {
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return int(n.Load()), len(ups), nil
}

func (d *dynamicUpstreams) healthy(ctx context.Context, dial string) bool {
	if d.active == nil || d.transport == nil {
		var dialer net.Dialer
		c, err := dialer.DialContext(ctx, "tcp", dial)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}
	a := d.active
	host := dial
	if a.Port != 0 {
		if h, _, err := net.SplitHostPort(dial); err == nil {
			host = net.JoinHostPort(h, strconv.Itoa(a.Port))
		}
	}
	scheme := "http"
	if t, ok := d.transport.(reverseproxy.TLSTransport); ok && t.TLSEnabled() {
		scheme = "https"
	}
	uri := a.URI
	method := a.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, scheme+"://"+host+uri, nil)
	if err != nil {
		return false
	}
	for k, v := range a.Headers {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Transport: d.transport, CheckRedirect: noRedirects}).Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if a.ExpectStatus != 0 {
		return resp.StatusCode == a.ExpectStatus
	}
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
