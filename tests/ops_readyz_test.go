package tests

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// readyz is GET /readyz through a gateway.
type readyz struct {
	code int
	body struct {
		Status string `json:"status"`
		Checks map[string]struct {
			Status  string `json:"status"`
			Mode    string `json:"mode"`
			Healthy *int   `json:"healthy"`
			Total   *int   `json:"total"`
			Dynamic bool   `json:"dynamic"`
		} `json:"checks"`
	}
	raw string
}

func getReadyz(t *testing.T, gw *testenv.Gateway) readyz {
	t.Helper()
	resp := call(t, "GET", gw.URL+"/readyz")
	r := readyz{code: resp.status, raw: string(resp.raw)}
	if err := json.Unmarshal(resp.raw, &r.body); err != nil || resp.header.Get("Content-Type") != "application/json" {
		t.Fatalf("/readyz %d is not JSON: %q %v", resp.status, resp.raw, err)
	}
	return r
}

// waitReadyz polls /readyz until ok holds (the gateway's active health
// checks run each second, and one round of checks answers for a second).
func waitReadyz(t *testing.T, gw *testenv.Gateway, what string, ok func(readyz) bool) readyz {
	t.Helper()
	var last readyz
	deadline := time.Now().Add(15 * time.Second)
	for {
		if last = getReadyz(t, gw); ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never showed %s; last %d %s", what, last.code, last.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReadyzTellsTheTruth: the shipped Caddyfile's /readyz, on real
// PostgreSQL, Redis and backend processes, follows each dependency down
// and back up, while /healthz keeps saying the process is alive.
func TestReadyzTellsTheTruth(t *testing.T) {
	pg := testenv.StartPostgres(t)
	r := testenv.StartRedis(t)
	dbURL := pg.CreateDatabase(t)
	secret := testenv.GatewaySecret()
	bkAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	bkEnvOf := map[string]string{"AZEN_DATABASE_URL": dbURL, "AZEN_GATEWAY_SECRET": secret,
		"AZEN_ENCRYPTION_KEYS": testenv.EncryptionKeys("k1"), "AZEN_BACKEND_ADDR": bkAddr, "AZEN_BACKEND_DRAIN_DELAY": "0s"}
	backend := testenv.StartBackend(t, bkEnvOf)
	caddyfile := shippedCaddyfile(t)
	gw := testenv.StartGateway(t, caddyfile, map[string]string{
		"AZEN_DATABASE_URL": dbURL, "AZEN_REDIS_URL": r.URL(), "AZEN_GATEWAY_SECRET": secret, "AZEN_BACKENDS": bkAddr,
	})
	alive := func() {
		t.Helper()
		resp, err := http.Get(gw.URL + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("/healthz: %v %v", resp, err)
		}
		resp.Body.Close()
	}

	got := waitReadyz(t, gw, "ready", func(r readyz) bool { return r.code == 200 })
	c := got.body.Checks
	if got.body.Status != "ready" || c["keyStore"].Status != "ok" || c["redis"].Status != "ok" || c["upstreams"].Status != "ok" ||
		c["upstreams"].Healthy == nil || *c["upstreams"].Healthy != 1 || *c["upstreams"].Total != 1 {
		t.Fatalf("all up: %s", got.raw)
	}
	if resp, err := http.Head(gw.URL + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD /readyz: %v %v", resp, err)
	}

	r.Stop()
	got = waitReadyz(t, gw, "Redis degraded", func(r readyz) bool { return r.body.Checks["redis"].Status == "degraded" })
	if got.code != 200 || got.body.Checks["redis"].Mode != "local" {
		t.Errorf("Redis down with on_redis_error local is degraded but ready: %d %s", got.code, got.raw)
	}
	r.Start()
	waitReadyz(t, gw, "Redis back", func(r readyz) bool { return r.body.Checks["redis"].Status == "ok" })

	backend.Kill()
	got = waitReadyz(t, gw, "no healthy replica", func(r readyz) bool { return r.code == 503 })
	if got.body.Status != "unready" || got.body.Checks["upstreams"].Status != "down" || *got.body.Checks["upstreams"].Healthy != 0 {
		t.Errorf("replica gone: %s", got.raw)
	}
	alive()
	testenv.StartBackend(t, bkEnvOf)
	waitReadyz(t, gw, "the replica back", func(r readyz) bool { return r.code == 200 })

	pg.Stop()
	got = waitReadyz(t, gw, "the key store down", func(r readyz) bool { return r.body.Checks["keyStore"].Status == "down" })
	if got.code != 503 || got.body.Status != "unready" {
		t.Errorf("key store down: %d %s", got.code, got.raw)
	}
	alive()
	waitForLog(t, gw.Process, "not ready: /readyz answers 503")
	pg.Start()
	waitReadyz(t, gw, "all back", func(r readyz) bool { return r.code == 200 })
	waitForLog(t, gw.Process, "ready again: /readyz answers 200")
}

// TestReadyzWithDNSDiscovery: Caddy keeps no health state for dynamic
// upstreams, so azen_ready resolves the name and probes each address's
// /readyz itself: no replica is 503, a real one is 200, a draining one 503.
func TestReadyzWithDNSDiscovery(t *testing.T) {
	caddyfile := shippedCaddyfile(t)
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "azen.db")
	secret := testenv.GatewaySecret()
	port := strconv.Itoa(testenv.FreePort(t))
	gw := testenv.StartGateway(t, caddyfile, map[string]string{
		"AZEN_DATABASE_URL": dbURL, "AZEN_GATEWAY_SECRET": secret,
		"AZEN_BACKENDS_DISCOVERY": "dns", "AZEN_BACKENDS_DNS_NAME": "localhost", "AZEN_BACKENDS_DNS_PORT": port,
	})
	got := waitReadyz(t, gw, "no replica behind the name", func(r readyz) bool { return r.code == 503 })
	u := got.body.Checks["upstreams"]
	if got.body.Status != "unready" || u.Status != "down" || !u.Dynamic || u.Healthy == nil || *u.Healthy != 0 ||
		got.body.Checks["redis"].Status != "not configured" {
		t.Errorf("dns discovery, nothing listening: %d %s", got.code, got.raw)
	}

	backend := testenv.StartBackend(t, map[string]string{"AZEN_DATABASE_URL": dbURL, "AZEN_GATEWAY_SECRET": secret,
		"AZEN_ENCRYPTION_KEYS": testenv.EncryptionKeys("k1"), "AZEN_BACKEND_ADDR": "127.0.0.1:" + port, "AZEN_BACKEND_DRAIN_DELAY": "1m"})
	got = waitReadyz(t, gw, "the replica found by DNS", func(r readyz) bool { return r.code == 200 })
	if u := got.body.Checks["upstreams"]; u.Status != "ok" || !u.Dynamic || u.Healthy == nil || *u.Healthy != 1 {
		t.Errorf("dns discovery, one replica: %s", got.raw)
	}

	backend.Signal(syscall.SIGTERM) // draining: its /readyz fails for the drain delay
	got = waitReadyz(t, gw, "the replica draining", func(r readyz) bool { return r.code == 503 })
	if u := got.body.Checks["upstreams"]; u.Status != "down" || *u.Healthy != 0 {
		t.Errorf("dns discovery, replica draining: %s", got.raw)
	}
}
