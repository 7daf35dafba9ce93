package azenauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/contract"
)

func init() {
	caddy.RegisterModule(Permissions{})
	httpcaddyfile.RegisterHandlerDirective("azen_permissions", parsePermissionsCaddyfile)
	// After azen_auth and before azen_ratelimit, without an `order` line.
	// Caddy inserts a directive right next to the standard one it names, so
	// two plug-ins placed relative to the same directive end up in reverse
	// registration order for After and in registration order for Before.
	// azen_ratelimit is `After basic_auth` from another package, whose init
	// may run before or after this one: `After basic_auth` here could land
	// on either side of it. `Before basic_auth` lands between azen_auth
	// (registered earlier, in azenauth.go's init: Go runs a package's files
	// in file-name order) and basic_auth, hence before azen_ratelimit
	// whatever the package order. TestDirectiveOrder checks the result.
	httpcaddyfile.RegisterDirectiveOrder("azen_permissions", httpcaddyfile.Before, "basic_auth")
}

// Permissions refuses with 403 a request whose caller lacks one of the
// required permissions (contract §10). It reads the caller azen_auth
// admitted (PrincipalFrom): the key's permissions as cached with the key,
// or the permissions of a session's role; it makes no lookup of its own.
// It must run after azen_auth on the same route; without a caller it
// answers 500 and logs why.
type Permissions struct {
	// Require lists the permissions the route needs; the caller must have
	// every one of them (memory:read, memory:write, keys:read, keys:write).
	// At least one.
	Require []string `json:"require,omitempty"`

	logger   *zap.Logger
	misuse   *logEvery // the 500 of a route without azen_auth is logged at most every 10 s
	required []string
}

// CaddyModule returns the Caddy module information.
func (Permissions) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.azen_permissions",
		New: func() caddy.Module { return new(Permissions) },
	}
}

// Provision checks the list (a JSON config may have been written by hand).
func (m *Permissions) Provision(ctx caddy.Context) error {
	m.logger = ctx.Logger()
	m.misuse = new(logEvery)
	required, err := checkRequired(m.Require)
	if err != nil {
		return fmt.Errorf("azen_permissions: %w", err)
	}
	m.required = required
	return nil
}

// checkRequired refuses an empty list, an unknown name and a repeat, and
// returns the list as given (the first one missing is the one named).
func checkRequired(list []string) ([]string, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("needs at least one permission (%s)", strings.Join(apikey.AllPermissions, ", "))
	}
	for i, p := range list {
		if !apikey.KnownPermission(p) {
			return nil, fmt.Errorf("unknown permission %q (known: %s)", p, strings.Join(apikey.AllPermissions, ", "))
		}
		for _, q := range list[:i] {
			if q == p {
				return nil, fmt.Errorf("permission %s given more than once", p)
			}
		}
	}
	return list, nil
}

// ServeHTTP passes the request on when the caller has every required
// permission.
func (m *Permissions) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	p := PrincipalFrom(r)
	if p == nil {
		if m.misuse.Allow(time.Now()) {
			m.logger.Error("azen_permissions found no caller on this request: put azen_auth before azen_permissions on every route that uses it, and do not use it on routes azen_auth leaves anonymous (sign-in, sign-up, the console's pages); answering 500 (logged at most every 10 s)",
				zap.String("path", r.URL.Path), zap.Strings("require", m.required))
		}
		return caddyhttp.Error(http.StatusInternalServerError,
			errors.New("azen_permissions: no caller on the request (azen_auth did not run before it or admitted no credential)"))
	}
	for _, perm := range m.required {
		if !p.Has(perm) {
			return caddyhttp.Error(http.StatusForbidden, contract.Public(p.lacks(perm)))
		}
	}
	return next.ServeHTTP(w, r)
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Permissions)(nil)
	_ caddyhttp.MiddlewareHandler = (*Permissions)(nil)
)
