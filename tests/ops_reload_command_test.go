package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/azen-sh/gateway/internal/testenv"
)

// TestDocumentedReloadCommandKeepsTheSite runs docs/deploy.md's reload
// command for a host or VM, as written there, from a bare shell (no AZEN_
// variable): it reads the gateway's environment file first, so the site
// stays on its address. The same reload without that file would adapt
// {$AZEN_SITE_ADDRESS::8080} to :8080, which the documented adapt check
// shows.
func TestDocumentedReloadCommandKeepsTheSite(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	hostCmd := regexp.MustCompile("`(set -a; \\. /etc/azen/gateway\\.env; set \\+a; azen-gateway reload [^`]+)`").FindSubmatch(doc)
	adaptCmd := regexp.MustCompile("`(azen-gateway adapt --config Caddyfile \\| grep [^`]+)`").FindSubmatch(doc)
	if hostCmd == nil || adaptCmd == nil {
		t.Fatal("docs/deploy.md no longer gives the host reload command or the adapt check this test runs")
	}

	bin, _ := testenv.Binaries(t)
	env := map[string]string{
		"AZEN_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "azen.db"),
		"AZEN_GATEWAY_SECRET": testenv.GatewaySecret(),
		"AZEN_BACKENDS":       fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
	}
	gw := testenv.StartGateway(t, shippedCaddyfile(t), env)

	// The gateway's service environment file, as /etc/azen/gateway.env.
	dir := t.TempDir()
	envFile := filepath.Join(dir, "gateway.env")
	var lines []string
	for k, v := range map[string]string{
		"AZEN_SITE_ADDRESS": fmt.Sprintf(":%d", gw.Port), "AZEN_ADMIN_ADDR": gw.AdminAddr,
		"AZEN_DATABASE_URL": env["AZEN_DATABASE_URL"], "AZEN_GATEWAY_SECRET": env["AZEN_GATEWAY_SECRET"], "AZEN_BACKENDS": env["AZEN_BACKENDS"],
	} {
		lines = append(lines, k+"="+v)
	}
	if err := os.WriteFile(envFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(shippedCaddyfile(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	bare := func(script string) (string, error) {
		script = strings.NewReplacer("/etc/azen/gateway.env", envFile, "/etc/azen/Caddyfile", caddyfile,
			"--config Caddyfile", "--config "+caddyfile, "azen-gateway ", bin+" ").Replace(script)
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir} // a bare shell
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	t.Run("from a bare shell, adapt shows the trap: the site would move to :8080", func(t *testing.T) {
		out, err := bare(string(adaptCmd[1]))
		if err != nil || !strings.Contains(out, `"listen":[":8080"]`) {
			t.Fatalf("adapt from a bare shell: %v\n%s", err, out)
		}
	})
	t.Run("the documented host command reloads and the site stays where it was", func(t *testing.T) {
		if out, err := bare(string(hostCmd[1]) + " --force"); err != nil {
			t.Fatalf("the documented reload failed: %v\n%s", err, out)
		}
		cfg := call(t, "GET", "http://"+gw.AdminAddr+"/config/apps/http/servers")
		if want := fmt.Sprintf(`"listen":[":%d"]`, gw.Port); !strings.Contains(string(cfg.raw), want) || strings.Contains(string(cfg.raw), ":8080") {
			t.Fatalf("after the reload the servers are %s, want %s", cfg.raw, want)
		}
		if r := call(t, "GET", gw.URL+"/healthz"); r.status != 200 {
			t.Fatalf("/healthz on the site's address after the reload: %s", r)
		}
	})
}
