// Command benchfloor is azen-gateway plus one handler for the benchmark only,
// bench_contract_headers: it does what the contract makes every admitted
// request carry and nothing else. It removes the key header, adds the eight
// request headers the backend receives (contract §4: the signed identity and
// X-Request-Id) and the six response headers a client receives (§4 and §5:
// X-Request-Id, X-RateLimit-*, RateLimit, RateLimit-Policy), each with a
// fixed value of the real length, then calls the next handler.
//
// scripts/bench-gateway.sh runs it as the "floor" gateway: bare Caddy's
// reverse_proxy with the contract's headers. What the full gateway costs
// beyond that floor is the cost of our code; what the floor costs beyond bare
// is the cost of the headers the contract asks for.
//
// An argument picks another set, to see which headers cost what
// (FLOOR=request or FLOOR=compact for the script):
//
//	bench_contract_headers            the contract's 8 + 6 (the default)
//	bench_contract_headers request    only the 8 request headers, and X-Request-Id back
//	bench_contract_headers compact    what a smaller contract would carry: X-Request-Id and one
//	                                  signed identity header up; X-Request-Id, RateLimit and
//	                                  RateLimit-Policy back
package main

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/azen-sh/gateway/caddy-modules/all"
)

func init() {
	caddy.RegisterModule(contractHeaders{})
	httpcaddyfile.RegisterHandlerDirective("bench_contract_headers", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		h.Next()
		var c contractHeaders
		if h.NextArg() {
			c.Set = h.Val()
		}
		if h.NextArg() {
			return nil, h.ArgErr()
		}
		switch c.Set {
		case "", "contract", "request", "compact":
			return c, nil
		}
		return nil, h.Errf("unknown header set %q: want contract, request or compact", c.Set)
	})
	httpcaddyfile.RegisterDirectiveOrder("bench_contract_headers", httpcaddyfile.Before, "reverse_proxy")
}

func main() { caddycmd.Main() }

type contractHeaders struct {
	Set string `json:"set,omitempty"` // contract (""), request or compact
}

func (contractHeaders) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.bench_contract_headers",
		New: func() caddy.Module { return contractHeaders{} },
	}
}

const (
	uuid   = "0b7b3c1e-5e2a-4a39-9f59-3f2d6f1f8a11"
	hex32  = "917ab7a9675a86671f5729d5a1691030"
	hex64  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	policy = `"default";q=6000000;w=60`
)

func (c contractHeaders) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	delete(r.Header, "Azen-Api-Key")
	rq, rs := r.Header, w.Header()
	rq["X-Request-Id"] = []string{hex32}
	rs["X-Request-Id"] = []string{hex32}
	if c.Set == "compact" {
		rq["Azen-Identity"] = []string{"v2;" + uuid + ";bench;" + uuid + ";key;1796132585;" + hex64 + ";" + hex64}
		rs["Ratelimit"] = []string{`"default";r=99999;t=1`}
		rs["Ratelimit-Policy"] = []string{policy}
		return next.ServeHTTP(w, r)
	}
	rq["Azen-Organization-Id"] = []string{uuid}
	rq["Azen-User-Id"] = []string{"bench"}
	rq["Azen-Key-Id"] = []string{uuid}
	rq["Azen-Credential"] = []string{"key"}
	rq["Azen-Timestamp"] = []string{"1796132585"}
	rq["Azen-Body-Sha256"] = []string{hex64}
	rq["Azen-Signature"] = []string{hex64}
	if c.Set == "request" {
		return next.ServeHTTP(w, r)
	}
	rs["X-Ratelimit-Limit"] = []string{"6000000"}
	rs["X-Ratelimit-Remaining"] = []string{"99999"}
	rs["X-Ratelimit-Reset"] = []string{"1"}
	rs["Ratelimit"] = []string{`"default";r=99999;t=1`}
	rs["Ratelimit-Policy"] = []string{policy}
	return next.ServeHTTP(w, r)
}

var _ caddyhttp.MiddlewareHandler = contractHeaders{}
