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
