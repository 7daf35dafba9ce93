package tests

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/azen-sh/gateway/internal/testenv"
)

// shippedCaddyfile is the repository's Caddyfile, as operators run it.
func shippedCaddyfile(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
