package tests

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// TestMakeRunAsANewUser runs the `make run` script as a newcomer would and
// then pastes the curl commands it prints: they must work. Ctrl-C (here
// SIGTERM, which the script treats alike) must stop everything.
func TestMakeRunAsANewUser(t *testing.T) {
	gwBin, _ := testenv.Binaries(t)
	site, backend, admin := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	env := map[string]string{
		"AZEN_DEV_DIR":      t.TempDir(),
		"AZEN_BIN_DIR":      filepath.Dir(gwBin),
		"AZEN_SITE_ADDRESS": fmt.Sprintf(":%d", site),
		"AZEN_BACKEND_ADDR": fmt.Sprintf("127.0.0.1:%d", backend),
		"AZEN_ADMIN_ADDR":   fmt.Sprintf("127.0.0.1:%d", admin),
	}
	script := filepath.Join(testenv.RepoRoot(t), "scripts", "dev-run.sh")
	p := testenv.StartProcess(t, "make run", "bash", []string{script}, env)

	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.Output(), "try it:") {
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("make run printed no curl example:\n%s", p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the rest of the banner
	var curls []string
	for _, line := range strings.Split(p.Output(), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "curl ") {
			curls = append(curls, line)
		}
	}
	if len(curls) < 2 || !strings.Contains(p.Output(), fmt.Sprintf("http://127.0.0.1:%d/api/v1", site)) {
		t.Fatalf("expected curl examples and the SDK base URL:\n%s", p.Output())
	}
	for _, c := range curls {
		out, err := exec.Command("bash", "-c", c).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"status":"success"`) {
			t.Fatalf("pasted %q: %v\n%s", c, err, out)
		}
	}

	// The printed development login signs in to the printed console URL,
	// straight into its organization.
	var consoleURL, email, password string
	for _, line := range strings.Split(p.Output(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "console:"); ok {
			consoleURL = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "development login:"); ok {
			email, password, _ = strings.Cut(strings.TrimSpace(v), " / ")
		}
	}
	if consoleURL != fmt.Sprintf("http://127.0.0.1:%d/console/", site) || email == "" || password == "" {
		t.Fatalf("no console URL and development login printed:\n%s", p.Output())
	}
	dev := newPerson(t)
	r := dev.must(200, "POST", fmt.Sprintf("http://127.0.0.1:%d/auth/sign-in", site), fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	if r.body["activeOrganizationId"] == nil {
		t.Fatalf("the development login has no organization: %s", r.raw)
	}
	if keys := dev.must(200, "GET", fmt.Sprintf("http://127.0.0.1:%d/console/api/keys", site), "").body["keys"].([]any); len(keys) != 1 {
		t.Fatalf("the development key is not in the development organization: %v", keys)
	}
	if page := dev.do("GET", consoleURL, ""); page.status != 303 || page.header.Get("Location") != "/console/keys" {
		t.Fatalf("the console URL answered %d %q", page.status, page.header.Get("Location"))
	}

	p.Signal(syscall.SIGTERM)
	if err := p.Wait(15 * time.Second); err != nil && !strings.Contains(err.Error(), "exit status") {
		t.Fatalf("make run did not stop: %v", err)
	}
	if !strings.Contains(p.Output(), "stopped") {
		t.Errorf("no clean stop:\n%s", p.Output())
	}
	for _, port := range []int{site, backend} {
		waitFor(t, fmt.Sprintf("port %d to be released", port), func() bool {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				c.Close()
			}
			return err != nil
		})
	}
}
