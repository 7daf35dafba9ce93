package azenauth

import (
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/ratespec"
	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/sqldb"
)

// UnmarshalCaddyfile reads the azen_auth block:
//
//	azen_auth [<matcher>] {
//		database        <url>        # default sqlite:azen.db
//		redis           <url>        # default none: revocation within cache_ttl
//		secret          <secret>     # required, at least 32 bytes
//		cache_ttl       <duration>   # default 30s
//		cache_size      <entries>    # default 100000
//		failed_attempts <COUNT/UNIT> # default 20/m
//		max_body        <size>       # default 1MiB
//		usage_flush     <duration>   # default 10s, at most 10s
//	}
//
// Each subdirective takes one value and may appear once. Values may be
// {env.NAME} placeholders, expanded at provision (so secrets stay out of
// adapted JSON); literal values are checked here, with file and line.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.Errf("azen_auth takes no arguments on its line, only a block; got %q", d.Val())
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		switch name {
		case "database", "redis", "secret", "cache_ttl", "cache_size", "failed_attempts", "max_body", "usage_flush":
		default:
			return d.Errf("azen_auth: unknown subdirective %q (want database, redis, secret, cache_ttl, cache_size, failed_attempts, max_body or usage_flush)", name)
		}
		if seen[name] {
			return d.Errf("azen_auth: %s given more than once", name)
		}
		seen[name] = true
		var val string
		if !d.AllArgs(&val) {
			return d.Errf("azen_auth: %s takes exactly one value", name)
		}
		literal := !strings.Contains(val, "{")
		switch name {
		case "database":
			if literal {
				if _, err := sqldb.Parse(val); err != nil {
					return d.Errf("azen_auth: database: %v", err)
				}
			}
			h.Database = val
		case "redis":
			if literal {
				if _, err := redisconn.Parse(val); err != nil {
					return d.Errf("azen_auth: redis: %v", err)
				}
			}
			h.Redis = val
		case "secret":
			if literal && len(val) < contract.MinSecretLen {
				return d.Errf("azen_auth: secret must be at least %d bytes, got %d (better: secret {env.AZEN_GATEWAY_SECRET})", contract.MinSecretLen, len(val))
			}
			h.Secret = val
		case "cache_ttl":
			dur, err := caddy.ParseDuration(val)
			if err != nil {
				return d.Errf("azen_auth: cache_ttl %q: not a duration such as 30s", val)
			}
			if dur <= 0 {
				return d.Errf("azen_auth: cache_ttl must be positive, got %q", val)
			}
			h.CacheTTL = caddy.Duration(dur)
		case "cache_size":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return d.Errf("azen_auth: cache_size must be a whole number of at least 1, got %q", val)
			}
			h.CacheSize = n
		case "max_body":
			n, err := humanize.ParseBytes(val)
			if err != nil || n < 1 {
				return d.Errf("azen_auth: max_body must be a size from 1B to 1GiB such as 1MiB, got %q", val)
			}
			h.MaxBody = int64(n)
		case "usage_flush":
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur <= 0 {
				return d.Errf("azen_auth: usage_flush must be a duration from 1ms to 10s, got %q", val)
			}
			h.UsageFlush = caddy.Duration(dur)
		case "failed_attempts":
			if literal {
				if _, err := ratespec.ParseRate(val); err != nil {
					return d.Errf("azen_auth: failed_attempts: %v", err)
				}
			}
			h.FailedAttempts = val
		}
	}
	if err := h.checkRanges(); err != nil {
		return d.Err(err.Error())
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
