// Package azencors is the azen_cors module: cross-origin use of the API
// from a browser (the Azen SDK in a web page, contract §9). It answers
// preflight OPTIONS requests itself, before authentication, for the origins
// the operator lists (none by default), and marks the actual responses to
// those origins as readable, exposing the request id and the rate-limit
// headers. Credentials (cookies) are never allowed cross-origin: keys
// travel in the azen-api-key header.
package azencors

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/azen-sh/gateway/caddy-modules/azenerror"
	"github.com/azen-sh/gateway/internal/contract"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("azen_cors", parseCaddyfile)
	// Right after try_files, so before basic_auth and before azen_auth
	// (which sits just before basic_auth): a preflight never meets
	// authentication. A plug-in can only be placed relative to a standard
	// directive; try_files is the last one before the auth directives.
	httpcaddyfile.RegisterDirectiveOrder("azen_cors", httpcaddyfile.After, "try_files")
}

// DefaultMaxAge is how long a browser may cache a preflight's answer.
const DefaultMaxAge = 10 * time.Minute

// Handler answers CORS preflights and adds CORS headers for allowed origins.
type Handler struct {
	// Origins allowed to call from a browser, as browsers send them in the
	// Origin header: scheme://host[:port]. "*" allows every origin (the
	// answer still names the caller's origin). Empty (the default): none;
	// every preflight is refused with 403.
	Origins []string `json:"origins,omitempty"`

	// AllowHeaders are request headers allowed beyond the SDK's
	// (azen-api-key, content-type, accept, x-request-id, x-stainless-*).
	// A name ending in * is a prefix.
	AllowHeaders []string `json:"allow_headers,omitempty"`

	// MaxAge is how long a browser may cache a preflight answer. Default
	// 10m; browsers cap it (Chromium at 2h).
	MaxAge caddy.Duration `json:"max_age,omitempty"`

	policy *policy
	maxAge string
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.azen_cors",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision checks the origins and headers and builds the policy.
func (h *Handler) Provision(caddy.Context) error {
	p, err := newPolicy(h.Origins, h.AllowHeaders)
	if err != nil {
		return fmt.Errorf("azen_cors: %w", err)
	}
	age := time.Duration(h.MaxAge)
	if age == 0 {
		age = DefaultMaxAge
	}
	if age < 0 {
		return fmt.Errorf("azen_cors: max_age must be positive, got %s", age)
	}
	h.policy = p
	h.maxAge = strconv.Itoa(int(age / time.Second))
	return nil
}

// ServeHTTP answers a preflight (204 for an allowed origin, method and
// headers; otherwise a 403 for handle_errors to render), and for any other
// request from an allowed origin sets the CORS response headers before
// passing it on, so they are on its errors too.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	w, _ = azenerror.EnsureRequestID(w, r)
	origin := r.Header.Get("Origin")
	preflight := r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != ""
	if h.policy.none() && !preflight {
		return next.ServeHTTP(w, r)
	}
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	if preflight {
		hdr.Add("Vary", "Access-Control-Request-Method")
		hdr.Add("Vary", "Access-Control-Request-Headers")
		return h.preflight(w, r, origin)
	}
	if origin != "" && h.policy.allowsOrigin(origin) {
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Set("Access-Control-Expose-Headers", exposeHeaders)
	}
	return next.ServeHTTP(w, r)
}

// preflight answers an OPTIONS preflight.
func (h *Handler) preflight(w http.ResponseWriter, r *http.Request, origin string) error {
	if !h.policy.allowsOrigin(origin) {
		return caddyhttp.Error(http.StatusForbidden, contract.Public(fmt.Sprintf(
			"Origin %s may not call this API from a browser (the gateway's azen_cors origins do not list it).", shorten(origin))))
	}
	method := r.Header.Get("Access-Control-Request-Method")
	if !strings.Contains(", "+allowMethods+", ", ", "+method+", ") {
		return caddyhttp.Error(http.StatusForbidden, contract.Public(fmt.Sprintf(
			"Method %s is not allowed in cross-origin requests (allowed: %s).", shorten(method), allowMethods)))
	}
	var requested []string
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for _, name := range strings.Split(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if !h.policy.allowsHeader(name) {
				return caddyhttp.Error(http.StatusForbidden, contract.Public(fmt.Sprintf(
					"Header %s is not allowed in cross-origin requests (add it to azen_cors allow_headers).", shorten(name))))
			}
			requested = append(requested, name)
		}
	}
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", origin)
	hdr.Set("Access-Control-Allow-Methods", allowMethods)
	if len(requested) > 0 {
		hdr.Set("Access-Control-Allow-Headers", strings.Join(requested, ", "))
	}
	hdr.Set("Access-Control-Max-Age", h.maxAge)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// shorten bounds client-sent text quoted in a message.
func shorten(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return strconv.Quote(s)
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
