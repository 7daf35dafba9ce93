package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The backend shares code with the gateway only through internal/ (one key
// store, one session store, one contract); it never imports the gateway's
// Caddy modules.
func TestBackendNeverImportsCaddyModules(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list gave %d packages; the check is broken", len(deps))
	}
	for _, p := range deps {
		if strings.Contains(p, "/caddy-modules/") || strings.Contains(p, "/caddyhttp") {
			t.Errorf("azen-backend imports %s", p)
		}
	}
}
