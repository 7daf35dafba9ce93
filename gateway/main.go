// Command azen-gateway is Caddy with its standard modules plus Azen's:
// azen_auth, azen_ratelimit, azen_error and the `keys` subcommand.
package main

import (
	_ "time/tzdata"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/azen-sh/gateway/caddy-modules/all"
)

func main() {
	caddycmd.Main()
}
