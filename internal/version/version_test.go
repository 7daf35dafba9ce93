package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	oldV, oldC := Version, Commit
	defer func() { Version, Commit = oldV, oldC }()

	Version, Commit = "v1.2.0", "2732ae4b0c1d"
	if got, want := String("azen-gateway", "Caddy v2.11.9"), "azen-gateway v1.2.0 (commit 2732ae4b0c1d, Caddy v2.11.9, "+runtime.Version(); !strings.HasPrefix(got, want) {
		t.Errorf("got %q, want it to start with %q", got, want)
	}
	Version, Commit = "dev", ""
	if got := String("azen-backend"); !strings.HasPrefix(got, "azen-backend dev (commit ") {
		t.Errorf("unset version: %q", got)
	}
}
