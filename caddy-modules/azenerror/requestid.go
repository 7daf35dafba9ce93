package azenerror

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/azen-sh/gateway/internal/contract"
)

func init() {
	caddy.RegisterModule(RequestID{})
}

// RequestID keeps a sane client-sent X-Request-Id or replaces it with a new
// one, sets it on the request (so reverse_proxy passes it upstream and the
// access log records it) and on the response, including error responses.
// The id is also published as the placeholder {azen.request_id}.
type RequestID struct{}

// CaddyModule returns the Caddy module information.
func (RequestID) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.azen_request_id",
		New: func() caddy.Module { return new(RequestID) },
	}
}

// ServeHTTP sets the id and calls next.
func (RequestID) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	id := contract.EnsureRequestID(w, r)
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("azen.request_id", id)
	}
	return next.ServeHTTP(w, r)
}

var _ caddyhttp.MiddlewareHandler = RequestID{}
