package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/azen-sh/gateway/internal/version"
)

// docsPointer is where every help text of ours sends the reader.
const docsPointer = `Azen's documentation: README.md and docs/ in the azen-gateway sources
(docs/deploy.md: running and reloading; docs/auth.md: keys and azen_auth;
docs/ratelimit.md: azen_ratelimit). Caddy's commands and options:
https://caddyserver.com/docs/command-line`

// longDescription replaces Caddy's own in the help of every command.
const longDescription = `azen-gateway is the API edge of Azen's memory API: Caddy v2 with its
standard modules plus Azen's (azen_auth, azen_permissions, azen_ratelimit,
azen_cors, azen_drain, azen_error, azen_request_id, azen_ready). Caddy's
own commands (run, reload, validate, adapt, fmt, ...) work as in Caddy;
keys manages Azen's API keys.

` + docsPointer

// examples are the commands an operator starts with.
const examples = `  azen-gateway run --config Caddyfile
  azen-gateway validate --config Caddyfile
  azen-gateway reload --config Caddyfile --address localhost:2019
  AZEN_DATABASE_URL=sqlite:/srv/azen/azen.db azen-gateway keys list
  azen-gateway version`

func isVersion(args []string) bool {
	return len(args) == 1 && (args[0] == "version" || args[0] == "--version" || args[0] == "-v")
}

func isRootHelp(args []string) bool {
	return len(args) == 0 || len(args) == 1 && (args[0] == "help" || args[0] == "--help" || args[0] == "-h")
}

// versionLine is ours, with Caddy's version, which Caddy's `version`
// command would print alone.
func versionLine() string {
	caddyVersion, _ := caddy.Version()
	return version.String(binaryName, "Caddy "+caddyVersion)
}

// rootHelp is the overview under our name: Caddy's root help would show its
// own examples (`caddy run`) and point to its documentation only.
func rootHelp() string {
	cmds := caddycmd.Commands()
	names := make([]string, 0, len(cmds))
	width := 0
	for name := range cmds {
		names = append(names, name)
		width = max(width, len(name))
	}
	slices.Sort(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nUsage:\n  %s <command> [flags]\n\nCommands:\n", longDescription, binaryName)
	for _, name := range names {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, name, cmds[name].Short)
	}
	fmt.Fprintf(&b, "\nExamples:\n%s\n\n`%s help <command>` (or `%s <command> --help`) describes one command.\n",
		examples, binaryName, binaryName)
	return b.String()
}
