package azenerror

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("azen_error", parseError)
	httpcaddyfile.RegisterDirectiveOrder("azen_error", httpcaddyfile.After, "error")
	httpcaddyfile.RegisterHandlerDirective("azen_request_id", parseRequestID)
	httpcaddyfile.RegisterDirectiveOrder("azen_request_id", httpcaddyfile.Before, "tracing")
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	azen_error [<matcher>] [<status>] [<message>]
//
// Without arguments (inside handle_errors) the handled error is mapped to the
// contract. A lone argument of three digits is a status, anything else is a
// message. Placeholders are allowed in both.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	args := d.RemainingArgs()
	switch len(args) {
	case 0:
	case 1:
		if looksLikeStatus(args[0]) {
			h.StatusCode = caddyhttp.WeakString(args[0])
		} else {
			h.Message = args[0]
		}
	case 2:
		if !looksLikeStatus(args[0]) {
			return d.Errf("azen_error: first argument must be an HTTP status, got %q", args[0])
		}
		h.StatusCode = caddyhttp.WeakString(args[0])
		h.Message = args[1]
	default:
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("azen_error: takes no block, found %q", d.Val())
	}
	return nil
}

func looksLikeStatus(s string) bool {
	if len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}' {
		return true // a placeholder
	}
	n, err := strconv.Atoi(s)
	return err == nil && len(s) == 3 && n >= 100
}

func parseError(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var e Handler
	err := e.UnmarshalCaddyfile(h.Dispenser)
	return &e, err
}

func parseRequestID(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next()
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	if h.NextBlock(0) {
		return nil, h.Errf("azen_request_id: takes no block, found %q", h.Val())
	}
	return RequestID{}, nil
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
