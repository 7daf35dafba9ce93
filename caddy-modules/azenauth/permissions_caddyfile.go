package azenauth

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/azen-sh/gateway/internal/apikey"
)

// UnmarshalCaddyfile reads the directive:
//
//	azen_permissions [<matcher>] <permission>...
//
// One or more of memory:read, memory:write, keys:read, keys:write, each
// once, all required. No block, no placeholders: a route's needs are fixed
// when the config is written.
func (m *Permissions) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	var list []string
	for d.NextArg() {
		list = append(list, d.Val())
	}
	if d.Next() {
		if d.Val() == "{" {
			return d.Errf("azen_permissions takes no block, only permissions on its line: azen_permissions [<matcher>] %s", apikey.MemoryRead)
		}
		// A handler directive gets its own segment; anything after the
		// line is a caller's mistake.
		return d.Errf("azen_permissions: unexpected %q after the permissions", d.Val())
	}
	if _, err := checkRequired(list); err != nil {
		return d.Errf("azen_permissions: %v", err)
	}
	m.Require = list
	return nil
}

func parsePermissionsCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Permissions
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// Interface guard.
var _ caddyfile.Unmarshaler = (*Permissions)(nil)
