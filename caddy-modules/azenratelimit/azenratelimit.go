// Package azenratelimit is the azen_ratelimit module: it enforces a GCRA limit per key (contract §5).
// This is the foundation's placeholder;
// the rate-limiting issue fills it in.
package azenratelimit

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	_ "github.com/go-redis/redis_rate/v10" // used by the rate-limiting issue
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("azen_ratelimit", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("azen_ratelimit", httpcaddyfile.After, "basic_auth")
}

// Handler authenticates requests by API key.
type Handler struct {
	Redis string `json:"redis,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.azen_ratelimit",
		New: func() caddy.Module { return new(Handler) },
	}
}

// ServeHTTP passes requests on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

// UnmarshalCaddyfile reads the azen_ratelimit block.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	for d.NextBlock(0) {
		switch d.Val() {
		case "redis", "key", "rate", "burst", "cost", "timeout", "on_redis_error":
			if !d.NextArg() {
				return d.ArgErr()
			}
		case "tier":
			d.RemainingArgs()
		default:
			return d.Errf("unknown subdirective %q", d.Val())
		}
	}
	return nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}
