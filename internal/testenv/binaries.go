package testenv

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Gateway is a running azen-gateway process. Its Caddyfile should use
// {$AZEN_SITE_ADDRESS} as the site address and `admin {$AZEN_ADMIN_ADDR}` in
// its global options, as the shipped one does; StartGateway fills both in.
type Gateway struct {
	*Process
	Port      int
	AdminAddr string
	URL       string // http://127.0.0.1:Port
	bin       string
	config    string
	env       map[string]string
}

// StartGateway writes caddyfile to a temp folder and runs the real gateway
// binary on it, waiting until it listens.
func StartGateway(t testing.TB, caddyfile string, env map[string]string) *Gateway {
	t.Helper()
	bin, _ := Binaries(t)
	g := &Gateway{
		Port:      FreePort(t),
		AdminAddr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		bin:       bin,
		config:    filepath.Join(t.TempDir(), "Caddyfile"),
		env:       map[string]string{},
	}
	g.URL = fmt.Sprintf("http://127.0.0.1:%d", g.Port)
	g.env["AZEN_SITE_ADDRESS"] = fmt.Sprintf(":%d", g.Port)
	g.env["AZEN_ADMIN_ADDR"] = g.AdminAddr
	maps.Copy(g.env, env)
	if err := os.WriteFile(g.config, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	g.Process = StartProcess(t, fmt.Sprintf("azen-gateway:%d", g.Port), bin,
		[]string{"run", "--config", g.config, "--adapter", "caddyfile"}, g.env)
	g.waitReady(t)
	return g
}

func (g *Gateway) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if g.Exited() {
			t.Fatalf("azen-gateway exited at start:\n%s", g.Output())
		}
		resp, err := http.Get(fmt.Sprintf("http://%s/config/", g.AdminAddr))
		if err == nil {
			resp.Body.Close()
			c, err := http.Get(g.URL + "/")
			if err == nil {
				c.Body.Close()
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("azen-gateway not ready after 30s:\n%s", g.Output())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Reload replaces the Caddyfile and applies it with `azen-gateway reload`,
// as an operator would. It returns the command's combined output and error.
func (g *Gateway) Reload(caddyfile string) (string, error) {
	return g.reload(caddyfile)
}

// ReloadForce is Reload with --force: the config is applied even when it
// did not change, as an operator forcing a restart of the servers would.
func (g *Gateway) ReloadForce(caddyfile string) (string, error) {
	return g.reload(caddyfile, "--force")
}

func (g *Gateway) reload(caddyfile string, flags ...string) (string, error) {
	if err := os.WriteFile(g.config, []byte(caddyfile), 0o600); err != nil {
		return "", err
	}
	args := append([]string{"reload", "--config", g.config, "--adapter", "caddyfile", "--address", g.AdminAddr}, flags...)
	cmd := exec.Command(g.bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	for k, v := range g.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Command runs the gateway binary with args (such as `keys create …`) and
// env, returning its standard output; it fails the test on a non-zero exit.
func Command(t testing.TB, env map[string]string, args ...string) string {
	t.Helper()
	out, errOut, err := TryCommand(t, env, args...)
	if err != nil {
		t.Fatalf("azen-gateway %v: %v\nstdout: %s\nstderr: %s", args, err, out, errOut)
	}
	return out
}

// TryCommand is Command that returns the error instead of failing.
func TryCommand(t testing.TB, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin, _ := Binaries(t)
	return runBinary(t, bin, env, args)
}

// runBinary runs bin to completion with env added to a minimal environment.
func runBinary(t testing.TB, bin string, env map[string]string, args []string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var o, e SyncBuffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Backend is a running azen-backend process.
type Backend struct {
	*Process
	Addr string // host:port
	URL  string
}

// StartBackend runs the real backend binary with env (AZEN_BACKEND_ADDR is
// set to a free port unless given) and waits until /healthz answers.
func StartBackend(t testing.TB, env map[string]string) *Backend {
	t.Helper()
	_, bin := Binaries(t)
	e := map[string]string{}
	maps.Copy(e, env)
	if e["AZEN_BACKEND_ADDR"] == "" {
		e["AZEN_BACKEND_ADDR"] = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	}
	b := &Backend{Addr: e["AZEN_BACKEND_ADDR"], URL: "http://" + e["AZEN_BACKEND_ADDR"]}
	b.Process = StartProcess(t, "azen-backend:"+b.Addr, bin, nil, e)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b.Exited() {
			t.Fatalf("azen-backend exited at start:\n%s", b.Output())
		}
		resp, err := http.Get(b.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("azen-backend not healthy after 30s:\n%s", b.Output())
		}
		time.Sleep(25 * time.Millisecond)
	}
}
