// Package version says which build of azen-gateway or azen-backend runs.
//
// `make build` sets both variables from git:
//
//	go build -ldflags "-X github.com/azen-sh/gateway/internal/version.Version=v1.2.0 \
//	  -X github.com/azen-sh/gateway/internal/version.Commit=2732ae4b0c1d" ./gateway
//
// A plain `go build` leaves Version "dev" and takes the commit from what Go
// stamped into the binary (vcs.revision, when it built inside a git
// checkout with VCS stamping on), else "unknown".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release, set with -ldflags -X; "dev" when not set.
var Version = "dev"

// Commit is the git commit built, set with -ldflags -X; empty means the
// one in the build information.
var Commit = ""

// Revision is the commit this binary was built from, with "+modified" when
// Go recorded uncommitted changes, or "unknown".
func Revision() string {
	if Commit != "" {
		return Commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	if rev == "" {
		return "unknown"
	}
	return rev + modified
}

// String is the line `BINARY version` prints: our version and commit, then
// any extra component (such as Caddy's version) and the Go toolchain.
func String(binary string, extra ...string) string {
	s := fmt.Sprintf("%s %s (commit %s", binary, Version, Revision())
	for _, e := range extra {
		s += ", " + e
	}
	return s + ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}
