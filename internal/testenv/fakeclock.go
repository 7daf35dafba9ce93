package testenv

import (
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// FakeClock shifts the wall clock of the servers started with it, and
// only theirs, by an offset the test sets while they run: clockshim.c,
// built with gcc once per test process, is preloaded into the server and
// reads the offset from a file (within 10 ms of a change). Only
// CLOCK_REALTIME moves; monotonic clocks are the machine's. It is for
// private servers of tests (StartRedisWithClock); nothing of it is in the
// binaries we ship.
type FakeClock struct {
	t    testing.TB
	lib  string
	file string
}

//go:embed clockshim/clockshim.c
var clockShimSource []byte

var clockShim struct {
	once sync.Once
	lib  string
	err  string
}

// NewFakeClock builds the shim (once) and returns a clock at offset 0.
// Without gcc the test fails with the command that installs it.
func NewFakeClock(t testing.TB) *FakeClock {
	t.Helper()
	gcc := lookBinary(t, "gcc", nil, "apt-get update && apt-get install -y gcc libc6-dev")
	clockShim.once.Do(func() {
		dir, err := os.MkdirTemp("", "azen-clockshim-")
		if err != nil {
			clockShim.err = err.Error()
			return
		}
		src := filepath.Join(dir, "clockshim.c")
		if err := os.WriteFile(src, clockShimSource, 0o600); err != nil {
			clockShim.err = err.Error()
			return
		}
		lib := filepath.Join(dir, "clockshim.so")
		out, err := exec.Command(gcc, "-shared", "-fPIC", "-O2", "-Wall", "-o", lib, src).CombinedOutput()
		if err != nil {
			clockShim.err = "build the clock shim: " + err.Error() + "\n" + string(out) +
				"(install a C toolchain with: apt-get update && apt-get install -y gcc libc6-dev)"
			return
		}
		clockShim.lib = lib
	})
	if clockShim.err != "" {
		t.Fatal(clockShim.err)
	}
	c := &FakeClock{t: t, lib: clockShim.lib, file: filepath.Join(t.TempDir(), "clock-offset")}
	c.Set(0)
	return c
}

// Set makes the servers' wall clock run offset ahead of the machine's
// (behind if negative) from about 10 ms on. The file is replaced whole,
// so the shim never reads half of it.
func (c *FakeClock) Set(offset time.Duration) {
	c.t.Helper()
	tmp := c.file + ".new"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(int64(offset), 10)+"\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, c.file); err != nil {
		c.t.Fatal(err)
	}
}

// SetNow makes the servers' wall clock read at now, as of this call.
func (c *FakeClock) SetNow(at time.Time) {
	c.t.Helper()
	c.Set(time.Until(at))
}

// Env is what a process needs in its environment to run on the clock.
func (c *FakeClock) Env() map[string]string {
	return map[string]string{"LD_PRELOAD": c.lib, "AZEN_CLOCKSHIM_FILE": c.file}
}

// StartRedisWithClock is StartRedis on clock: the server's TIME, the Lua
// scripts' TIME and its key expiry follow the offset the test sets.
func StartRedisWithClock(t testing.TB, clock *FakeClock) *Redis {
	t.Helper()
	r := newRedis(t, false)
	r.env = clock.Env()
	r.Start()
	return r
}
