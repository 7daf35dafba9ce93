package azenratelimit

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/azen-sh/gateway/internal/ratespec"
)

// UnmarshalCaddyfile reads the azen_ratelimit directive:
//
//	azen_ratelimit {
//		redis           <url>                  # default: none (in-process limiter); {env.NAME} expanded at start
//		key             <placeholder>          # default {azen.key_id}; {client_ip} for anonymous routes
//		rate            <count>/<unit>         # default 60/m; unit s, m, h, d or a duration such as 10s
//		burst           <n>                    # default: the rate's count
//		tier <name>     <count>/<unit> [burst <n>]   # repeatable, one per tier name
//		cost            <n>                    # default 1; at most every burst
//		timeout         <duration>             # default 50ms, per Redis call
//		on_redis_error  local|allow|deny       # default local
//		min_gateways    <n>                    # default 1; local mode divides by at least n
//	}
//
// Every subdirective but tier may appear once. The block may be omitted
// (all defaults).
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.Errf("azen_ratelimit takes no arguments on its line, only a block; got %q", d.Val())
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		sub := d.Val()
		if sub != "tier" {
			if seen[sub] {
				return d.Errf("duplicate subdirective %q", sub)
			}
			seen[sub] = true
		}
		switch sub {
		case "redis", "key", "on_redis_error":
			var v string
			if !d.AllArgs(&v) {
				return d.Errf("%s takes exactly one value", sub)
			}
			switch sub {
			case "redis":
				h.Redis = v
			case "key":
				h.Key = v
			case "on_redis_error":
				h.OnRedisError = v
			}
		case "rate":
			var v string
			if !d.AllArgs(&v) {
				return d.Errf("%s takes exactly one value", sub)
			}
			if _, err := ratespec.ParseRate(v); err != nil {
				return d.Errf("%v", err)
			}
			h.Rate = v
		case "burst", "cost", "min_gateways":
			var v string
			if !d.AllArgs(&v) {
				return d.Errf("%s takes exactly one value", sub)
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return d.Errf("%s must be a whole number of at least 1, got %q", sub, v)
			}
			switch sub {
			case "burst":
				h.Burst = n
			case "cost":
				h.Cost = n
			default:
				h.MinGateways = n
			}
		case "timeout":
			var v string
			if !d.AllArgs(&v) {
				return d.Errf("%s takes exactly one value", sub)
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("timeout must be a positive duration such as 50ms, got %q", v)
			}
			h.Timeout = caddy.Duration(dur)
		case "tier":
			args := d.RemainingArgs()
			if len(args) != 2 && len(args) != 4 {
				return d.Err("tier wants: tier NAME RATE [burst N]")
			}
			name := args[0]
			if !ratespec.ValidTierName(name) {
				return d.Errf("tier name %q: %s", name, ratespec.TierNameRule)
			}
			if _, dup := h.Tiers[name]; dup {
				return d.Errf("duplicate tier %q", name)
			}
			text := strings.Join(args[1:], " ")
			if _, err := ratespec.ParsePolicy(text); err != nil {
				return d.Errf("tier %s: %v", name, err)
			}
			if h.Tiers == nil {
				h.Tiers = map[string]string{}
			}
			h.Tiers[name] = text
		default:
			return d.Errf("unknown subdirective %q (want redis, key, rate, burst, tier, cost, timeout, on_redis_error or min_gateways)", sub)
		}
	}
	// Every rule on the values (cost against the bursts, rates too fine to
	// apply exactly, ranges) is Validate's, run as at provision.
	probe := *h
	if err := probe.applyDefaults(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
