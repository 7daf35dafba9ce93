// Package tests holds the end-to-end tests: real gateway and backend binaries,
// real PostgreSQL and Redis, talking over HTTP.
package tests

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

func mustListen(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// waitForLog waits until p has printed text (logs are written asynchronously).
func waitForLog(t *testing.T, p *testenv.Process, text string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(p.Output(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("%q never appeared in the process log", text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signedStack is what the tests of azen_auth on real stores share: a fresh
// database on pg, Redis rd, a gateway secret and an upstream that verifies
// the gateway's signature. env is the gateways' environment (the secret is
// AZEN_GATEWAY_SECRET, the upstream's address UP).
func signedStack(t *testing.T, pg *testenv.Postgres, rd *testenv.Redis) (up *upstream, env map[string]string) {
	t.Helper()
	secret := testenv.GatewaySecret()
	up = startUpstream(t, verifying(secret))
	env = map[string]string{
		"AZEN_DATABASE_URL":   pg.CreateDatabase(t),
		"AZEN_REDIS_URL":      rd.URL(),
		"AZEN_GATEWAY_SECRET": secret,
		"UP":                  up.Addr,
	}
	return up, env
}
