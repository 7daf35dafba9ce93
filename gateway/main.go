// Command azen-gateway is Caddy with its standard modules plus Azen's
// (caddy-modules/all): azen_auth, azen_permissions, azen_ratelimit,
// azen_cors, azen_drain, azen_error, azen_request_id, azen_ready, and the
// `keys` subcommand.
//
// Before it hands over to Caddy's command line, main answers what is ours:
// `version`, the overview help under our name, and a check of the AZEN_*
// variables a config names, so that a bad one stops the start with one line
// naming it rather than at the end of Caddy's provisioning chain.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	_ "time/tzdata"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/azen-sh/gateway/caddy-modules/all"
	"github.com/azen-sh/gateway/internal/redisconn"
)

const binaryName = "azen-gateway"

func main() {
	caddy.CustomBinaryName = binaryName
	caddy.CustomLongDescription = longDescription
	// go-redis's own lines (failed dials while Redis is down) join Caddy's log.
	redisconn.SetLogger(func(_ context.Context, msg string) {
		caddy.Log().Named("redis").Warn(msg)
	})
	if done, code := answerOurs(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); done {
		os.Exit(code)
	}
	caddycmd.Main()
}

// answerOurs handles what main answers itself; done false hands over to Caddy.
func answerOurs(args []string, getenv func(string) string, stdout, stderr io.Writer) (done bool, code int) {
	switch {
	case isVersion(args):
		fmt.Fprintln(stdout, versionLine())
		return true, 0
	case isRootHelp(args):
		fmt.Fprint(stdout, rootHelp())
		return true, 0
	}
	if err := checkEnvironment(args, getenv); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", binaryName, err)
		return true, caddy.ExitCodeFailedStartup
	}
	return false, 0
}
