package azenratelimit

import (
	"strconv"
	"strings"
	"time"

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
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			switch sub {
			case "redis":
				h.Redis = v
			case "key":
				h.Key = v
			case "on_redis_error":
				if v != "local" && v != "allow" && v != "deny" {
					return d.Errf("on_redis_error must be local, allow or deny, got %q", v)
				}
				h.OnRedisError = v
			}
		case "rate":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			if _, err := ratespec.ParseRate(v); err != nil {
				return d.Errf("%v", err)
			}
			h.Rate = v
		case "burst", "cost", "min_gateways":
			v, err := oneArg(d)
			if err != nil {
				return err
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
				if n > maxMinGateways {
					return d.Errf("min_gateways must be at most %d, got %d", maxMinGateways, n)
				}
				h.MinGateways = n
			}
		case "timeout":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("timeout must be a positive duration such as 50ms, got %q", v)
			}
			if dur > time.Minute {
				return d.Errf("timeout %s is too long for a per-request call; use at most 1m", dur)
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
	if err := h.checkCost(d); err != nil {
		return err
	}
	// The rest (rates too fine to apply exactly) is checked as at provision.
	probe := *h
	probe.Tiers = h.Tiers
	if err := probe.applyDefaults(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// checkCost refuses a cost no request could ever pay, naming the policy.
func (h *Handler) checkCost(d *caddyfile.Dispenser) error {
	cost := max(1, h.Cost)
	rate := h.Rate
	if rate == "" {
		rate = DefaultRate
	}
	r, _ := ratespec.ParseRate(rate)
	burst := h.Burst
	if burst == 0 {
		burst = r.Count
	}
	if cost > burst {
		return d.Errf("cost %d is above the burst %d: no request could ever pass", cost, burst)
	}
	for name, text := range h.Tiers {
		p, _ := ratespec.ParsePolicy(text)
		b := p.Burst
		if b == 0 {
			b = p.Count
		}
		if cost > b {
			return d.Errf("cost %d is above tier %s's burst %d: no request could ever pass", cost, name, b)
		}
	}
	return nil
}

// oneArg reads exactly one argument for the current subdirective.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	sub := d.Val()
	if !d.NextArg() {
		return "", d.Errf("%s needs a value", sub)
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.Errf("%s takes one value, got extra %q", sub, d.Val())
	}
	return v, nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
