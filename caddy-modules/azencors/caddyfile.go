package azencors

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// UnmarshalCaddyfile reads the azen_cors block:
//
//	azen_cors [<matcher>] {
//		origins       [<origin>...]   # scheme://host[:port] or *; none given: no origin (the default)
//		allow_headers <name>...       # beyond the SDK's; a name ending in * is a prefix
//		max_age       <duration>      # default 10m
//	}
//
// Each subdirective may appear once. `origins` may be given no value, so
// `origins {$AZEN_CORS_ORIGINS}` with the variable unset or empty means no
// origin. Every origin and header is checked here, with file and line.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.Errf("azen_cors takes no arguments on its line, only a block; got %q", d.Val())
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		switch name {
		case "origins", "allow_headers", "max_age":
		default:
			return d.Errf("azen_cors: unknown subdirective %q (want origins, allow_headers or max_age)", name)
		}
		if seen[name] {
			return d.Errf("azen_cors: %s given more than once", name)
		}
		seen[name] = true
		args := d.RemainingArgs()
		switch name {
		case "origins":
			h.Origins = args
		case "allow_headers":
			if len(args) == 0 {
				return d.Errf("azen_cors: allow_headers needs at least one header name")
			}
			h.AllowHeaders = args
		case "max_age":
			if len(args) != 1 {
				return d.Errf("azen_cors: max_age takes one duration, such as 10m")
			}
			dur, err := caddy.ParseDuration(args[0])
			if err != nil || dur <= 0 {
				return d.Errf("azen_cors: max_age %q: want a positive duration such as 10m", args[0])
			}
			h.MaxAge = caddy.Duration(dur)
		}
	}
	if _, err := newPolicy(h.Origins, h.AllowHeaders); err != nil {
		return d.Errf("azen_cors: %v", err)
	}
	return nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*Handler)(nil)
