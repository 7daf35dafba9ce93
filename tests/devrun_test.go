package tests

import (
	"fmt"
	"net"
	"os"
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
	devDir := t.TempDir()
	// A previous run's logs: kept as *.log.1, not overwritten.
	for _, f := range []string{"gateway.log", "backend.log"} {
		if err := os.WriteFile(filepath.Join(devDir, f), []byte("the previous run\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		"AZEN_DEV_DIR":      devDir,
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

	// The printed keys line lists the development key, pasted from anywhere.
	var keysLine string
	for _, line := range strings.Split(p.Output(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "keys:"); ok {
			keysLine = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(keysLine, "AZEN_DATABASE_URL=sqlite:"+devDir+"/azen.db ") || !strings.HasSuffix(keysLine, "/azen-gateway keys list") {
		t.Fatalf("no exact keys list line printed:\n%s", p.Output())
	}
	listing := exec.Command("bash", "-c", keysLine)
	listing.Dir = t.TempDir()
	if out, err := listing.CombinedOutput(); err != nil || !strings.Contains(string(out), "make run") {
		t.Fatalf("pasted %q: %v\n%s", keysLine, err, out)
	}
	if !strings.Contains(p.Output(), "AZEN_SITE_ADDRESS=:9080 AZEN_BACKEND_ADDR=127.0.0.1:9081 AZEN_ADMIN_ADDR=localhost:9019 make run") {
		t.Errorf("make run does not say how to change its ports:\n%s", p.Output())
	}
	for _, f := range []string{"gateway.log", "backend.log"} {
		prev, err := os.ReadFile(filepath.Join(devDir, f+".1"))
		if err != nil || string(prev) != "the previous run\n" {
			t.Errorf("the previous %s was not kept as %s.1: %q %v", f, f, prev, err)
		}
		if cur, _ := os.ReadFile(filepath.Join(devDir, f)); len(cur) == 0 || strings.Contains(string(cur), "the previous run") {
			t.Errorf("%s is not this run's: %q", f, cur)
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
	if r.session().ActiveOrganizationID == nil {
		t.Fatalf("the development login has no organization: %s", r.raw)
	}
	if keys := dev.must(200, "GET", fmt.Sprintf("http://127.0.0.1:%d/console/api/keys", site), "").keys(); len(keys) != 1 {
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

// TestMakeRunRefusesBusyPorts: with any of its three ports taken (here by
// a plain listener; a second gateway would share it silently, since Caddy
// binds with SO_REUSEPORT), make run starts nothing and says which port,
// which variable, and how to choose others.
func TestMakeRunRefusesBusyPorts(t *testing.T) {
	gwBin, _ := testenv.Binaries(t)
	script := filepath.Join(testenv.RepoRoot(t), "scripts", "dev-run.sh")
	for _, busy := range []string{"AZEN_SITE_ADDRESS", "AZEN_BACKEND_ADDR", "AZEN_ADMIN_ADDR"} {
		t.Run(busy, func(t *testing.T) {
			ln := mustListen(t, "127.0.0.1:0")
			defer ln.Close()
			taken := ln.Addr().(*net.TCPAddr).Port
			ports := map[string]int{"AZEN_SITE_ADDRESS": testenv.FreePort(t), "AZEN_BACKEND_ADDR": testenv.FreePort(t), "AZEN_ADMIN_ADDR": testenv.FreePort(t)}
			ports[busy] = taken
			devDir := t.TempDir()
			cmd := exec.Command("bash", script)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AZEN_DEV_DIR=" + devDir, "AZEN_BIN_DIR=" + filepath.Dir(gwBin),
				fmt.Sprintf("AZEN_SITE_ADDRESS=:%d", ports["AZEN_SITE_ADDRESS"]),
				fmt.Sprintf("AZEN_BACKEND_ADDR=127.0.0.1:%d", ports["AZEN_BACKEND_ADDR"]),
				fmt.Sprintf("AZEN_ADMIN_ADDR=127.0.0.1:%d", ports["AZEN_ADMIN_ADDR"])}
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("make run started with port %d taken:\n%s", taken, out)
			}
			for _, want := range []string{fmt.Sprintf("port %d (%s=", taken, busy), "already in use", "AZEN_SITE_ADDRESS=:9080 AZEN_BACKEND_ADDR=127.0.0.1:9081 AZEN_ADMIN_ADDR=localhost:9019 make run"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("output does not say %q:\n%s", want, out)
				}
			}
			if strings.Contains(string(out), "azen is running") {
				t.Errorf("it started anyway:\n%s", out)
			}
			if _, err := os.Stat(filepath.Join(devDir, "gateway.log")); !os.IsNotExist(err) {
				t.Errorf("a process was started (gateway.log exists): %v", err)
			}
		})
	}
}
