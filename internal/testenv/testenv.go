// Package testenv starts the real servers integration tests talk to: private
// PostgreSQL and Redis instances (and a Redis Cluster) on free loopback ports
// in temporary folders, and the project's own binaries as processes. Tests
// may stop and restart each server to inject faults. A missing server binary
// fails the test with the command that installs it; nothing skips silently.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// FreePort returns a loopback TCP port that was free a moment ago and that
// this process has not handed out before. The kernel may give a port just
// released to the next caller, and Caddy binds with SO_REUSEPORT, so two
// listeners of one gateway (site and admin) could otherwise share a port
// and split its connections.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		givenMu.Lock()
		seen := given[port]
		given[port] = true
		givenMu.Unlock()
		if !seen {
			return port
		}
	}
	t.Fatal("find a free port: every port offered was handed out before")
	return 0
}

var (
	givenMu sync.Mutex
	given   = map[int]bool{}
)

// WaitForPort waits until something accepts TCP connections on addr.
func WaitForPort(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after %s: %v", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lookBinary finds a server binary or fails with the command that installs it.
func lookBinary(t testing.TB, name string, extraDirs []string, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range extraDirs {
		matches, _ := filepath.Glob(filepath.Join(d, name))
		if len(matches) > 0 {
			return matches[len(matches)-1]
		}
	}
	t.Fatalf("%s not found; install it with: %s (or run `make test`, which does)", name, install)
	return ""
}

// RepoRoot is the repository's top folder (the one holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries builds azen-gateway and azen-backend once per test process and
// returns their paths. The build cache makes repeated builds cheap.
func Binaries(t testing.TB) (gateway, backend string) {
	t.Helper()
	root := RepoRoot(t)
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "azen-bin-")
		if buildErr != nil {
			return
		}
		// The way an operator builds them (the version and commit stamped in).
		cmd := exec.Command("make", "--no-print-directory", "build", "BIN="+buildDir)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("make build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "azen-gateway"), filepath.Join(buildDir, "azen-backend")
}

// Process is a child process whose output is kept for failure reports.
type Process struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
	err  error
}

// StartProcess runs path with args and env (added to a minimal environment:
// PATH, and HOME/XDG folders in a private temp dir). The process is killed at
// test cleanup; on failure its output is logged.
func StartProcess(t testing.TB, name, path string, args []string, env map[string]string) *Process {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(path, args...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &Process{t: t, name: name, cmd: cmd, out: &SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("---- output of %s ----\n%s", name, p.Output())
		}
	})
	return p
}

// Output is everything the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) {
	_ = p.cmd.Process.Signal(sig)
}

// Kill stops the process at once and waits for it.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Wait waits up to timeout for the process to exit and returns its error.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %s", p.name, timeout)
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// run runs a command to completion, failing the test with its output.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
