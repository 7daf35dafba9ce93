// Package azenready is the azen_ready handler: the gateway's readiness
// (GET /readyz in the shipped Caddyfile). It answers 200 when this gateway
// can serve the API now and 503 when it cannot, with a JSON body that says
// what it checked:
//
//	{"status":"ready","checks":{
//	  "keyStore":{"status":"ok"},
//	  "redis":{"status":"degraded","mode":"local"},
//	  "upstreams":{"status":"ok","healthy":2,"total":2}}}
//
// What it checks is what the config's own handlers use, found in process
// by walking the http app's provisioned routes: the key store of every
// azen_auth (migrated and answering), every Redis URL of azen_auth and
// azen_ratelimit (a PING), and the upstreams of every reverse_proxy
// (Caddy's own health state). /healthz stays the liveness answer.
package azenready

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/azen-sh/gateway/caddy-modules/azenerror"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("azen_ready", parseCaddyfile)
	// A responder, like respond (which it comes just before).
	httpcaddyfile.RegisterDirectiveOrder("azen_ready", httpcaddyfile.Before, "respond")
}

// DefaultTimeout bounds each check.
const DefaultTimeout = time.Second

// reuseFor is how long one round of checks answers every probe: a load
// balancer probing each second, or anyone on the internet probing much
// faster, costs at most one database ping and one Redis PING per second.
const reuseFor = time.Second

// Handler answers readiness probes.
type Handler struct {
	// How long each check (database ping, Redis PING) may take. Default 1s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	ctx     caddy.Context
	logger  *zap.Logger
	timeout time.Duration
	st      *state
}

// state is what one handler learns as it answers.
type state struct {
	mu        sync.Mutex
	deps      *dependencies // found at the first probe
	last      report
	checkedAt time.Time
	wasReady  *bool
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.azen_ready",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults. It looks at nothing else yet: the routes it
// checks are still being provisioned, and validate must not connect.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.ctx, h.logger, h.st = ctx, ctx.Logger(), &state{}
	h.timeout = time.Duration(h.Timeout)
	if h.timeout == 0 {
		h.timeout = DefaultTimeout
	}
	if h.timeout < 0 {
		return fmt.Errorf("azen_ready: timeout must be positive, got %s", h.timeout)
	}
	return nil
}

// Cleanup releases the Redis clients the checks used.
func (h *Handler) Cleanup() error {
	if h.st == nil {
		return nil
	}
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	if h.st.deps != nil {
		h.st.deps.release()
	}
	return nil
}

// ServeHTTP answers with the latest readiness report: 200 when ready, else
// 503, JSON either way. It never calls next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	w, _ = azenerror.EnsureRequestID(w, r) // contract §4: every response has one
	rep := h.report(r)
	body, err := json.Marshal(rep)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	status := http.StatusOK
	if rep.Status != statusReady {
		status = http.StatusServiceUnavailable
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(body, '\n'))
	}
	return nil
}

// report runs the checks unless a round finished less than reuseFor ago;
// concurrent probes wait for one round instead of each starting their own.
func (h *Handler) report(r *http.Request) report {
	st := h.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.deps == nil {
		st.deps = h.findDependencies()
	}
	if !st.checkedAt.IsZero() && time.Since(st.checkedAt) < reuseFor {
		return st.last
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.timeout)
	defer cancel()
	rep, problems := st.deps.check(ctx, r)
	st.last, st.checkedAt = rep, time.Now()
	h.logChange(rep, problems)
	return rep
}

// logChange logs when readiness flips (and at the first check when not
// ready), with the causes, which the public answer does not show.
func (h *Handler) logChange(rep report, problems []string) {
	st := h.st
	ready := rep.Status == statusReady
	if st.wasReady != nil && *st.wasReady == ready {
		return
	}
	first := st.wasReady == nil
	st.wasReady = &ready
	switch {
	case !ready:
		h.logger.Warn("not ready: /readyz answers 503", zap.Strings("problems", problems), zap.Any("checks", rep.Checks))
	case !first:
		h.logger.Info("ready again: /readyz answers 200", zap.Any("checks", rep.Checks))
	}
}

// findDependencies walks this config's http app for the handlers whose
// dependencies it checks. The routes are provisioned by the first request.
func (h *Handler) findDependencies() *dependencies {
	d := &dependencies{}
	app, err := h.ctx.App("http")
	if err != nil {
		h.logger.Error("cannot read the http app: readiness sees no dependency", zap.Error(err))
		return d
	}
	if httpApp, ok := app.(*caddyhttp.App); ok {
		for _, srv := range httpApp.Servers {
			d.walk(srv.Routes)
			if srv.Errors != nil {
				d.walk(srv.Errors.Routes)
			}
		}
	}
	d.connect(h.logger)
	return d
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
