package azenready

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// UnmarshalCaddyfile reads the azen_ready directive:
//
//	azen_ready [<matcher>] {
//		timeout <duration>   # each check's limit; default 1s
//	}
//
// The block is optional.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.Errf("azen_ready takes no arguments on its line, got %q", d.Val())
	}
	seen := false
	for d.NextBlock(0) {
		if d.Val() != "timeout" {
			return d.Errf("azen_ready: unknown subdirective %q (want timeout)", d.Val())
		}
		if seen {
			return d.Errf("azen_ready: timeout given more than once")
		}
		seen = true
		args := d.RemainingArgs()
		if len(args) != 1 {
			return d.Errf("azen_ready: timeout takes one duration, such as 1s")
		}
		dur, err := caddy.ParseDuration(args[0])
		if err != nil || dur <= 0 {
			return d.Errf("azen_ready: timeout %q: want a positive duration such as 1s", args[0])
		}
		h.Timeout = caddy.Duration(dur)
	}
	return nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	r := new(Handler)
	err := r.UnmarshalCaddyfile(h.Dispenser)
	return r, err
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
