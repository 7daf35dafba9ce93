// Package all plugs every Azen Caddy module into a binary that imports it.
package all

import (
	_ "github.com/azen-sh/gateway/caddy-modules/azenauth"      // azen_auth, `keys` command
	_ "github.com/azen-sh/gateway/caddy-modules/azencors"      // azen_cors
	_ "github.com/azen-sh/gateway/caddy-modules/azendrain"     // azen_drain listener wrapper
	_ "github.com/azen-sh/gateway/caddy-modules/azenerror"     // azen_error, azen_request_id
	_ "github.com/azen-sh/gateway/caddy-modules/azenratelimit" // azen_ratelimit
	_ "github.com/azen-sh/gateway/caddy-modules/azenready"     // azen_ready (GET /readyz)
)
