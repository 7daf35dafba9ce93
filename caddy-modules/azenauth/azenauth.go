// Package azenauth is the azen_auth module: it checks the azen-api-key header
// against the key store (contract §4). This is the foundation's placeholder;
// the authentication issue fills it in.
package azenauth

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	_ "golang.org/x/sync/singleflight" // used by the authentication issue
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("azen_auth", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("azen_auth", httpcaddyfile.Before, "basic_auth")
}

// Handler authenticates requests by API key.
type Handler struct {
	Database       string         `json:"database,omitempty"`
	Redis          string         `json:"redis,omitempty"`
	Secret         string         `json:"secret,omitempty"`
	CacheTTL       caddy.Duration `json:"cache_ttl,omitempty"`
	FailedAttempts string         `json:"failed_attempts,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.azen_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// ServeHTTP passes requests on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

// UnmarshalCaddyfile reads the azen_auth block.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	for d.NextBlock(0) {
		switch d.Val() {
		case "database", "redis", "secret", "cache_ttl", "failed_attempts":
			if !d.NextArg() {
				return d.ArgErr()
			}
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
